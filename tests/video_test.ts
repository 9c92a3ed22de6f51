import assert from "node:assert/strict";
import { H264Encoder, Mp4Writer } from "../envs/video/mod.ts";
import { RecordVideo } from "../envs/wrappers/record_video.ts";
import { CartPoleEnv } from "../envs/classic/cartpole.ts";
import { probeVideo as probe } from "./_media.ts";

/** Decodes frame `index` of a video to RGB24 with ffmpeg (and checks the whole file decodes without errors). */
function decodeFrame(path: string, index: number): Uint8Array {
  const out = new Deno.Command("ffmpeg", {
    args: [
      "-v",
      "error",
      "-i",
      path,
      "-vf",
      `select=eq(n\\,${index})`,
      "-frames:v",
      "1",
      "-f",
      "rawvideo",
      "-pix_fmt",
      "rgb24",
      "-",
    ],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const err = new TextDecoder().decode(out.stderr);
  assert.ok(out.success && err === "", `ffmpeg failed on ${path}: ${err}`);
  return out.stdout;
}

/**
 * A moving pattern: smooth gradients that scroll with `t`, plus a bright 12x12 square that moves across. The square
 * sits on the 2x2 grid of the 4:2:0 chroma samples: edges through a chroma block smear its colour (up to ~150 levels
 * of blue), which is the format's loss, not the encoder's.
 */
function pattern(width: number, height: number, t: number): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  const sx = (4 * t) % (width - 12), sy = 2 * Math.floor(height / 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      const inSquare = x >= sx && x < sx + 12 && y >= sy && y < sy + 12;
      rgb[o] = inSquare ? 250 : 128 + 100 * Math.sin((x + 2 * t) / 9);
      rgb[o + 1] = inSquare ? 240 : (y * 255) / height;
      rgb[o + 2] = inSquare ? 60 : 128 + 90 * Math.cos((x + y - t) / 13);
    }
  }
  return rgb;
}

/** PSNR in dB of `b` against `a` over the top-left `width x height` of `b` (whose rows are `bWidth` wide). */
function psnr(a: Uint8Array, b: Uint8Array, width: number, height: number, bWidth = width): number {
  let se = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width * 3; x++) {
      const d = a[y * width * 3 + x] - b[y * bWidth * 3 + x];
      se += d * d;
    }
  }
  return 10 * Math.log10((255 * 255) / (se / (width * height * 3)));
}

function writeVideo(path: string, width: number, height: number, frames: number): Uint8Array[] {
  const written: Uint8Array[] = [];
  using video = new Mp4Writer(path, { width, height, fps: 30, crf: 12 });
  for (let t = 0; t < frames; t++) {
    written.push(pattern(width, height, t));
    video.addFrame(written[t]);
  }
  return written;
}

Deno.test("Mp4Writer writes an H.264 MP4 that ffprobe reads with every frame at the given size", () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/pattern.mp4`;
  const written = writeVideo(path, 128, 72, 30);
  assert.deepEqual(probe(path), { codec_name: "h264", width: 128, height: 72, nb_read_frames: "30" });
  // Nothing but the finished file is left in the directory (the temp file was renamed).
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["pattern.mp4"]);
  for (const t of [0, 17, 29]) {
    const back = decodeFrame(path, t);
    assert.equal(back.length, 128 * 72 * 3);
    const db = psnr(written[t], back, 128, 72);
    assert.ok(db > 33, `frame ${t} decodes at ${db.toFixed(1)} dB PSNR`);
    // It is frame t, not a neighbour (the pattern moves 4 pixels a frame).
    const other = written[t === 0 ? 1 : t - 1];
    assert.ok(psnr(other, back, 128, 72) < db - 3, `frame ${t} looks like a neighbouring frame`);
  }
});

Deno.test("Mp4Writer pads odd sizes to even by repeating the last row and column", () => {
  const path = `${Deno.makeTempDirSync()}/odd.mp4`;
  const written = writeVideo(path, 33, 21, 12);
  assert.deepEqual(probe(path), { codec_name: "h264", width: 34, height: 22, nb_read_frames: "12" });
  const back = decodeFrame(path, 5);
  assert.equal(back.length, 34 * 22 * 3);
  const db = psnr(written[5], back, 33, 21, 34);
  assert.ok(db > 30, `odd-sized frame decodes at ${db.toFixed(1)} dB PSNR`);
  // The padding column repeats the last real one.
  let diff = 0;
  for (let y = 0; y < 21; y++) {
    for (let c = 0; c < 3; c++) diff += Math.abs(back[(y * 34 + 33) * 3 + c] - back[(y * 34 + 32) * 3 + c]);
  }
  assert.ok(diff / (21 * 3) < 8, `padding differs from the last column by ${(diff / 63).toFixed(1)} on average`);
});

Deno.test("Mp4Writer writes no file without frames, and rejects frames of the wrong size", () => {
  const dir = Deno.makeTempDirSync();
  const video = new Mp4Writer(`${dir}/empty.mp4`, { width: 16, height: 16 });
  assert.throws(() => video.addFrame(new Uint8Array(10)), RangeError);
  assert.throws(() => video.addFrame({ data: new Uint8Array(8 * 8 * 3), width: 8, height: 8 }), /8x8/);
  video.close();
  video.close();
  assert.deepEqual([...Deno.readDirSync(dir)], []);
  assert.throws(() => video.addFrame(new Uint8Array(16 * 16 * 3)), /after close/);
});

Deno.test("H264Encoder returns one keyframe-first access unit per frame, in order", () => {
  using enc = new H264Encoder(32, 32, { fps: 10, keyint: 4 });
  const frames = [];
  for (let t = 0; t < 9; t++) {
    const f = enc.encode(pattern(32, 32, t));
    if (f) frames.push(f);
  }
  frames.push(...enc.flush());
  assert.deepEqual(frames.map((f) => f.index), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(frames.map((f) => f.keyframe), [true, false, false, false, true, false, false, false, true]);
  assert.equal(enc.avcC[0], 1);
  assert.match(enc.codec, /^avc1\.64[0-9a-f]{4}$/);
  assert.throws(() => enc.encode(pattern(32, 32, 0)), /after flush/);
  enc.close();
  assert.throws(() => enc.flush(), /after close/);
});

Deno.test("H264Encoder reads frames in place from views into a SharedArrayBuffer (a vector env's slots)", () => {
  const frame = 24 * 16 * 3;
  const shared = new Uint8Array(new SharedArrayBuffer(7 + 2 * frame));
  shared.set(pattern(24, 16, 0), 7);
  shared.set(pattern(24, 16, 1), 7 + frame);
  using enc = new H264Encoder(24, 16);
  const out = [enc.encode(shared.subarray(7, 7 + frame)), enc.encode(shared.subarray(7 + frame))];
  const frames = [...out.filter((f) => f !== undefined), ...enc.flush()];
  assert.deepEqual(frames.map((f) => f.index), [0, 1]);
});

Deno.test("RecordVideo writes one playable MP4 per triggered CartPole episode", () => {
  const dir = Deno.makeTempDirSync();
  const lengths: number[] = [];
  {
    using env = new RecordVideo(new CartPoleEnv(), dir, { episodeTrigger: (k) => k !== 1, namePrefix: "cartpole" });
    for (let episode = 0; episode < 3; episode++) {
      env.reset({ seed: episode });
      let steps = 0;
      for (let done = false; !done;) {
        const [, , terminated, truncated] = env.step(steps % 2);
        steps++;
        done = terminated || truncated;
      }
      lengths.push(steps);
      assert.equal(env.recording, false);
    }
    assert.deepEqual(env.videoPaths, [`${dir}/cartpole-episode-0.mp4`, `${dir}/cartpole-episode-2.mp4`]);
  }
  for (const k of [0, 2]) {
    const info = probe(`${dir}/cartpole-episode-${k}.mp4`);
    // One frame after reset and one per step.
    assert.deepEqual(info, { codec_name: "h264", width: 600, height: 400, nb_read_frames: String(lengths[k] + 1) });
    decodeFrame(`${dir}/cartpole-episode-${k}.mp4`, lengths[k]);
  }
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
    "cartpole-episode-0.mp4",
    "cartpole-episode-2.mp4",
  ]);
});

Deno.test("RecordVideo with singleFile puts every recorded episode into one video, capped per episode", () => {
  const dir = Deno.makeTempDirSync();
  const env = new RecordVideo(new CartPoleEnv(), dir, {
    episodeTrigger: () => true,
    singleFile: true,
    maxFramesPerEpisode: 5,
  });
  for (let episode = 0; episode < 3; episode++) {
    env.reset({ seed: episode });
    for (let t = 0; t < 8; t++) env.step(t % 2);
  }
  assert.deepEqual([...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".mp4")), []);
  env.close();
  env.close();
  assert.deepEqual(env.videoPaths, [`${dir}/rl-video.mp4`]);
  assert.equal(probe(`${dir}/rl-video.mp4`).nb_read_frames, "15");
});

Deno.test("a missing encoder library is reported with every path tried and the install command", () => {
  const out = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { Mp4Writer } from "${new URL("../envs/video/mod.ts", import.meta.url)}";
      new Mp4Writer("/tmp/never.mp4", { width: 8, height: 8 });`,
    ],
    env: { ARCADIA_VIDEO_LIB: "/nonexistent/libarcadia_video.so", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.success, false);
  assert.match(err, /\/nonexistent\/libarcadia_video\.so \(ARCADIA_VIDEO_LIB\): not found/);
  assert.match(err, /apt-get install -y libx264-dev/);
});

Deno.test("ensureVideoEncoder builds the shim into an empty cache once, then reuses it", () => {
  const cache = Deno.makeTempDirSync();
  const script = `import { ensureVideoEncoder, loadVideoLibrary } from "${new URL(
    "../envs/video/provision.ts",
    import.meta.url,
  )}";
    const first = await ensureVideoEncoder();
    const built = Deno.statSync(first).mtime?.getTime();
    const second = await ensureVideoEncoder();
    console.log(JSON.stringify({ first, second, same: Deno.statSync(second).mtime?.getTime() === built,
      abi: loadVideoLibrary().symbols.arc_video_abi() }));`;
  const out = new Deno.Command(Deno.execPath(), {
    args: ["eval", script],
    env: { ARCADIA_CACHE: cache, ARCADIA_QUIET: "1", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const result = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.ok(result.first.startsWith(`${cache}/video/`) && result.first.endsWith("/libarcadia_video.so"));
  assert.equal(result.second, result.first);
  assert.equal(result.same, true);
  assert.equal(result.abi, 1);
  Deno.removeSync(cache, { recursive: true });
});

/** ffprobe helpers shared by the tests that check videos we wrote. */
import assert from "node:assert/strict";

/** What ffprobe reports of a file's first video stream. */
export interface Probe {
  codec_name: string;
  width: number;
  height: number;
  nb_read_frames: string;
}

/** Codec, size and decoded frame count of the first video stream (ffprobe counts the frames by decoding). */
export function probeVideo(path: string): Probe {
  const out = new Deno.Command("ffprobe", {
    args: [
      "-v",
      "error",
      "-select_streams",
      "v:0",
      "-count_frames",
      "-show_entries",
      "stream=codec_name,width,height,nb_read_frames",
      "-of",
      "json",
      path,
    ],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  assert.ok(out.success, `ffprobe failed on ${path}: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(new TextDecoder().decode(out.stdout)).streams[0];
}

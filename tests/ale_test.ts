import assert from "node:assert/strict";
import { checkEnv } from "../envs/checker.ts";
import { type Env, Wrapper } from "../envs/core.ts";
import { make } from "../envs/registry.ts";
import { Box, Discrete } from "../envs/spaces.ts";
import { WorkerVectorEnv } from "../envs/vector/mod.ts";
import {
  ATARI_V5_IDS,
  AtariEnv,
  AtariPreprocessing,
  ensureAle,
  makeAtari,
  ROM_IDS,
  romIdToName,
} from "../envs/ale/mod.ts";
import { ale, aleError } from "../envs/ale/ffi.ts";
import { AreaResize } from "../envs/ale/preprocessing.ts";

// Builds ALE once (cached); every test below uses real ROMs.
await ensureAle();

const GAMES = ["pong", "breakout", "space_invaders"] as const;

/** Steps `env` with a seeded action sequence; returns copies of observations, rewards and flags. */
function rollout(env: AtariEnv | ReturnType<typeof makeAtari>, seed: number, steps: number) {
  return rolloutAny(env, seed, steps);
}

function rolloutAny(env: Env<Uint8Array, number>, seed: number, steps: number) {
  const actions = new Discrete(env.actionSpace instanceof Discrete ? env.actionSpace.n : 1);
  actions.seed(seed);
  const [first] = env.reset({ seed });
  const obs = [first.slice()], rewards: number[] = [], flags: string[] = [];
  for (let t = 0; t < steps; t++) {
    const [o, r, terminated, truncated] = env.step(actions.sample());
    obs.push(o.slice());
    rewards.push(r);
    flags.push(`${terminated}/${truncated}`);
    if (terminated || truncated) obs.push(env.reset()[0].slice());
  }
  return { obs, rewards, flags };
}

for (const game of GAMES) {
  Deno.test(`ALE/${romIdToName(game)}-v5 passes checkEnv`, () => {
    checkEnv(make(`ALE/${romIdToName(game)}-v5`), { steps: 100 });
  });
}

Deno.test("checkEnv passes for grayscale and RAM observations and full action sets", () => {
  checkEnv(new AtariEnv("breakout", { obsType: "grayscale", fullActionSpace: true }));
  checkEnv(new AtariEnv("space_invaders", { obsType: "ram", frameskip: [2, 5] }));
});

Deno.test("v5 ids are registered for every single-player ROM, with ale-py's defaults", () => {
  assert.ok(ATARI_V5_IDS.includes("ALE/Pong-v5"));
  assert.ok(ATARI_V5_IDS.includes("ALE/SpaceInvaders-v5"));
  assert.ok(ATARI_V5_IDS.includes("ALE/MontezumaRevenge-v5"));
  assert.equal(ATARI_V5_IDS.length, ROM_IDS.length - 4); // combat, joust, maze_craze, warlords are two-player only
  using env = make("ALE/SpaceInvaders-v5");
  assert.deepEqual(env.spec?.kwargs, {
    game: "space_invaders",
    repeatActionProbability: 0.25,
    fullActionSpace: false,
    frameskip: 4,
    maxNumFramesPerEpisode: 108_000,
  });
  const atari = env.unwrapped as AtariEnv;
  assert.deepEqual(atari.getActionMeanings(), ["NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE", "LEFTFIRE"]);
  assert.equal(atari.frameskip, 4);
});

Deno.test("spaces and observations: rgb 210x160x3, grayscale 210x160, ram 128, all uint8", () => {
  for (const [obsType, shape] of [["rgb", [210, 160, 3]], ["grayscale", [210, 160]], ["ram", [128]]] as const) {
    using env = new AtariEnv("pong", { obsType });
    assert.ok(env.observationSpace instanceof Box);
    assert.deepEqual(env.observationSpace.shape, shape);
    assert.equal(env.observationSpace.dtype, "uint8");
    const [obs, info] = env.reset({ seed: 0 });
    assert.ok(obs instanceof Uint8Array);
    assert.equal(obs.length, shape.reduce((a, b) => a * b, 1));
    assert.deepEqual(Object.keys(info).sort(), ["episodeFrameNumber", "frameNumber", "lives"]);
  }
});

Deno.test("the same seed and actions give identical observations, rewards and flags", () => {
  for (const game of GAMES) {
    using a = new AtariEnv(game, { obsType: "grayscale" });
    using b = new AtariEnv(game, { obsType: "grayscale" });
    const ra = rollout(a, 7, 300), rb = rollout(b, 7, 300);
    assert.deepEqual(ra.rewards, rb.rewards, game);
    assert.deepEqual(ra.flags, rb.flags, game);
    for (let i = 0; i < ra.obs.length; i++) assert.deepEqual(ra.obs[i], rb.obs[i], `${game} obs ${i}`);
    // A different seed takes another path (sticky actions draw from ALE's seeded generator).
    const rc = rollout(b, 8, 300);
    assert.ok(ra.obs.some((o, i) => rc.obs[i] === undefined || !o.every((v, j) => v === rc.obs[i][j])), game);
  }
});

Deno.test("Pong scores: a random policy collects negative rewards, never more than 1 per step", () => {
  using env = new AtariEnv("pong", { obsType: "ram" });
  const { rewards } = rollout(env, 1, 1000);
  assert.ok(rewards.some((r) => r < 0));
  assert.ok(rewards.every((r) => Math.abs(r) <= 1));
});

Deno.test("cloneState/restoreState replays identically, sticky actions included", () => {
  using env = new AtariEnv("breakout", { obsType: "grayscale" });
  env.reset({ seed: 3 });
  for (let t = 0; t < 50; t++) env.step(t % 4);
  const state = env.cloneState();
  assert.ok(state.length > 1000 && state.length < 64 * 1024);
  const replay = () => {
    const frames: number[][] = [], rewards: number[] = [], lives: unknown[] = [];
    for (let t = 0; t < 200; t++) {
      const [obs, reward, , , info] = env.step((t * 7) % 4);
      frames.push(Array.from(obs));
      rewards.push(reward);
      lives.push(info.lives);
    }
    return { frames, rewards, lives };
  };
  const first = replay();
  env.restoreState(state);
  const second = replay();
  assert.deepEqual(second.rewards, first.rewards);
  assert.deepEqual(second.lives, first.lives);
  assert.deepEqual(second.frames, first.frames);
  // The state restores into another env of the same game.
  using other = new AtariEnv("breakout", { obsType: "grayscale" });
  other.reset({ seed: 99 });
  other.restoreState(state);
  const [obs] = other.step(0);
  env.restoreState(state);
  assert.deepEqual(Array.from(obs), Array.from(env.step(0)[0]));
});

Deno.test("actions outside the action space throw RangeError; step before reset says to reset", () => {
  using env = new AtariEnv("pong");
  assert.throws(() => env.step(0), /reset\(\)/);
  env.reset({ seed: 0 });
  for (const bad of [-1, 6, 1.5, NaN, "1" as unknown as number]) {
    assert.throws(() => env.step(bad), RangeError, String(bad));
  }
  assert.equal(env.actionSpace.toString(), "Discrete(6)");
  using full = new AtariEnv("pong", { fullActionSpace: true });
  full.reset({ seed: 0 });
  full.step(17);
  assert.throws(() => full.step(18), RangeError);
});

Deno.test("an unknown ROM names the close matches", () => {
  assert.throws(() => new AtariEnv("space_invader"), /did you mean "space_invaders"/);
  assert.throws(() => new AtariEnv("breakut"), /did you mean "breakout"/);
  assert.throws(() => make("ALE/Pongg-v5"), /did you mean "ALE\/Pong-v5"/);
  assert.throws(() => new AtariEnv("pong", { obsType: "depth" as "rgb" }), /obsType/);
  assert.throws(() => new AtariEnv("pong", { frameSkip: 4 } as never), /unknown option\(s\) frameSkip/);
});

Deno.test("modes and difficulties: valid ones change the game, invalid ones list the choices", () => {
  using probe = new AtariEnv("space_invaders");
  assert.ok(probe.availableModes.length > 1);
  const mode = probe.availableModes[1];
  using modal = new AtariEnv("space_invaders", { mode, difficulty: probe.availableDifficulties.at(-1) });
  modal.reset({ seed: 0 });
  modal.step(0);
  assert.throws(() => new AtariEnv("space_invaders", { mode: 9999 }), /mode 9999 is not one of/);
  assert.throws(() => new AtariEnv("pong", { difficulty: 77 }), /difficulty 77 is not one of/);
});

Deno.test("close() is idempotent, later calls say the env is closed, render gives RGB", () => {
  const env = new AtariEnv("breakout", { obsType: "ram" });
  env.reset({ seed: 0 });
  const frame = env.render();
  assert.equal(frame.data.length, 210 * 160 * 3);
  assert.equal(frame.width, 160);
  assert.ok(frame.data.some((v) => v > 0));
  env.close();
  env.close();
  assert.ok(env.closed);
  assert.throws(() => env.step(0), /after close/);
  {
    using scoped = new AtariEnv("pong");
    scoped.reset({ seed: 0 });
  }
});

Deno.test("lives are reported in info and drop in Breakout", () => {
  using env = new AtariEnv("breakout", { obsType: "ram", repeatActionProbability: 0 });
  const [, info] = env.reset({ seed: 0 });
  assert.equal(info.lives, 5);
  let lives = 5;
  for (let t = 0; t < 2000 && lives === 5; t++) lives = env.step(1)[4].lives as number; // FIRE launches the ball
  assert.ok(lives < 5);
  assert.equal(env.lives(), lives);
});

Deno.test("makeAtari: [4, 84, 84] uint8 frames, clipped rewards, unclipped episode statistics", () => {
  using env = makeAtari("pong");
  assert.deepEqual(env.observationSpace.shape, [4, 84, 84]);
  assert.equal(env.observationSpace.dtype, "uint8");
  const [obs] = env.reset({ seed: 0 });
  assert.ok(obs instanceof Uint8Array && obs.length === 4 * 84 * 84);
  assert.ok(env.observationSpace.contains(obs));
  // Padded with the reset frame; then each step pushes a new frame at the end.
  assert.deepEqual(obs.subarray(0, 84 * 84), obs.subarray(3 * 84 * 84));
  let episode: { r: number; l: number } | undefined;
  for (let t = 0; t < 5000 && !episode; t++) {
    const [o, reward, terminated, truncated, info] = env.step(t % 6);
    assert.ok(reward === -1 || reward === 0 || reward === 1);
    assert.equal(o.length, 4 * 84 * 84);
    if (terminated || truncated) episode = info.episode as { r: number; l: number };
  }
  assert.ok(episode && episode.r <= -1 && episode.l > 100, JSON.stringify(episode));
  checkEnv(makeAtari("breakout", { fireReset: true, terminalOnLifeLoss: true }));
});

Deno.test("AtariPreprocessing: shapes for grayscale, newaxis and RGB; frameskip must be 1 underneath", () => {
  for (
    const [options, shape] of [
      [{}, [84, 84]],
      [{ grayscaleNewaxis: true }, [84, 84, 1]],
      [{ grayscaleObs: false, screenSize: 64 }, [64, 64, 3]],
    ] as const
  ) {
    using env = new AtariPreprocessing(new AtariEnv("space_invaders", { frameskip: 1 }), options);
    assert.deepEqual(env.observationSpace.shape, shape);
    const [obs] = env.reset({ seed: 1 });
    assert.equal(obs.length, shape.reduce((a: number, b: number) => a * b, 1));
    assert.ok(env.observationSpace.contains(env.step(1)[0]));
  }
  using skipping = new AtariEnv("pong");
  assert.throws(() => new AtariPreprocessing(skipping), /frameskip: 1/);
  using noFire = new AtariEnv("tetris", { frameskip: 1 });
  assert.doesNotThrow(() => new AtariPreprocessing(noFire));
});

Deno.test("AtariPreprocessing: the frame is the max of the last two frames, area-resized", () => {
  using raw = new AtariEnv("breakout", { frameskip: 1, obsType: "grayscale", repeatActionProbability: 0 });
  using pre = new AtariPreprocessing(
    new AtariEnv("breakout", { frameskip: 1, obsType: "grayscale", repeatActionProbability: 0 }),
    { noopMax: 0, frameSkip: 2, screenSize: 105 },
  );
  raw.reset({ seed: 5 });
  pre.reset({ seed: 5 });
  // Breakout's ball blinks across frames; pool the two raw frames ourselves and compare a 2x2 box average.
  for (let t = 0; t < 30; t++) {
    const a = raw.step(1)[0].slice(), b = raw.step(1)[0];
    const [obs] = pre.step(1);
    // 210x160 → 105x105 is not an integer factor horizontally, so compare only the row structure: each output
    // row covers exactly two input rows.
    const pooled = a.map((v, i) => Math.max(v, b[i]));
    const rowMean = (r: number) => pooled.subarray(r * 160, r * 160 + 160).reduce((s, v) => s + v, 0) / 160;
    const outMean = (r: number) => obs.subarray(r * 105, r * 105 + 105).reduce((s, v) => s + v, 0) / 105;
    for (const r of [10, 50, 95]) assert.ok(Math.abs((rowMean(2 * r) + rowMean(2 * r + 1)) / 2 - outMean(r)) < 1.5);
  }
});

Deno.test("AtariPreprocessing gives the same frames over the AtariEnv and over a wrapper of it", () => {
  const options = { frameskip: 1, repeatActionProbability: 0.25 } as const;
  const pre = { terminalOnLifeLoss: true, fireReset: true };
  using direct = new AtariPreprocessing(new AtariEnv("breakout", options), pre);
  using wrapped = new AtariPreprocessing(new Wrapper<Uint8Array, number>(new AtariEnv("breakout", options)), pre);
  const a = rolloutAny(direct, 11, 300), b = rolloutAny(wrapped, 11, 300);
  assert.deepEqual(a.rewards, b.rewards);
  assert.deepEqual(a.flags, b.flags);
  assert.ok(a.flags.some((f) => f.startsWith("true")), "a life is lost within 300 steps");
  for (let i = 0; i < a.obs.length; i++) assert.deepEqual(a.obs[i], b.obs[i], `obs ${i}`);
});

Deno.test("Worker vector envs build ALE envs synchronously inside the Workers", async () => {
  const vec = await WorkerVectorEnv.create("ALE/Pong-v5", {
    numEnvs: 2,
    numWorkers: 2,
    envModules: [import.meta.resolve("../envs/ale/mod.ts")],
    kwargs: { obsType: "grayscale" },
  });
  try {
    const [obs] = await vec.reset({ seed: 0 });
    assert.equal(obs.length, 2 * 210 * 160);
    const [next, rewards] = await vec.step(Int32Array.of(0, 1));
    assert.equal(next.length, 2 * 210 * 160);
    assert.equal(rewards.length, 2);
  } finally {
    await vec.close();
  }
});

Deno.test("AtariPreprocessing: the native step gives the same frames, rewards, flags and info as the TypeScript path", () => {
  const cases: [string, Parameters<typeof makeAtari>[1]][] = [
    ["pong", {}],
    ["breakout", { terminalOnLifeLoss: true, fireReset: true }],
    ["space_invaders", { terminalOnLifeLoss: true }],
    ["breakout", { grayscaleObs: false, screenSize: 64 }],
    ["space_invaders", { frameSkip: 3, screenSize: 100, noopMax: 5 }],
    ["pong", { frameSkip: 1 }],
  ];
  for (const [game, options] of cases) {
    const label = `${game} ${JSON.stringify(options)}`;
    const make = (nativeStep: boolean) =>
      new AtariPreprocessing(new AtariEnv(game, { frameskip: 1, obsType: "ram" }), { ...options, nativeStep });
    using native = make(true);
    using typescript = make(false);
    assert.ok(native.native && !typescript.native, label);
    const steps = 300;
    const a = rolloutWithInfo(native, 21, steps), b = rolloutWithInfo(typescript, 21, steps);
    assert.deepEqual(a.rewards, b.rewards, label);
    assert.deepEqual(a.flags, b.flags, label);
    assert.deepEqual(a.infos, b.infos, label);
    assert.equal(a.obs.length, b.obs.length, label);
    for (let i = 0; i < a.obs.length; i++) assert.deepEqual(a.obs[i], b.obs[i], `${label}: obs ${i}`);
    if (options?.terminalOnLifeLoss) assert.ok(a.flags.some((f) => f.startsWith("true")), `${label}: an episode ends`);
  }
});

function rolloutWithInfo(env: Env<Uint8Array, number>, seed: number, steps: number) {
  const actions = new Discrete((env.actionSpace as Discrete).n);
  actions.seed(seed);
  const [first] = env.reset({ seed });
  const obs = [first.slice()], rewards: number[] = [], flags: string[] = [], infos: unknown[] = [];
  for (let t = 0; t < steps; t++) {
    const [o, r, terminated, truncated, info] = env.step(actions.sample());
    obs.push(o.slice());
    rewards.push(r);
    flags.push(`${terminated}/${truncated}`);
    infos.push(info);
    if (terminated || truncated) obs.push(env.reset()[0].slice());
  }
  return { obs, rewards, flags, infos };
}

Deno.test("the shim's area resize is byte-identical to the TypeScript one (random and two-level images)", () => {
  const { symbols } = ale();
  let s = 99;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24;
  const sizes = [[210, 160, 84, 84], [210, 160, 105, 105], [210, 160, 64, 100], [210, 160, 210, 160], [37, 23, 5, 7]];
  for (const [sh, sw, dh, dw] of sizes) {
    for (const cn of [1, 3]) {
      for (let trial = 0; trial < 4; trial++) {
        // Two-level images put many sums at exact halves, where the rounding mode shows.
        const src = Uint8Array.from({ length: sh * sw * cn }, () => trial % 2 ? next() : (next() & 1) * 255);
        const ts = new Uint8Array(dh * dw * cn), native = new Uint8Array(dh * dw * cn);
        new AreaResize(sh, sw, dh, dw, cn).apply(src, ts);
        assert.equal(symbols.arc_ale_area_resize(src, src.length, sh, sw, cn, native, native.length, dh, dw), 0);
        assert.deepEqual(native, ts, `${sh}x${sw}x${cn} -> ${dh}x${dw}, trial ${trial}`);
      }
    }
  }
  assert.equal(symbols.arc_ale_area_resize(new Uint8Array(4), 4, 2, 2, 1, new Uint8Array(9), 9, 3, 3), -1);
  assert.match(aleError(symbols, "area_resize").message, /only downscale/);
  assert.equal(symbols.arc_ale_area_resize(new Uint8Array(4), 4, 2, 2, 1, new Uint8Array(1), 1, 2, 1), -1);
  assert.match(aleError(symbols, "area_resize").message, /smaller than its size/);
});

Deno.test("AtariPreprocessing keeps the TypeScript path when a step could differ; the native step checks its input", () => {
  using wrapped = new AtariPreprocessing(new Wrapper<Uint8Array, number>(new AtariEnv("pong", { frameskip: 1 })));
  assert.equal(wrapped.native, false);
  class Sub extends AtariEnv {}
  using sub = new AtariPreprocessing(new Sub("pong", { frameskip: 1 }));
  assert.equal(sub.native, false);
  using opted = new AtariPreprocessing(new AtariEnv("pong", { frameskip: 1 }), { nativeStep: false });
  assert.equal(opted.native, false);
  using skipOne = new AtariPreprocessing(new AtariEnv("pong", { frameskip: 4 }), { frameSkip: 1 });
  assert.equal(skipOne.native, false);
  assert.ok(makeAtari("pong").unwrapped instanceof AtariEnv);

  using env = new AtariEnv("pong", { frameskip: 1 });
  const pool = new Uint8Array(2 * 210 * 160), out = new Uint8Array(84 * 84);
  assert.throws(() => env.stepPreprocessed(0, 4, 0, false, 1, pool, out, 84, 84), /reset\(\)/);
  env.reset({ seed: 0 });
  assert.throws(() => env.stepPreprocessed(9, 4, 0, false, 1, pool, out, 84, 84), RangeError);
  assert.throws(() => env.stepPreprocessed(0, 4, 0, false, 1, pool.subarray(0, 1000), out, 84, 84), /smaller than two/);
  assert.throws(() => env.stepPreprocessed(0, 4, 0, false, 1, pool, out, 84, 100), /smaller than dst_h \* dst_w/);
  const wide = new Uint8Array(84 * 300);
  assert.throws(() => env.stepPreprocessed(0, 4, 0, false, 1, pool, wide, 84, 300), /only downscaling/);
  assert.throws(
    () => env.stepPreprocessed(0, 4, 0, false, 3, pool, new Uint8Array(84 * 84 * 3), 84, 84),
    /two screens/,
  );
  const status = env.stepPreprocessed(0, 4, 0, false, 1, pool, out, 84, 84);
  assert.equal(status[7], 4);
  using skipping = new AtariEnv("pong", { frameskip: 4 });
  skipping.reset({ seed: 0 });
  assert.throws(() => skipping.stepPreprocessed(0, 4, 0, false, 1, pool, out, 84, 84), /frameskip 1/);
});

Deno.test("grayscale screens are ALE's luminance of the RGB screens (the shim's byte table matches ALE's palette)", () => {
  for (const game of ["breakout", "ms_pacman"]) {
    using env = new AtariEnv(game, { obsType: "grayscale" });
    env.reset({ seed: 0 });
    const rgb = new Uint8Array(210 * 160 * 3);
    for (let t = 0; t < 100; t++) {
      const [gray] = env.step(t % env.actionSpace.n);
      env.getScreenRGB(rgb);
      for (let i = 0; i < gray.length; i++) {
        // ale::ColourPalette's grayscale: round(0.2989 R + 0.587 G + 0.114 B).
        const lum = Math.round(rgb[3 * i] * 0.2989 + rgb[3 * i + 1] * 0.5870 + rgb[3 * i + 2] * 0.1140);
        if (lum !== gray[i]) assert.fail(`${game} step ${t} pixel ${i}: ${gray[i]} != ${lum}`);
      }
    }
  }
});

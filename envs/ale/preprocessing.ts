/**
 * The Nature-DQN Atari preprocessing: `AtariPreprocessing` (Gymnasium's wrapper of the same name, plus the fire reset
 * of the DQN baselines) and `makeAtari`, which stacks it with `RecordEpisodeStatistics`, `ClipReward` and
 * `FrameStack` from `envs/wrappers/` as CleanRL does.
 *
 * @module
 */

import { type Env, type Info, type ResetOptions, type ResetResult, type StepResult, Wrapper } from "../core.ts";
import { Box } from "../spaces.ts";
import { ClipReward } from "../wrappers/clip_reward.ts";
import { FrameStack } from "../wrappers/frame_stack.ts";
import { RecordEpisodeStatistics } from "../wrappers/record_episode_statistics.ts";
import { register } from "../registry.ts";
import { ATARI_V5_IDS, AtariEnv, type AtariEnvOptions, romIdToName } from "./atari_env.ts";
import { ROM_IDS } from "./roms.ts";

/** Options of `AtariPreprocessing` (Gymnasium's arguments, camelCased). */
export interface AtariPreprocessingOptions {
  /** Up to this many no-op actions after reset, drawn uniformly in `[1, noopMax]` (default 30; 0 disables). */
  noopMax?: number;
  /** Frames per step; the wrapped env must use frameskip 1 (default 4). */
  frameSkip?: number;
  /** Side of the square output image (default 84). */
  screenSize?: number;
  /** End the episode (`terminated`) when a life is lost (default false). */
  terminalOnLifeLoss?: boolean;
  /** Grayscale (default) or RGB output. */
  grayscaleObs?: boolean;
  /** Add a trailing axis of 1 to grayscale images (default false). */
  grayscaleNewaxis?: boolean;
  /** Press FIRE (then UP) after reset, for games that wait for it (needs FIRE as action 1; default false). */
  fireReset?: boolean;
  /**
   * Run each step as one native call (frames, max-pool and resize in the shim; same results) when the wrapped env is
   * a plain `AtariEnv` with `frameskip: 1` (default true; false keeps the TypeScript path).
   */
  nativeStep?: boolean;
}

/**
 * Gymnasium's `AtariPreprocessing`: no-op reset, frame skipping with a max-pool over the last two frames, resizing to
 * `screenSize` with OpenCV's `INTER_AREA` arithmetic, grayscale, optional terminal on life loss; plus an optional fire
 * reset. Observations are `Uint8Array`s of `[screenSize, screenSize]` (or `[.., .., 3]`), reused between steps.
 *
 * The wrapped env must be an `AtariEnv` with `frameskip: 1` (or wrap one); the screen is read from it directly. When
 * it is the `AtariEnv` itself, each step is one native call (`AtariEnv.stepPreprocessed`: frames, max-pool and
 * resize in C++, byte-identical to the TypeScript path, which serves the other cases; see `nativeStep`).
 *
 * @example
 * ```ts
 * import { AtariEnv, AtariPreprocessing, ensureAle } from "./mod.ts";
 * await ensureAle();
 * using env = new AtariPreprocessing(new AtariEnv("breakout", { frameskip: 1 }), { fireReset: true });
 * const [obs] = env.reset({ seed: 0 });
 * console.assert(obs.length === 84 * 84 && env.observationSpace.shape.join() === "84,84");
 * ```
 */
export class AtariPreprocessing<A = number> extends Wrapper<Uint8Array, A, unknown, A> {
  /** Options in effect. */
  readonly options: Readonly<Required<AtariPreprocessingOptions>>;
  readonly #space: Box<"uint8">;
  readonly #atari: AtariEnv;
  /** Both pooled screens in one buffer (the native step takes it whole): `#pool[0]` then `#pool[1]`. */
  readonly #poolBuffer: Uint8Array<ArrayBuffer>;
  readonly #pool: [Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>];
  readonly #native: boolean;
  readonly #out: Uint8Array<ArrayBuffer>;
  readonly #resize: AreaResize;
  #lives = 0;

  constructor(env: Env<unknown, A>, options: AtariPreprocessingOptions = {}) {
    super(env);
    const o = {
      noopMax: options.noopMax ?? 30,
      frameSkip: options.frameSkip ?? 4,
      screenSize: options.screenSize ?? 84,
      terminalOnLifeLoss: options.terminalOnLifeLoss ?? false,
      grayscaleObs: options.grayscaleObs ?? true,
      grayscaleNewaxis: options.grayscaleNewaxis ?? false,
      fireReset: options.fireReset ?? false,
      nativeStep: options.nativeStep ?? true,
    };
    if (!Number.isInteger(o.frameSkip) || o.frameSkip < 1) {
      throw new RangeError(`AtariPreprocessing: frameSkip must be a positive integer, got ${o.frameSkip}`);
    }
    if (!Number.isInteger(o.screenSize) || o.screenSize < 1) {
      throw new RangeError(`AtariPreprocessing: screenSize must be a positive integer, got ${o.screenSize}`);
    }
    if (!Number.isInteger(o.noopMax) || o.noopMax < 0) {
      throw new RangeError(`AtariPreprocessing: noopMax must be a non-negative integer, got ${o.noopMax}`);
    }
    const atari = env.unwrapped;
    if (!(atari instanceof AtariEnv)) throw new TypeError("AtariPreprocessing: the wrapped env must be an AtariEnv");
    if (o.frameSkip > 1 && atari.frameskip !== 1) {
      throw new TypeError(
        `AtariPreprocessing: the AtariEnv already skips frames (frameskip ${atari.frameskip}); ` +
          "create it with { frameskip: 1 } so the max-pool sees the last two frames",
      );
    }
    if (o.fireReset) {
      const meanings = atari.getActionMeanings();
      if (meanings[1] !== "FIRE" || meanings.length < 3) {
        throw new TypeError(`AtariPreprocessing: fireReset needs FIRE as action 1, ${atari.game} has [${meanings}]`);
      }
    }
    this.options = o;
    this.#atari = atari;
    const channels = o.grayscaleObs ? 1 : 3;
    const h = atari.screenHeight, w = atari.screenWidth, n = h * w * channels;
    this.#poolBuffer = new Uint8Array(2 * n);
    this.#pool = [this.#poolBuffer.subarray(0, n), this.#poolBuffer.subarray(n)];
    // Only straight over a plain AtariEnv: a wrapper in between, or a subclass, may change what a step does.
    this.#native = o.nativeStep && env === (atari as unknown as Env<unknown, A>) && atari.constructor === AtariEnv &&
      atari.frameskip === 1;
    this.#out = new Uint8Array(o.screenSize * o.screenSize * channels);
    this.#resize = new AreaResize(h, w, o.screenSize, o.screenSize, channels);
    const shape = o.grayscaleObs
      ? (o.grayscaleNewaxis ? [o.screenSize, o.screenSize, 1] : [o.screenSize, o.screenSize])
      : [o.screenSize, o.screenSize, 3];
    this.#space = new Box(0, 255, { shape, dtype: "uint8" });
  }

  override get observationSpace(): Box<"uint8"> {
    return this.#space;
  }

  /** Whether steps run as one native call each (see `nativeStep`). */
  get native(): boolean {
    return this.#native;
  }

  override reset(options?: ResetOptions): ResetResult<Uint8Array> {
    const info = this.#noopReset(options);
    if (!this.options.fireReset) return [this.#observe(), info];
    // The DQN baselines' FireResetEnv: FIRE, then UP; start over when either ends the episode.
    for (const action of [1, 2]) {
      const [, , terminated, truncated] = this.step(action as A);
      if (terminated || truncated) this.#noopReset(options);
    }
    return [this.#observe(), info];
  }

  override step(action: A): StepResult<Uint8Array> {
    const skip = this.options.frameSkip, atari = this.#atari;
    if (this.#native) {
      const o = this.options, size = o.screenSize;
      const s = atari.stepPreprocessed(
        action as number,
        skip,
        this.#lives,
        o.terminalOnLifeLoss,
        o.grayscaleObs ? 1 : 3,
        this.#poolBuffer,
        this.#out,
        size,
        size,
      );
      if (o.terminalOnLifeLoss) this.#lives = s[3];
      return [this.#out, s[0], s[1] !== 0, s[2] !== 0, { lives: s[3], episodeFrameNumber: s[4], frameNumber: s[5] }];
    }
    // Wrapping the AtariEnv directly: step it through stepInto (no tuple or info object per frame).
    const direct = this.env === (atari as unknown as Env<unknown, A>);
    let total = 0, terminated = false, truncated = false, info: Info | undefined;
    let status: Int32Array | undefined;
    for (let t = 0; t < skip; t++) {
      if (direct) {
        status = atari.stepInto(action as number, null);
        total += status[0];
        terminated = status[1] !== 0;
        truncated = status[2] !== 0;
      } else {
        const result = this.env.step(action);
        total += result[1];
        terminated = result[2];
        truncated = result[3];
        info = result[4];
      }
      if (this.options.terminalOnLifeLoss) {
        const lives = status ? status[3] : atari.lives();
        terminated ||= lives < this.#lives;
        this.#lives = lives;
      }
      if (terminated || truncated) break;
      if (t === skip - 2) this.#readScreen(this.#pool[1]);
      else if (t === skip - 1) this.#readScreen(this.#pool[0]);
    }
    if (status) info = { lives: status[3], episodeFrameNumber: status[4], frameNumber: status[5] };
    return [this.#observe(), total, terminated, truncated, info ?? {}];
  }

  #noopReset(options?: ResetOptions): Info {
    let [, info] = this.env.reset(options);
    const noops = this.options.noopMax > 0 ? this.#atari.generator.integers(1, this.options.noopMax + 1) : 0;
    for (let i = 0; i < noops; i++) {
      const [, , terminated, truncated, stepInfo] = this.env.step(0 as A);
      info = { ...info, ...stepInfo };
      if (terminated || truncated) [, info] = this.env.reset(options);
    }
    this.#lives = this.#atari.lives();
    this.#readScreen(this.#pool[0]);
    this.#pool[1].fill(0);
    return info;
  }

  #readScreen(out: Uint8Array<ArrayBuffer>): void {
    if (this.options.grayscaleObs) this.#atari.getScreenGrayscale(out);
    else this.#atari.getScreenRGB(out);
  }

  /** Max-pools the two frames in place (as Gymnasium does), then resizes into the output buffer. */
  #observe(): Uint8Array {
    const [a, b] = this.#pool;
    if (this.options.frameSkip > 1) {
      for (let i = 0; i < a.length; i++) if (b[i] > a[i]) a[i] = b[i];
    }
    this.#resize.apply(a, this.#out);
    return this.#out;
  }
}

/**
 * Downscaling with OpenCV's `INTER_AREA` for non-integer factors: each output pixel averages the source pixels its
 * cell covers, weighted by coverage; separable, in float32 in OpenCV's order, rounded half to even. Tables are built
 * once. The shim's `AreaResize` (used by the native step) does the same float operations in the same order, so the
 * two give identical bytes.
 *
 * @example
 * ```ts
 * import { AreaResize } from "./preprocessing.ts";
 * const src = new Uint8Array(210 * 160).fill(100), dst = new Uint8Array(84 * 84);
 * new AreaResize(210, 160, 84, 84, 1).apply(src, dst);
 * console.assert(dst.every((v) => v === 100));
 * ```
 */
export class AreaResize {
  readonly #xs: Int32Array;
  readonly #xd: Int32Array;
  readonly #xa: Float32Array;
  readonly #ys: Int32Array;
  readonly #yd: Int32Array;
  readonly #ya: Float32Array;
  readonly #rows: Float32Array;
  readonly #sum: Float32Array;
  readonly #sh: number;
  readonly #sw: number;
  readonly #width: number;
  readonly #cn: number;

  /** A resize of `sh x sw x channels` images to `dh x dw x channels`. */
  constructor(sh: number, sw: number, dh: number, dw: number, channels: number) {
    if (dh > sh || dw > sw) throw new RangeError(`AreaResize: only downscaling (${sh}x${sw} → ${dh}x${dw})`);
    [this.#xs, this.#xd, this.#xa] = areaTable(sw, dw, 1);
    [this.#ys, this.#yd, this.#ya] = areaTable(sh, dh, 1);
    this.#sh = sh;
    this.#sw = sw;
    this.#cn = channels;
    this.#width = dw * channels;
    this.#rows = new Float32Array(sh * this.#width);
    this.#sum = new Float32Array(this.#width);
  }

  /** Resizes `src` into `dst`. */
  apply(src: Uint8Array, dst: Uint8Array): void {
    // Horizontal pass once per source row (OpenCV redoes it for rows shared by two output rows; the values are the
    // same). Float32Array stores round each sum to float32; Math.fround rounds each product, as float math would.
    const xs = this.#xs, xd = this.#xd, xa = this.#xa, rows = this.#rows, cn = this.#cn, width = this.#width;
    const srcRow = this.#sw * cn, entries = xs.length;
    rows.fill(0);
    for (let sy = 0; sy < this.#sh; sy++) {
      const base = sy * srcRow, out = sy * width;
      if (cn === 1) {
        for (let k = 0; k < entries; k++) rows[out + xd[k]] += Math.fround(src[base + xs[k]] * xa[k]);
      } else {
        for (let k = 0; k < entries; k++) {
          const si = base + xs[k] * cn, di = out + xd[k] * cn, alpha = xa[k];
          for (let c = 0; c < cn; c++) rows[di + c] += Math.fround(src[si + c] * alpha);
        }
      }
    }
    const ys = this.#ys, yd = this.#yd, ya = this.#ya, sum = this.#sum;
    let prev = yd[0];
    sum.fill(0);
    for (let j = 0; j < ys.length; j++) {
      const beta = ya[j], dy = yd[j], row = ys[j] * width;
      if (dy !== prev) {
        const o = prev * width;
        for (let x = 0; x < width; x++) {
          dst[o + x] = roundHalfEven(sum[x]);
          sum[x] = Math.fround(beta * rows[row + x]);
        }
        prev = dy;
      } else {
        for (let x = 0; x < width; x++) sum[x] += Math.fround(beta * rows[row + x]);
      }
    }
    const o = prev * width;
    for (let x = 0; x < width; x++) dst[o + x] = roundHalfEven(sum[x]);
  }
}

/** OpenCV's `computeResizeAreaTab`: (source offset, destination offset, weight) triples of one axis. */
function areaTable(ssize: number, dsize: number, cn: number): [Int32Array, Int32Array, Float32Array] {
  const scale = ssize / dsize;
  const si: number[] = [], di: number[] = [], alpha: number[] = [];
  for (let dx = 0; dx < dsize; dx++) {
    const fsx1 = dx * scale, fsx2 = fsx1 + scale;
    const cellWidth = Math.min(scale, ssize - fsx1);
    let sx1 = Math.ceil(fsx1);
    const sx2 = Math.min(Math.floor(fsx2), ssize - 1);
    sx1 = Math.min(sx1, sx2);
    if (sx1 - fsx1 > 1e-3) si.push((sx1 - 1) * cn), di.push(dx * cn), alpha.push((sx1 - fsx1) / cellWidth);
    for (let sx = sx1; sx < sx2; sx++) si.push(sx * cn), di.push(dx * cn), alpha.push(1 / cellWidth);
    if (fsx2 - sx2 > 1e-3) {
      si.push(sx2 * cn), di.push(dx * cn), alpha.push(Math.min(Math.min(fsx2 - sx2, 1), cellWidth) / cellWidth);
    }
  }
  return [Int32Array.from(si), Int32Array.from(di), Float32Array.from(alpha)];
}

/** `saturate_cast<uchar>(float)`: round half to even, clamp to [0, 255]. */
function roundHalfEven(x: number): number {
  let r = Math.round(x);
  if (r - x === 0.5 && (r & 1) === 1) r -= 1;
  return r < 0 ? 0 : r > 255 ? 255 : r;
}

/** Options of `makeAtari`: the env's, the preprocessing's, and the stack on top. */
export interface MakeAtariOptions
  extends Omit<AtariEnvOptions, "frameskip" | "obsType" | "renderMode">, AtariPreprocessingOptions {
  /** Frames stacked into each observation (default 4; 1 keeps a leading axis of 1). */
  frameStack?: number;
  /** Clip rewards to [-1, 1] (default true; Atari rewards are integers, so this is their sign). */
  clipReward?: boolean;
  /** Record the unclipped episode return and length in `info.episode` (default true). */
  recordEpisodeStatistics?: boolean;
}

/**
 * The Nature-DQN / CleanRL Atari stack in one call: `AtariEnv(game, { frameskip: 1, ... })` →
 * `AtariPreprocessing` → `RecordEpisodeStatistics` → `ClipReward(-1, 1)` → `FrameStack(4)`. Observations are
 * `Uint8Array`s of shape `[4, 84, 84]`, reused between steps. Sticky actions (0.25) and the 108k-frame limit follow
 * the v5 defaults unless overridden.
 *
 * @example
 * ```ts
 * import { ensureAle, makeAtari } from "./mod.ts";
 * await ensureAle();
 * using env = makeAtari("pong");
 * const [obs] = env.reset({ seed: 0 });
 * console.assert(env.observationSpace.shape.join() === "4,84,84" && obs.length === 4 * 84 * 84);
 * const [, reward] = env.step(0);
 * console.assert(reward >= -1 && reward <= 1);
 * ```
 */
export function makeAtari(game: string, options: MakeAtariOptions = {}): Env<Uint8Array, number> {
  const {
    noopMax,
    frameSkip,
    screenSize,
    terminalOnLifeLoss,
    grayscaleObs,
    grayscaleNewaxis,
    fireReset,
    nativeStep,
    frameStack = 4,
    clipReward = true,
    recordEpisodeStatistics = true,
    ...envOptions
  } = options;
  // The wrapper reads the screen itself; RAM is the cheapest observation for the inner env to produce per frame.
  const atari = new AtariEnv(game, {
    maxNumFramesPerEpisode: 108_000,
    ...envOptions,
    frameskip: 1,
    obsType: "ram",
  });
  let env: Env<Uint8Array, number>;
  try {
    env = new AtariPreprocessing<number>(atari, {
      noopMax,
      frameSkip,
      screenSize,
      terminalOnLifeLoss,
      grayscaleObs,
      grayscaleNewaxis,
      fireReset,
      nativeStep,
    });
    if (recordEpisodeStatistics) env = new RecordEpisodeStatistics(env);
    if (clipReward) env = new ClipReward(env, { min: -1, max: 1 });
    if (frameStack > 0) env = new FrameStack<Uint8Array, number>(env, { stackSize: frameStack });
  } catch (e) {
    atari.close();
    throw e;
  }
  return env;
}

/**
 * The `ALE/<Game>-nature-v5` ids: `makeAtari(game, kwargs)`, the Nature-DQN stack (`[4, 84, 84]` uint8), by id so
 * that Workers can build it (`WorkerVectorEnv.create("ALE/Pong-nature-v5", { kwargs: { fireReset: true } })`).
 * Kwargs are `MakeAtariOptions`; ALE truncates at 108k frames, so there is no TimeLimit wrapper.
 *
 * @example
 * ```ts
 * import { ATARI_NATURE_IDS, ensureAle } from "./mod.ts";
 * import { make } from "../registry.ts";
 * await ensureAle();
 * using env = make("ALE/Pong-nature-v5", { kwargs: { fireReset: true } });
 * const [obs] = env.reset({ seed: 0 });
 * console.assert(ATARI_NATURE_IDS.includes("ALE/Pong-nature-v5") && (obs as Uint8Array).length === 4 * 84 * 84);
 * ```
 */
export const ATARI_NATURE_IDS: readonly string[] = ATARI_V5_IDS.map((id) => id.replace(/-v5$/, "-nature-v5"));

function registerNature(): void {
  for (const rom of ROM_IDS) {
    const id = `ALE/${romIdToName(rom)}-v5`;
    if (!ATARI_V5_IDS.includes(id)) continue;
    register({
      id: id.replace(/-v5$/, "-nature-v5"),
      create: ({ game, ...options }) => makeAtari(game as string, options as MakeAtariOptions),
      kwargs: { game: rom },
    });
  }
}

registerNature();

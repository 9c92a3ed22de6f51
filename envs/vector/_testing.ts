/**
 * Small deterministic envs for the vector env tests (imported by the tests and, as an env module, by Workers).
 * Importing this module registers `VectorTest-v0`.
 *
 * @module
 */

import { Env, type ResetOptions, type ResetResult, type StepResult } from "../core.ts";
import { register } from "../registry.ts";
import { Box, Discrete, MultiDiscrete, type Space } from "../spaces.ts";

/** Keyword arguments of `VectorTestEnv`. */
export interface VectorTestOptions {
  /** Observation dtype (default float32). */
  obs?: "float32" | "uint8";
  /** Action space: Discrete(3) (default), MultiDiscrete([3, 2]) or a float32 Box in [-1, 1]^2. */
  actions?: "discrete" | "multi" | "box";
  /** The env reset with this seed throws on step `crashStep` of its first episode. */
  crashSeed?: number;
  /** Step at which the `crashSeed` env throws (default 3). */
  crashStep?: number;
  /** The env reset with this seed throws in `reset()`. */
  crashResetSeed?: number;
  /** Directory where `close()` writes a file `closed-<seed>` (to observe closing inside Workers). */
  closeMarkerDir?: string;
  /** `close()` busy-waits this long first (a native env whose engine does not answer). */
  closeDelayMs?: number;
  /** `step()` busy-waits this long first (a slow env). */
  stepDelayMs?: number;
  /** Only the env reset with this seed is slow (default: all, when `stepDelayMs` is set). */
  slowSeed?: number;
  /** Implement `ObservationTarget`: write observations into the vector env's buffer. */
  inPlace?: boolean;
}

/**
 * Observation `[seed, t, episode, last action sum, noise]`, reward = action sum + noise, terminates at random
 * (about 1 step in 6), so episodes of many lengths end and autoreset at different steps.
 *
 * @example
 * ```ts
 * import { VectorTestEnv } from "./_testing.ts";
 * using env = new VectorTestEnv();
 * env.reset({ seed: 1 });
 * const [obs] = env.step(2);
 * console.assert(obs[1] === 1);
 * ```
 */
export class VectorTestEnv extends Env<Float32Array | Uint8Array, unknown> {
  readonly observationSpace: Space<Float32Array | Uint8Array>;
  readonly actionSpace: Space<unknown>;
  readonly #options: VectorTestOptions;
  #seed = -1;
  #t = 0;
  #episode = 0;
  #crashed = false;
  #target?: Float32Array | Uint8Array;
  /** `ObservationTarget`, only with `inPlace` (a method that is absent otherwise). */
  readonly setObservationTarget?: (out: Float32Array | Uint8Array) => void;

  constructor(options: VectorTestOptions = {}) {
    super();
    this.#options = options;
    this.observationSpace = options.obs === "uint8"
      ? new Box(0, 255, { shape: [5], dtype: "uint8" })
      : new Box(-Infinity, Infinity, { shape: [5] });
    this.actionSpace = options.actions === "multi"
      ? new MultiDiscrete([3, 2])
      : options.actions === "box"
      ? new Box(-1, 1, { shape: [2] })
      : new Discrete(3);
    if (options.inPlace) this.setObservationTarget = (out) => this.#target = out;
  }

  /** The buffer the env writes observations into (`inPlace`), if a vector env gave it one. */
  get observationTarget(): Float32Array | Uint8Array | undefined {
    return this.#target;
  }

  reset(options: ResetOptions = {}): ResetResult<Float32Array | Uint8Array> {
    this.seedFromReset(options);
    if (options.seed !== undefined) {
      this.#seed = options.seed;
      this.#episode = 0;
      if (options.seed === this.#options.crashResetSeed) throw new Error(`reset crash (seed ${options.seed})`);
    } else this.#episode++;
    this.#t = 0;
    return [this.#observe(0, this.rng.random()), {}];
  }

  step(action: unknown): StepResult<Float32Array | Uint8Array> {
    this.actionSpace.assertContains(action, "action");
    const slow = this.#options.slowSeed === undefined || this.#options.slowSeed === this.#seed;
    const until = performance.now() + (slow ? this.#options.stepDelayMs ?? 0 : 0);
    while (performance.now() < until) { /* work */ }
    this.#t++;
    if (this.#seed === this.#options.crashSeed && this.#t === (this.#options.crashStep ?? 3) && !this.#crashed) {
      this.#crashed = true;
      throw new TypeError(`boom at step ${this.#t} (seed ${this.#seed})`);
    }
    const sum = typeof action === "number"
      ? action
      : Array.from(action as ArrayLike<number>).reduce((a, b) => a + b, 0);
    const noise = this.rng.random();
    const terminated = this.rng.random() < 1 / 6;
    return [this.#observe(sum, noise), sum + noise, terminated, false, {}];
  }

  override close(): void {
    const until = performance.now() + (this.#options.closeDelayMs ?? 0);
    while (performance.now() < until) { /* hang */ }
    const dir = this.#options.closeMarkerDir;
    if (dir) Deno.writeTextFileSync(`${dir}/closed-${this.#seed}`, "");
  }

  #observe(sum: number, noise: number): Float32Array | Uint8Array {
    const values = [this.#seed, this.#t, this.#episode, sum, noise * 100];
    const out = this.#target ?? (this.#options.obs === "uint8" ? new Uint8Array(5) : new Float32Array(5));
    for (let k = 0; k < 5; k++) out[k] = this.#options.obs === "uint8" ? values[k] & 255 : values[k];
    return out;
  }
}

register({
  id: "VectorTest-v0",
  create: (kwargs) => new VectorTestEnv(kwargs as VectorTestOptions),
  maxEpisodeSteps: 8,
});

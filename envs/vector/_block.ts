/**
 * A contiguous block of envs stepped by one thread, writing straight into the vector env's buffers. The sync backend
 * is one block; the worker backend runs one block per Worker (and optionally one on the main thread). Keeping this
 * the only stepping code is what makes both backends give identical results.
 *
 * @module
 */

import type { Env } from "../core.ts";
import type { ObsArray, VectorBuffers, VectorShape } from "./_layout.ts";

/** Where in a vector env a failure happened. */
export type EnvPhase = "make" | "reset" | "step" | "close";

/** Wraps an env's error with the global env index; the original error is the `cause`. */
export function envError(index: number, phase: EnvPhase, cause: unknown, where = ""): Error {
  const message = cause instanceof Error ? cause.message : String(cause);
  return new Error(`vector env: env ${index}${where} failed in ${phase}(): ${message}`, { cause });
}

/** Steps envs `[start, start + envs.length)` of a vector env. */
export class EnvBlock {
  /** Global index of the first env. */
  readonly start: number;
  /** The envs, in order. */
  readonly envs: Env<unknown, unknown>[];
  /** Global index of the env being reset/stepped/closed, for error messages. */
  current = -1;
  readonly #shape: VectorShape;
  readonly #buf: VectorBuffers;
  /** Per-env action views (`actKind === "array"`), made once so stepping allocates nothing. */
  readonly #actionViews: (Int32Array | Float32Array)[] = [];
  /** Running episode return/length; published to the buffers only when an episode ends. */
  readonly #runningReturn: Float64Array;
  readonly #runningLength: Int32Array;

  constructor(envs: Env<unknown, unknown>[], start: number, shape: VectorShape, buffers: VectorBuffers) {
    this.envs = envs;
    this.start = start;
    this.#shape = shape;
    this.#buf = buffers;
    this.#runningReturn = new Float64Array(envs.length);
    this.#runningLength = new Int32Array(envs.length);
    if (shape.actKind === "array") {
      for (let j = 0; j < envs.length; j++) {
        const at = (start + j) * shape.actSize;
        this.#actionViews.push(buffers.actions.subarray(at, at + shape.actSize));
      }
    }
  }

  /** Resets every env (env `i` with `seed + i` when a seed is given) and clears flags and episode stats. */
  reset(seed: number | undefined): void {
    const b = this.#buf;
    for (let j = 0; j < this.envs.length; j++) {
      const i = this.start + j;
      this.current = i;
      const [obs] = this.envs[j].reset(seed === undefined ? {} : { seed: seed + i });
      this.#writeObs(b.observations, i, obs);
      b.rewards[i] = 0;
      b.terminated[i] = 0;
      b.truncated[i] = 0;
      b.episodeReturn[i] = 0;
      b.episodeLength[i] = 0;
      this.#runningReturn[j] = 0;
      this.#runningLength[j] = 0;
    }
    this.current = -1;
  }

  /** Steps every env with its action from the buffer; same-step autoreset of envs whose episode ended. */
  step(): void {
    const b = this.#buf, discrete = this.#shape.actKind === "discrete", actions = b.actions;
    for (let j = 0; j < this.envs.length; j++) {
      const i = this.start + j;
      this.current = i;
      const env = this.envs[j];
      const result = env.step(discrete ? actions[i] : this.#actionViews[j]);
      const reward = result[1], terminated = result[2], truncated = result[3];
      b.rewards[i] = reward;
      b.terminated[i] = terminated ? 1 : 0;
      b.truncated[i] = truncated ? 1 : 0;
      this.#runningReturn[j] += reward;
      this.#runningLength[j]++;
      if (terminated || truncated) {
        this.#writeObs(b.finalObservation, i, result[0]);
        b.episodeReturn[i] = this.#runningReturn[j];
        b.episodeLength[i] = this.#runningLength[j];
        this.#runningReturn[j] = 0;
        this.#runningLength[j] = 0;
        this.#writeObs(b.observations, i, env.reset()[0]);
      } else {
        this.#writeObs(b.observations, i, result[0]);
      }
    }
    this.current = -1;
  }

  /** Closes every env, even when some throw; returns the first failure (global env index and error), if any. */
  close(): { index: number; error: unknown } | undefined {
    let first: { index: number; error: unknown } | undefined;
    for (let j = 0; j < this.envs.length; j++) {
      try {
        this.envs[j].close();
      } catch (error) {
        first ??= { index: this.start + j, error };
      }
    }
    return first;
  }

  #writeObs(out: ObsArray, i: number, obs: unknown): void {
    const size = this.#shape.obsSize;
    const o = obs as ArrayLike<number>;
    if (o === null || typeof o !== "object" || o.length !== size) {
      throw new TypeError(`observation must be an array of ${size} numbers, got ${describe(obs)}`);
    }
    out.set(o, i * size);
  }
}

function describe(x: unknown): string {
  if (x !== null && typeof x === "object" && "length" in x) return `${x.constructor.name} of length ${x.length}`;
  return typeof x;
}

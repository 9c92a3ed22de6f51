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

/**
 * Optional zero-copy protocol for envs whose observations are written by native code: a vector env hands each such
 * env its own row of the (shared) observation buffer, and the env writes every later observation there and returns
 * that row itself, so the frame is never copied. Vector envs call it on `env.unwrapped` when the unwrapped env's
 * observation space has the vector env's size and dtype; wrappers on top may still return other arrays (those are
 * copied into the row), and, as for any native env, must not keep a returned observation past the next call.
 *
 * @example
 * ```ts
 * import { Env, type ResetResult, type StepResult } from "../core.ts";
 * import { Box, Discrete } from "../spaces.ts";
 * import { type ObservationTarget, SyncVectorEnv } from "./mod.ts";
 *
 * class Screen extends Env<Uint8Array, number> implements ObservationTarget {
 *   readonly observationSpace = new Box(0, 255, { shape: [2, 2], dtype: "uint8" });
 *   readonly actionSpace = new Discrete(2);
 *   #frame: Uint8Array = new Uint8Array(4); // native code would write here through a pointer
 *   setObservationTarget(out: Uint8Array | Float32Array): void {
 *     this.#frame = out as Uint8Array;
 *   }
 *   reset(): ResetResult<Uint8Array> {
 *     this.#frame.fill(0);
 *     return [this.#frame, {}];
 *   }
 *   step(action: number): StepResult<Uint8Array> {
 *     this.#frame.fill(action * 255);
 *     return [this.#frame, 0, false, false, {}];
 *   }
 * }
 *
 * using envs = new SyncVectorEnv([() => new Screen(), () => new Screen()]);
 * envs.resetSync();
 * const [obs] = envs.stepSync([0, 1]);
 * console.assert(obs[0] === 0 && obs[4] === 255); // Screen 1 wrote row 1 of the vector env's buffer itself
 * ```
 */
export interface ObservationTarget {
  /** From now on, write every observation into `out` (a view of `observationSpace.size` elements) and return it. */
  setObservationTarget(out: Uint8Array | Float32Array): void;
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
  /** Each env's row of `observations`, handed to envs implementing `ObservationTarget`. */
  readonly #rows: ObsArray[] = [];

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
    for (let j = 0; j < envs.length; j++) {
      const at = (start + j) * shape.obsSize;
      const row = buffers.observations.subarray(at, at + shape.obsSize);
      this.#rows.push(row);
      const inner = envs[j].unwrapped as Env<unknown, unknown> & Partial<ObservationTarget>;
      const space = inner.observationSpace;
      const fits = space.size === shape.obsSize && space.dtype === shape.obsDtype;
      if (fits && typeof inner.setObservationTarget === "function") inner.setObservationTarget(row);
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
    if (obs === this.#rows[i - this.start] && out === this.#buf.observations) return; // written in place
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

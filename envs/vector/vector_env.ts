/**
 * The interface both vector backends implement (PufferLib/envpool style).
 *
 * - **One API, async and sync.** `reset()`, `recv()` and `step()` return Promises in both backends, so code written
 *   against `VectorEnv` runs unchanged on `SyncVectorEnv` (one thread, for tests and debugging) and
 *   `WorkerVectorEnv` (Deno Workers). `resetSync()`, `recvSync()` and `stepSync()` do the same without Promises, also
 *   in both backends: the Worker backend then blocks the calling thread in `Atomics.wait` (Deno allows it on the main
 *   thread), which is also what its Promise versions do by default (`wait: "block"`).
 * - **Split phase.** `send(actions)` validates the actions and starts the step; `recv()` waits for it; `step(a)` is
 *   `send(a)` then `recv()`. Work placed between `send` and `recv` overlaps with the workers.
 * - **Zero copy.** Every returned array is a view of one preallocated buffer (a `SharedArrayBuffer` for the worker
 *   backend) that the next `reset`/`step` overwrites: copy with `.slice()` what must outlive the step.
 * - **Same-step autoreset.** When env `i`'s episode ends (`terminated[i]` or `truncated[i]` is 1), the env is reset
 *   at once in the same step: `obs` row `i` is the first observation of the new episode, `infos.finalObservation`
 *   row `i` the last one of the ended episode, `infos.episodeReturn[i]`/`episodeLength[i]` its return and length.
 *   Learners bootstrap truncated episodes from `finalObservation`. Per-env `info` objects of the single envs are
 *   dropped (they would need a copy or a message per step).
 * - **Seeding.** `reset({ seed })` seeds env `i` with `seed + i`; later autoresets continue each env's generator.
 * - **Errors.** An env that throws closes the whole vector env; the error names the env index and keeps the original
 *   error as `cause`.
 *
 * @module
 */

import type { Space } from "../spaces.ts";
import type { ObsArray, VectorBuffers } from "./_layout.ts";

export type { ActArray, ObsArray, VectorBuffers } from "./_layout.ts";

/** What `reset()` of a vector env accepts. */
export interface VectorResetOptions {
  /** Env `i` is reset with seed `seed + i`; without it every env keeps its generator. */
  seed?: number;
}

/**
 * Episode statistics and final observations, the vector `infos`. The same object (of views) is returned by every
 * step; rows are valid only where `terminated[i] || truncated[i]`.
 *
 * @example
 * ```ts
 * import type { VectorInfo } from "./mod.ts";
 *
 * // Bootstrapping a truncated episode needs its last observation, not the new episode's first.
 * function lastObservation(obs: Float32Array, infos: VectorInfo, i: number, ended: boolean): Float32Array {
 *   const size = obs.length / infos.episodeReturn.length;
 *   const rows = ended ? infos.finalObservation as Float32Array : obs;
 *   return rows.subarray(i * size, (i + 1) * size);
 * }
 * ```
 */
export interface VectorInfo {
  /** `numEnvs x obsSize`: last observation of the episode that just ended in env `i`. */
  finalObservation: ObsArray;
  /** Return of the episode that just ended in env `i`. */
  episodeReturn: Float32Array;
  /** Length (steps) of the episode that just ended in env `i`. */
  episodeLength: Int32Array;
}

/** What `reset()` of a vector env resolves to: `[observations, infos]`. */
export type VectorResetResult = [obs: ObsArray, infos: VectorInfo];

/** What `recv()`/`step()` resolve to: `[observations, rewards, terminated, truncated, infos]`, views of the buffers. */
export type VectorStepResult = [
  obs: ObsArray,
  rewards: Float32Array,
  terminated: Uint8Array,
  truncated: Uint8Array,
  infos: VectorInfo,
];

/**
 * A batch of `numEnvs` copies of one env stepped together.
 *
 * @example
 * ```ts
 * import "../classic/mod.ts"; // registers CartPole-v1
 * import { makeVectorEnv, type VectorEnv } from "./mod.ts";
 *
 * async function meanEpisodeReturn(envs: VectorEnv, steps: number): Promise<number> {
 *   await envs.reset({ seed: 0 });
 *   const actions = new Int32Array(envs.numEnvs);
 *   let sum = 0, count = 0;
 *   for (let t = 0; t < steps; t++) {
 *     for (let i = 0; i < envs.numEnvs; i++) actions[i] = t % 2;
 *     const [, , terminated, truncated, infos] = await envs.step(actions);
 *     for (let i = 0; i < envs.numEnvs; i++) {
 *       if (terminated[i] || truncated[i]) sum += infos.episodeReturn[i], count++;
 *     }
 *   }
 *   return sum / count;
 * }
 *
 * await using envs = await makeVectorEnv("CartPole-v1", 4);
 * console.assert((await meanEpisodeReturn(envs, 200)) > 0);
 * ```
 */
export interface VectorEnv {
  /** Number of envs. */
  readonly numEnvs: number;
  /** Observation space of one env (a `Box`). */
  readonly singleObservationSpace: Space<unknown>;
  /** Action space of one env (`Discrete`, `MultiDiscrete` or a float32 `Box`). */
  readonly singleActionSpace: Space<unknown>;
  /** Batched observation space: a `Box` of shape `[numEnvs, ...single shape]`. */
  readonly observationSpace: Space<unknown>;
  /** Batched action space (Gymnasium's `batch_space`, see `batchSpace`). */
  readonly actionSpace: Space<unknown>;
  /** The preallocated arrays every call returns views of; write actions into `buffers.actions` and call `send()`. */
  readonly buffers: VectorBuffers;
  /** Whether `close()` was called (or an env failed and closed everything). */
  readonly closed: boolean;
  /** Resets every env; env `i` gets seed `seed + i`. */
  reset(options?: VectorResetOptions): Promise<VectorResetResult>;
  /**
   * Starts a step. `actions` holds `numEnvs x actSize` values (copied into `buffers.actions`); without it the
   * actions already in `buffers.actions` are used. Throws a `RangeError` naming the env, value and space for an
   * invalid action, before any env steps.
   */
  send(actions?: ArrayLike<number>): void;
  /** Waits for the step started by `send()`. */
  recv(): Promise<VectorStepResult>;
  /** `send(actions)` then `recv()`. */
  step(actions?: ArrayLike<number>): Promise<VectorStepResult>;
  /** `reset()` without the Promise (blocks until every env is reset). */
  resetSync(options?: VectorResetOptions): VectorResetResult;
  /** `recv()` without the Promise (blocks until the step is done). */
  recvSync(): VectorStepResult;
  /** `step()` without the Promise. */
  stepSync(actions?: ArrayLike<number>): VectorStepResult;
  /** Closes every env (and terminates every Worker). Safe to call more than once. */
  close(): void;
  /** `using envs = ...` closes at the end of the scope. */
  [Symbol.dispose](): void;
  /** `await using envs = ...` closes at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void>;
}

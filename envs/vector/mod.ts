/**
 * Vector environments: `numEnvs` copies of an env stepped as one batch, with zero-copy preallocated buffers,
 * split-phase `send`/`recv`, same-step autoreset and per-env episode statistics. Two backends share one API:
 * `SyncVectorEnv` (this thread) and `WorkerVectorEnv` (Deno Workers over a `SharedArrayBuffer`); `makeVectorEnv`
 * picks one by name. The semantics (async API, views valid until the next call, same-step autoreset, `seed + i`
 * seeding, errors naming the env) are spelled out on `VectorEnv`.
 *
 * Choosing a backend: a batched step through a Worker costs about 4-8 µs more than the same envs stepped in-thread
 * (one Atomics round trip; `bench/vector_bench.ts`). For envs as cheap as CartPole (~1 µs a step) `SyncVectorEnv` is
 * as fast; Workers pay off when a batch's env work is well above that (pixels, native engines) and cores are free.
 *
 * @example
 * ```ts
 * import "../classic/mod.ts"; // registers CartPole-v1
 * import { makeVectorEnv } from "./mod.ts";
 *
 * await using envs = await makeVectorEnv("CartPole-v1", 8, { backend: "worker" });
 * await envs.reset({ seed: 0 });
 * const actions = new Int32Array(envs.numEnvs);
 * for (let t = 0; t < 50; t++) {
 *   for (let i = 0; i < envs.numEnvs; i++) actions[i] = (t + i) % 2;
 *   const [, , terminated, truncated, infos] = await envs.step(actions);
 *   for (let i = 0; i < envs.numEnvs; i++) {
 *     if (terminated[i] || truncated[i]) console.log(`env ${i}: return ${infos.episodeReturn[i]}`);
 *   }
 * }
 * ```
 *
 * @module
 */

export type {
  ActArray,
  ObsArray,
  VectorBuffers,
  VectorEnv,
  VectorInfo,
  VectorResetOptions,
  VectorResetResult,
  VectorStepResult,
} from "./vector_env.ts";
export { batchSpace } from "./_layout.ts";
export type { ObservationTarget } from "./_block.ts";
export { type EnvFactory, SyncVectorEnv, type SyncVectorEnvOptions } from "./sync_vector_env.ts";
export { WorkerVectorEnv, type WorkerVectorEnvOptions } from "./worker_vector_env.ts";
export { makeVectorEnv, type MakeVectorEnvOptions } from "./make_vector_env.ts";

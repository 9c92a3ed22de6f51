/**
 * `makeVectorEnv`: Gymnasium's `make_vec`, picking the backend by name.
 *
 * @module
 */

import type { MakeOptions } from "../registry.ts";
import { SyncVectorEnv } from "./sync_vector_env.ts";
import type { VectorEnv } from "./vector_env.ts";
import { WorkerVectorEnv, type WorkerVectorEnvOptions } from "./worker_vector_env.ts";

/** Options of `makeVectorEnv`. */
export interface MakeVectorEnvOptions extends MakeOptions, Omit<WorkerVectorEnvOptions, "numEnvs"> {
  /** `"sync"` (default): `SyncVectorEnv`, every env in this thread; `"worker"`: `WorkerVectorEnv`. */
  backend?: "sync" | "worker";
}

/**
 * Builds `numEnvs` copies of a registered env behind the `VectorEnv` interface. Worker-only options are ignored by
 * the sync backend.
 *
 * @example
 * ```ts
 * import "../classic/mod.ts"; // registers CartPole-v1
 * import { makeVectorEnv } from "./make_vector_env.ts";
 *
 * for (const backend of ["sync", "worker"] as const) {
 *   await using envs = await makeVectorEnv("CartPole-v1", 2, { backend, numWorkers: 1 });
 *   const [obs] = await envs.reset({ seed: 7 });
 *   console.assert(obs.length === 2 * 4);
 * }
 * ```
 */
export async function makeVectorEnv(
  id: string,
  numEnvs: number,
  options: MakeVectorEnvOptions = {},
): Promise<VectorEnv> {
  const { backend = "sync", ...rest } = options;
  if (backend === "worker") return await WorkerVectorEnv.create(id, { ...rest, numEnvs });
  if (backend !== "sync") throw new TypeError(`makeVectorEnv: backend must be "sync" or "worker", got "${backend}"`);
  return new SyncVectorEnv(id, { numEnvs, kwargs: rest.kwargs, maxEpisodeSteps: rest.maxEpisodeSteps });
}

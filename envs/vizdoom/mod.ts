/**
 * ViZDoom through Deno FFI: `DoomEnv`, the `doom_*` env ids (Sample Factory's), and provisioning.
 *
 * Call `await ensureVizdoom()` once (it builds and caches what is needed; fast afterwards), then construct envs
 * synchronously, also inside Workers: `make("doom_health_gathering_supreme")` or `new DoomEnv("basic")`.
 *
 * @example
 * ```ts
 * import { ensureVizdoom, make } from "../mod.ts";
 * await ensureVizdoom();
 * using env = make("doom_basic");
 * const [obs] = env.reset({ seed: 0 });
 * console.log((obs as Uint8Array).length); // 3 * 72 * 128
 * ```
 *
 * @module
 */

export * from "./doom_env.ts";
export * from "./specs.ts";
export {
  ensureVizdoom,
  type EnsureVizdoomOptions,
  VIZDOOM_VERSION,
  type VizdoomPaths,
  vizdoomPathsSync,
} from "./provision.ts";

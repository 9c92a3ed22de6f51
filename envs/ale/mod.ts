/**
 * The Arcade Learning Environment (Atari 2600) through Deno FFI: `AtariEnv`, the `ALE/<Game>-v5` ids of every ROM
 * ale-py ships, the DQN preprocessing stack (`AtariPreprocessing`, `makeAtari`, registered as `ALE/<Game>-nature-v5`) and
 * provisioning (`ensureAle`).
 *
 * Importing this module registers the ids; constructing an env needs `await ensureAle()` once before (it builds ALE
 * into Arcadia's cache the first time, about 1.5 minutes).
 *
 * @example
 * ```ts
 * import { ensureAle } from "./mod.ts";
 * import { make } from "../registry.ts";
 * await ensureAle();
 * using env = make("ALE/Breakout-v5");
 * const [obs] = env.reset({ seed: 1 });
 * console.assert((obs as Uint8Array).length === 210 * 160 * 3);
 * ```
 *
 * @module
 */

export {
  ALE_LIBRARY_NAME,
  ALE_VERSION,
  type AleInstallation,
  aleInstallation,
  ensureAle,
  romPath,
} from "./provision.ts";
export { ROM_IDS, ROM_MD5 } from "./roms.ts";
export {
  ACTION_MEANINGS,
  ATARI_V5_IDS,
  AtariEnv,
  type AtariEnvOptions,
  type AtariObsType,
  romIdToName,
} from "./atari_env.ts";
export {
  ATARI_NATURE_IDS,
  AtariPreprocessing,
  type AtariPreprocessingOptions,
  makeAtari,
  type MakeAtariOptions,
} from "./preprocessing.ts";

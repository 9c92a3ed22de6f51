/**
 * Environments: the contract, spaces, seeding, registry, checker, wrappers, vector envs and the built-in envs.
 * Importing this module registers every built-in env id.
 *
 * @module
 */

export * from "./core.ts";
export * from "./spaces.ts";
export * from "./rng.ts";
export * from "./registry.ts";
export * from "./checker.ts";
export * from "./wrappers/mod.ts";
export * from "./classic/mod.ts";
export * from "./vector/mod.ts";
export * from "./video/mod.ts";
export * from "./ale/mod.ts";
export * from "./vizdoom/mod.ts";

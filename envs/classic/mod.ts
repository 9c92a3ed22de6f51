/**
 * Classic-control envs in pure TypeScript, Gymnasium 1.x dynamics. Importing this module registers their ids.
 *
 * @module
 */

export * from "./cartpole.ts";

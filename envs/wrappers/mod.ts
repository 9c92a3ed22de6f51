/**
 * Gymnasium's common wrappers. Each overrides one hook of `Wrapper` or of the bases in `_base.ts`.
 *
 * @module
 */

export * from "./_base.ts";
export * from "./time_limit.ts";

/**
 * Gymnasium's common wrappers. Each overrides one hook of `Wrapper` or of the bases in `_base.ts`.
 *
 * @module
 */

export * from "./_base.ts";
export * from "./_running_mean_std.ts";
export * from "./time_limit.ts";
export * from "./record_episode_statistics.ts";
export * from "./clip_reward.ts";
export * from "./normalize_observation.ts";
export * from "./normalize_reward.ts";
export * from "./frame_stack.ts";
export * from "./transform_observation.ts";
export * from "./record_video.ts";

/**
 * Asynchronous PPO (Sample Factory's architecture): rollout workers, batched inference, learner, trajectory buffer,
 * and `trainAppo`, which wires them (or runs them serially in one thread).
 *
 * @module
 */

export * from "./appo.ts";
export * from "./model.ts";
export * from "./multi_categorical.ts";
export * from "./learner.ts";
export * from "./inference.ts";
export * from "./rollout_worker.ts";
export * from "./trajectory_buffer.ts";

/**
 * Arcadia: scriptable reinforcement learning for Deno.
 *
 * Environments with Gymnasium's API (classic control in TypeScript, Atari and Doom through native libraries, vector
 * envs stepping in Workers over shared memory), tensors with autograd on a BLAS-backed CPU backend, and learners
 * (DQN, A2C, PPO, asynchronous PPO) in the spirit of CleanRL and Sample Factory.
 *
 * @example
 * ```ts
 * import { make } from "./mod.ts";
 * using env = make("CartPole-v1");
 * let [obs] = env.reset({ seed: 0 });
 * for (let t = 0; t < 10; t++) {
 *   const [next, _reward, terminated, truncated] = env.step(env.actionSpace.sample());
 *   obs = next;
 *   if (terminated || truncated) [obs] = env.reset();
 * }
 * ```
 *
 * @module
 */

export * from "./envs/mod.ts";
export * from "./models/mod.ts";
export * from "./algos/mod.ts";
// envs and models each keep a seeded generator and a dtype name (neither may import the other); the env ones are public.
export { type DType, Rng } from "./envs/mod.ts";

/**
 * `evaluate`: run a policy for whole episodes on a single env and report per-episode returns.
 *
 * @module
 */

import type { Env } from "../envs/mod.ts";
import { TrainRng } from "./_training.ts";
import type { ObsBatch, Policy } from "./policies.ts";

/** Options of `evaluate`. */
export interface EvaluateOptions {
  /** Number of episodes. */
  episodes: number;
  /** Greedy actions (argmax) instead of sampled ones (actor-critics) or ε-greedy ones (Q-networks). */
  deterministic: boolean;
  /** Seed of the first reset (later episodes continue the env's generator) and of action sampling. */
  seed?: number;
  /** Stop an episode after this many steps even if the env does not (guards against envs without a time limit). */
  maxEpisodeSteps?: number;
}

/** Per-episode results of `evaluate`. */
export interface EvaluateResult {
  /** Return of each episode, in order. */
  returns: number[];
  /** Length of each episode. */
  lengths: number[];
  /** Mean return. */
  mean: number;
  /** Population standard deviation of the returns. */
  std: number;
}

/**
 * Play `episodes` full episodes with `policy` on `env`.
 *
 * @example
 * ```ts
 * import { make } from "../envs/mod.ts";
 * import { Rng } from "../models/mod.ts";
 * import { evaluate } from "./evaluate.ts";
 * import { MlpActorCritic } from "./policies.ts";
 * using env = make("CartPole-v1");
 * const policy = new MlpActorCritic([4], 2, { rng: new Rng(0) });
 * const { mean, std, returns } = evaluate(policy, env, { episodes: 3, deterministic: true, seed: 0 });
 * console.assert(returns.length === 3 && mean >= 8 && std >= 0);
 * ```
 */
export function evaluate(
  policy: Policy,
  env: Env<unknown, unknown>,
  options: EvaluateOptions,
): EvaluateResult {
  const rng = new TrainRng(options.seed ?? 0);
  const action = new Int32Array(1);
  const returns: number[] = [], lengths: number[] = [];
  const limit = options.maxEpisodeSteps ?? Infinity;
  for (let ep = 0; ep < options.episodes; ep++) {
    let [obs] = env.reset(ep === 0 && options.seed !== undefined ? { seed: options.seed } : {});
    let total = 0, length = 0;
    for (;;) {
      policy.act(obs as ObsBatch, action, { deterministic: options.deterministic, rng });
      const [next, reward, terminated, truncated] = env.step(action[0]);
      total += reward;
      length++;
      obs = next;
      if (terminated || truncated || length >= limit) break;
    }
    returns.push(total);
    lengths.push(length);
  }
  const { mean, std } = meanStd(returns);
  return { returns, lengths, mean, std };
}

/**
 * Mean and population standard deviation of episode returns (what the `mean - std` score uses).
 *
 * @example
 * ```ts
 * import { meanStd } from "./evaluate.ts";
 * console.assert(meanStd([1, 3]).std === 1);
 * ```
 */
export function meanStd(returns: readonly number[]): { mean: number; std: number } {
  const mean = returns.reduce((a, b) => a + b, 0) / returns.length;
  const std = Math.sqrt(returns.reduce((a, r) => a + (r - mean) * (r - mean), 0) / returns.length);
  return { mean, std };
}

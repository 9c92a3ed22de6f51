/**
 * Scales rewards by the running standard deviation of the discounted return (Gymnasium's `NormalizeReward`).
 *
 * @module
 */

import type { Env, StepResult } from "../core.ts";
import { Wrapper } from "../core.ts";
import { RunningMeanStd } from "./_running_mean_std.ts";

/** Options of `NormalizeReward`. */
export interface NormalizeRewardOptions {
  /** Discount of the return whose variance is tracked (default 0.99). */
  gamma?: number;
  /** Added to the variance under the square root (default 1e-8). */
  epsilon?: number;
}

/**
 * Returns `reward / sqrt(var + epsilon)`, where `var` is the running variance of the discounted return
 * `G = gamma * G * (1 - terminated) + reward`. As in Gymnasium 1.x, `G` restarts only on termination (not on
 * truncation or reset) and the reward is scaled, not centred.
 *
 * @example
 * ```ts
 * import { NormalizeReward } from "./normalize_reward.ts";
 * import { CartPoleEnv } from "../classic/cartpole.ts";
 *
 * using env = new NormalizeReward(new CartPoleEnv(), { gamma: 0.99 });
 * env.reset({ seed: 0 });
 * const [, reward] = env.step(0);
 * console.assert(reward > 0 && reward !== 1);
 * ```
 */
export class NormalizeReward<O = unknown, A = unknown> extends Wrapper<O, A> {
  /** Whether steps update the statistics (set false to freeze them). */
  updateRunningMean = true;
  /** Running statistics of the discounted return. */
  readonly returnRms: RunningMeanStd = new RunningMeanStd(1);
  /** The discounted return so far. */
  discountedReward = 0;
  readonly gamma: number;
  readonly epsilon: number;
  readonly #g = new Float64Array(1);

  constructor(env: Env<O, A>, options: NormalizeRewardOptions = {}) {
    super(env);
    this.gamma = options.gamma ?? 0.99;
    this.epsilon = options.epsilon ?? 1e-8;
    if (!(this.gamma >= 0 && this.gamma <= 1)) {
      throw new RangeError(`NormalizeReward: gamma must be in [0, 1], got ${this.gamma}`);
    }
    if (!(this.epsilon > 0)) throw new RangeError(`NormalizeReward: epsilon must be positive, got ${this.epsilon}`);
  }

  override step(action: A): StepResult<O> {
    const result = this.env.step(action);
    const reward = result[1];
    this.discountedReward = this.discountedReward * this.gamma * (result[2] ? 0 : 1) + reward;
    if (this.updateRunningMean) {
      this.#g[0] = this.discountedReward;
      this.returnRms.update(this.#g);
    }
    result[1] = reward / Math.sqrt(this.returnRms.var[0] + this.epsilon);
    return result;
  }
}

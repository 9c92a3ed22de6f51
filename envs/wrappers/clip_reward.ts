/**
 * Clips rewards into `[min, max]` (Gymnasium's `ClipReward`).
 *
 * @module
 */

import type { Env } from "../core.ts";
import { RewardWrapper } from "./_base.ts";

/** Options of `ClipReward`; give at least one bound. */
export interface ClipRewardOptions {
  /** Lower bound (default: none). */
  min?: number;
  /** Upper bound (default: none). */
  max?: number;
}

/**
 * Clips every reward into `[min, max]`, e.g. `{ min: -1, max: 1 }` as in the DQN Atari setup.
 *
 * @example
 * ```ts
 * import { ClipReward } from "./clip_reward.ts";
 * import { CartPoleEnv } from "../classic/cartpole.ts";
 *
 * using env = new ClipReward(new CartPoleEnv(), { max: 0.5 });
 * env.reset({ seed: 0 });
 * console.assert(env.step(0)[1] === 0.5);
 * ```
 */
export class ClipReward<O = unknown, A = unknown> extends RewardWrapper<O, A> {
  /** Lower bound (-Infinity when none). */
  readonly min: number;
  /** Upper bound (Infinity when none). */
  readonly max: number;

  constructor(env: Env<O, A>, options: ClipRewardOptions) {
    super(env);
    if (options.min === undefined && options.max === undefined) {
      throw new RangeError("ClipReward: give options.min, options.max or both");
    }
    this.min = options.min ?? -Infinity;
    this.max = options.max ?? Infinity;
    if (!(this.min <= this.max)) {
      throw new RangeError(`ClipReward: min (${this.min}) must not exceed max (${this.max})`);
    }
  }

  reward(reward: number): number {
    return reward < this.min ? this.min : reward > this.max ? this.max : reward;
  }
}

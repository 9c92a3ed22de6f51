/**
 * Bases for wrappers that change one thing: the observation, the reward, or the action. Each subclass overrides one
 * hook (`observation`, `reward`, `action`) and inherits the plumbing.
 *
 * @module
 */

import { type Env, type ResetOptions, type ResetResult, type StepResult, Wrapper } from "../core.ts";

/**
 * Maps every observation (from `reset` and `step`) through `observation()`.
 *
 * @example
 * ```ts
 * import { ObservationWrapper } from "./_base.ts";
 * import { CartPoleEnv } from "../classic/cartpole.ts";
 *
 * class Negate extends ObservationWrapper<Float32Array, number, Float32Array> {
 *   observation(obs: Float32Array): Float32Array {
 *     return obs.map((v) => -v);
 *   }
 * }
 * using env = new Negate(new CartPoleEnv());
 * const [obs] = env.reset({ seed: 0 });
 * console.assert(obs.length === 4);
 * ```
 */
export abstract class ObservationWrapper<O, A, WO> extends Wrapper<O, A, WO, A> {
  constructor(env: Env<WO, A>) {
    super(env);
  }

  /** Maps one observation of the wrapped env. */
  abstract observation(obs: WO): O;

  override reset(options?: ResetOptions): ResetResult<O> {
    const [obs, info] = this.env.reset(options);
    return [this.observation(obs), info];
  }

  override step(action: A): StepResult<O> {
    const [obs, reward, terminated, truncated, info] = this.env.step(action);
    return [this.observation(obs), reward, terminated, truncated, info];
  }
}

/**
 * Maps every reward through `reward()`.
 *
 * @example
 * ```ts
 * import { RewardWrapper } from "./_base.ts";
 * import { CartPoleEnv } from "../classic/cartpole.ts";
 *
 * class Halve<O, A> extends RewardWrapper<O, A> {
 *   reward(r: number): number {
 *     return r / 2;
 *   }
 * }
 * using env = new Halve(new CartPoleEnv());
 * env.reset({ seed: 0 });
 * console.assert(env.step(0)[1] === 0.5);
 * ```
 */
export abstract class RewardWrapper<O, A> extends Wrapper<O, A, O, A> {
  constructor(env: Env<O, A>) {
    super(env);
  }

  /** Maps one reward of the wrapped env. */
  abstract reward(reward: number): number;

  override step(action: A): StepResult<O> {
    const [obs, reward, terminated, truncated, info] = this.env.step(action);
    return [obs, this.reward(reward), terminated, truncated, info];
  }
}

/**
 * Maps every action through `action()` before the wrapped env sees it.
 *
 * @example
 * ```ts
 * import { ActionWrapper } from "./_base.ts";
 * import { CartPoleEnv } from "../classic/cartpole.ts";
 *
 * class Flip<O> extends ActionWrapper<O, number, number> {
 *   action(a: number): number {
 *     return 1 - a;
 *   }
 * }
 * using env = new Flip(new CartPoleEnv());
 * env.reset({ seed: 0 });
 * console.assert(env.step(0)[1] === 1);
 * ```
 */
export abstract class ActionWrapper<O, A, WA> extends Wrapper<O, A, O, WA> {
  constructor(env: Env<O, WA>) {
    super(env);
  }

  /** Maps one action to the wrapped env's action. */
  abstract action(action: A): WA;

  override step(action: A): StepResult<O> {
    return this.env.step(this.action(action));
  }
}

/**
 * Truncates episodes after a fixed number of steps (Gymnasium's `TimeLimit`).
 *
 * @module
 */

import { type Env, type ResetOptions, type ResetResult, type StepResult, Wrapper } from "../core.ts";

/** Options of `TimeLimit`. */
export interface TimeLimitOptions {
  /** Steps after which `truncated` becomes true (a positive integer). */
  maxEpisodeSteps: number;
}

/**
 * Sets `truncated = true` on the `maxEpisodeSteps`-th step of an episode. `make()` adds it for ids registered with
 * `maxEpisodeSteps`.
 *
 * @example
 * ```ts
 * import { TimeLimit } from "./time_limit.ts";
 * import { CartPoleEnv } from "../classic/cartpole.ts";
 *
 * using env = new TimeLimit(new CartPoleEnv(), { maxEpisodeSteps: 2 });
 * env.reset({ seed: 0 });
 * env.step(0);
 * const [, , , truncated] = env.step(1);
 * console.assert(truncated);
 * ```
 */
export class TimeLimit<O = unknown, A = unknown> extends Wrapper<O, A> {
  /** The step limit. */
  readonly maxEpisodeSteps: number;
  #elapsed = 0;

  constructor(env: Env<O, A>, options: TimeLimitOptions) {
    super(env);
    const n = options.maxEpisodeSteps;
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(`TimeLimit: maxEpisodeSteps must be a positive integer, got ${n}`);
    }
    this.maxEpisodeSteps = n;
  }

  /** Steps taken in the current episode. */
  get elapsedSteps(): number {
    return this.#elapsed;
  }

  override reset(options?: ResetOptions): ResetResult<O> {
    this.#elapsed = 0;
    return this.env.reset(options);
  }

  override step(action: A): StepResult<O> {
    const result = this.env.step(action);
    this.#elapsed++;
    if (this.#elapsed >= this.maxEpisodeSteps) result[3] = true;
    return result;
  }
}

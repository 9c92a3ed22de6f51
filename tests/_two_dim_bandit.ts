/**
 * `TwoDimBandit-v0`, a tiny MultiDiscrete env for the APPO tests (registered on import, so rollout Workers can import
 * this module by URL): the observation one-hot encodes a context `c` of 3; the reward is 1 only when dimension 0 picks
 * `c` (of 3) and dimension 1 picks `(c + 1) % 4` (of 4), so a random policy earns 1/12 per step. Episodes last 8
 * steps (truncated): the best return is 8, a random policy's 2/3.
 */
import { Env, type ResetOptions, type ResetResult, type StepResult } from "../envs/core.ts";
import { register } from "../envs/registry.ts";
import { Box, MultiDiscrete } from "../envs/spaces.ts";

/** The env behind `TwoDimBandit-v0`. */
export class TwoDimBandit extends Env<Float32Array, Int32Array> {
  readonly observationSpace: Box<"float32"> = new Box(0, 1, { shape: [3] });
  readonly actionSpace: MultiDiscrete = new MultiDiscrete([3, 4]);
  #context = 0;
  #t = 0;

  override reset(options: ResetOptions = {}): ResetResult<Float32Array> {
    this.seedFromReset(options);
    this.#t = 0;
    return [this.#observe(), {}];
  }

  override step(action: Int32Array): StepResult<Float32Array> {
    this.actionSpace.assertContains(action, "action");
    const reward = action[0] === this.#context && action[1] === (this.#context + 1) % 4 ? 1 : 0;
    this.#t++;
    return [this.#observe(), reward, false, this.#t >= 8, {}];
  }

  #observe(): Float32Array {
    this.#context = this.rng.integers(0, 3);
    const obs = new Float32Array(3);
    obs[this.#context] = 1;
    return obs;
  }
}

register({ id: "TwoDimBandit-v0", create: () => new TwoDimBandit() });

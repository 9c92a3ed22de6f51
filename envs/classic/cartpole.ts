/**
 * CartPole-v1: balance a pole on a cart (Barto, Sutton & Anderson 1983), Gymnasium 1.x dynamics.
 *
 * @module
 */

import { Env, type ResetOptions, type ResetResult, type StepResult } from "../core.ts";
import { register } from "../registry.ts";
import { Box, Discrete } from "../spaces.ts";
import { notResetError, resetBounds, stateOption } from "./_utils.ts";

const GRAVITY = 9.8;
const MASS_CART = 1.0;
const MASS_POLE = 0.1;
const TOTAL_MASS = MASS_POLE + MASS_CART;
const LENGTH = 0.5; // half the pole's length
const POLEMASS_LENGTH = MASS_POLE * LENGTH;
const FORCE_MAG = 10.0;
const TAU = 0.02; // seconds between state updates
const THETA_THRESHOLD = (12 * 2 * Math.PI) / 360;
const X_THRESHOLD = 2.4;

/** Options of `CartPoleEnv`. */
export interface CartPoleOptions {
  /** Reward 0 per step and -1 on termination (Sutton & Barto's original) instead of +1 per step. */
  suttonBartoReward?: boolean;
}

/**
 * CartPole: observation `[x, xDot, theta, thetaDot]` (float32; the state is kept in float64 as in Gymnasium), actions
 * `0` (push left) and `1` (push right), reward +1 per step including the terminating one, termination when
 * `|theta| > 12°` or `|x| > 2.4`. `make("CartPole-v1")` adds a 500-step TimeLimit.
 *
 * `reset({ options })` accepts Gymnasium's `{ low, high }` (each state element uniform in `[low, high)`, default
 * ±0.05) or `{ state: [x, xDot, theta, thetaDot] }` to start from an exact state (used by the fixture tests).
 *
 * @example
 * ```ts
 * import { CartPoleEnv } from "./cartpole.ts";
 * using env = new CartPoleEnv();
 * let [obs] = env.reset({ seed: 42 });
 * let total = 0, done = false;
 * while (!done) {
 *   const [next, reward, terminated, truncated] = env.step(obs[2] > 0 ? 1 : 0);
 *   obs = next;
 *   total += reward;
 *   done = terminated || truncated;
 * }
 * console.assert(total > 10);
 * ```
 */
export class CartPoleEnv extends Env<Float32Array, number> {
  readonly observationSpace: Box<"float32"> = new Box(
    [-X_THRESHOLD * 2, -Infinity, -THETA_THRESHOLD * 2, -Infinity],
    [X_THRESHOLD * 2, Infinity, THETA_THRESHOLD * 2, Infinity],
  );
  readonly actionSpace: Discrete = new Discrete(2);
  override metadata = { renderModes: [] as string[], renderFps: 50 };
  /** The float64 state `[x, xDot, theta, thetaDot]`; read it, don't write it. */
  readonly state: Float64Array = new Float64Array(4);
  readonly #suttonBartoReward: boolean;
  #ready = false;
  #stepsBeyondTerminated = -1;

  constructor(options: CartPoleOptions = {}) {
    super();
    this.#suttonBartoReward = options.suttonBartoReward ?? false;
  }

  reset(options: ResetOptions = {}): ResetResult<Float32Array> {
    this.seedFromReset(options);
    const given = stateOption(options.options, 4, "CartPole");
    if (given) this.state.set(given);
    else {
      const [low, high] = resetBounds(options.options, -0.05, 0.05, "CartPole");
      for (let i = 0; i < 4; i++) this.state[i] = this.rng.uniform(low, high);
    }
    this.#ready = true;
    this.#stepsBeyondTerminated = -1;
    return [Float32Array.from(this.state), {}];
  }

  step(action: number): StepResult<Float32Array> {
    if (!this.#ready) throw notResetError("CartPole");
    this.actionSpace.assertContains(action, "action");
    const s = this.state;
    let x = s[0], xDot = s[1], theta = s[2], thetaDot = s[3];
    const force = action === 1 ? FORCE_MAG : -FORCE_MAG;
    const cos = Math.cos(theta), sin = Math.sin(theta);
    // Grouping follows Gymnasium's expression (np.square) so results agree to the last bit.
    const temp = (force + POLEMASS_LENGTH * (thetaDot * thetaDot) * sin) / TOTAL_MASS;
    const thetaAcc = (GRAVITY * sin - cos * temp) / (LENGTH * (4.0 / 3.0 - (MASS_POLE * (cos * cos)) / TOTAL_MASS));
    const xAcc = temp - (POLEMASS_LENGTH * thetaAcc * cos) / TOTAL_MASS;
    // Explicit Euler, Gymnasium's default integrator.
    x = x + TAU * xDot;
    xDot = xDot + TAU * xAcc;
    theta = theta + TAU * thetaDot;
    thetaDot = thetaDot + TAU * thetaAcc;
    s[0] = x, s[1] = xDot, s[2] = theta, s[3] = thetaDot;

    const terminated = x < -X_THRESHOLD || x > X_THRESHOLD || theta < -THETA_THRESHOLD || theta > THETA_THRESHOLD;
    let reward: number;
    if (!terminated) reward = this.#suttonBartoReward ? 0 : 1;
    else if (this.#stepsBeyondTerminated < 0) {
      this.#stepsBeyondTerminated = 0;
      reward = this.#suttonBartoReward ? -1 : 1;
    } else {
      // Stepping past termination is undefined behaviour; Gymnasium gives 0 (or -1) from here on.
      this.#stepsBeyondTerminated++;
      reward = this.#suttonBartoReward ? -1 : 0;
    }
    return [Float32Array.from(s), reward, terminated, false, {}];
  }
}

register({
  id: "CartPole-v1",
  create: (kwargs) => new CartPoleEnv(kwargs as CartPoleOptions),
  maxEpisodeSteps: 500,
  rewardThreshold: 475,
});

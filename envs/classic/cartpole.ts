/**
 * CartPole-v1: balance a pole on a cart (Barto, Sutton & Anderson 1983), Gymnasium 1.x dynamics.
 *
 * @module
 */

import { Env, type ResetOptions, type ResetResult, type RgbFrame, type StepResult } from "../core.ts";
import { register } from "../registry.ts";
import { Box, Discrete } from "../spaces.ts";
import { Canvas } from "./_raster.ts";
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
const BLACK = [0, 0, 0] as const;

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
 * const frame = env.render(); // 600x400 RGB, drawn like Gymnasium's
 * console.assert(frame !== undefined && frame.data.length === 600 * 400 * 3);
 * ```
 */
export class CartPoleEnv extends Env<Float32Array, number> {
  readonly observationSpace: Box<"float32"> = new Box(
    [-X_THRESHOLD * 2, -Infinity, -THETA_THRESHOLD * 2, -Infinity],
    [X_THRESHOLD * 2, Infinity, THETA_THRESHOLD * 2, Infinity],
  );
  readonly actionSpace: Discrete = new Discrete(2);
  override metadata = { renderModes: ["rgb_array"], renderFps: 50 };
  /** The float64 state `[x, xDot, theta, thetaDot]`; read it, don't write it. */
  readonly state: Float64Array = new Float64Array(4);
  readonly #suttonBartoReward: boolean;
  #ready = false;
  #stepsBeyondTerminated = -1;
  #canvas: Canvas | undefined;

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

  /**
   * A 600x400 frame drawn as Gymnasium's `rgb_array` mode draws it (without anti-aliasing), or undefined before the
   * first reset. The frame's buffer is reused by the next call.
   */
  override render(): RgbFrame | undefined {
    if (!this.#ready) return undefined;
    const canvas = this.#canvas ??= new Canvas(600, 400);
    const scale = 600 / (X_THRESHOLD * 2), poleWidth = 10, poleLen = scale * (2 * LENGTH);
    const cartX = this.state[0] * scale + 300, cartY = 100, axleOffset = 30 / 4;
    canvas.clear([255, 255, 255]);
    const cart: [number, number][] = [[-25, -15], [-25, 15], [25, 15], [25, -15]];
    canvas.polygon(cart.map(([x, y]) => [cartX + x, cartY + y]), BLACK);
    // The pole's corners rotated by -theta (pygame's Vector2.rotate_rad), hinged at the axle.
    const a = -this.state[2], cos = Math.cos(a), sin = Math.sin(a), l = -poleWidth / 2, r = poleWidth / 2;
    const t = poleLen - poleWidth / 2, b = -poleWidth / 2;
    const corner = (x: number, y: number): [number, number] => [
      x * cos - y * sin + cartX,
      x * sin + y * cos + cartY + axleOffset,
    ];
    canvas.polygon([corner(l, b), corner(l, t), corner(r, t), corner(r, b)], [202, 152, 101]);
    canvas.circle(Math.trunc(cartX), Math.trunc(cartY + axleOffset), poleWidth / 2, [129, 132, 203]);
    canvas.span(cartY, 0, 600, BLACK); // the track
    return canvas.frame;
  }
}

register({
  id: "CartPole-v1",
  create: (kwargs) => new CartPoleEnv(kwargs as CartPoleOptions),
  maxEpisodeSteps: 500,
  rewardThreshold: 475,
});

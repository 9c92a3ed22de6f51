/**
 * Acrobot-v1: swing a two-link pendulum's tip above a line (Sutton 1996; Sutton & Barto's book dynamics),
 * Gymnasium 1.x dynamics with one RK4 step per env step.
 *
 * @module
 */

import { Env, type ResetOptions, type ResetResult, type RgbFrame, type StepResult } from "../core.ts";
import { Canvas, rotate } from "./_raster.ts";
import { register } from "../registry.ts";
import { Box, Discrete } from "../spaces.ts";
import { notResetError, resetBounds, stateOption } from "./_utils.ts";

const DT = 0.2;
const LINK_LENGTH_1 = 1.0;
const LINK_MASS_1 = 1.0;
const LINK_MASS_2 = 1.0;
const LINK_COM_POS_1 = 0.5;
const LINK_COM_POS_2 = 0.5;
const LINK_MOI = 1.0;
const MAX_VEL_1 = 4 * Math.PI;
const MAX_VEL_2 = 9 * Math.PI;
const AVAIL_TORQUE = [-1.0, 0.0, 1.0];
const G = 9.8;

/**
 * Acrobot: observation `[cos θ1, sin θ1, cos θ2, sin θ2, θ1dot, θ2dot]` (float32; float64 state
 * `[θ1, θ2, θ1dot, θ2dot]`), actions `0`, `1`, `2` apply torque -1, 0, +1 to the joint between the links, reward -1
 * per step and 0 on the terminating step, termination when `-cos θ1 - cos(θ1 + θ2) > 1`. `make("Acrobot-v1")` adds a
 * 500-step TimeLimit.
 *
 * `reset({ options })` accepts Gymnasium's `{ low, high }` (each state element uniform in `[low, high)`, default ±0.1,
 * rounded to float32 as Gymnasium does) or `{ state: [θ1, θ2, θ1dot, θ2dot] }`, used exactly.
 *
 * @example
 * ```ts
 * import { AcrobotEnv } from "./acrobot.ts";
 * using env = new AcrobotEnv();
 * env.reset({ seed: 0 });
 * const [obs, reward, terminated] = env.step(2);
 * console.assert(obs.length === 6 && reward === -1 && !terminated);
 * ```
 */
export class AcrobotEnv extends Env<Float32Array, number> {
  readonly observationSpace: Box<"float32"> = new Box(
    [-1, -1, -1, -1, -MAX_VEL_1, -MAX_VEL_2],
    [1, 1, 1, 1, MAX_VEL_1, MAX_VEL_2],
  );
  readonly actionSpace: Discrete = new Discrete(3);
  override metadata = { renderModes: ["rgb_array"], renderFps: 15 };
  /** The float64 state `[θ1, θ2, θ1dot, θ2dot]`; read it, don't write it. */
  readonly state: Float64Array = new Float64Array(4);
  // RK4 scratch: derivatives and the intermediate state, reused every step.
  readonly #k = [new Float64Array(4), new Float64Array(4), new Float64Array(4), new Float64Array(4)];
  readonly #y = new Float64Array(4);
  #ready = false;
  #canvas: Canvas | undefined;

  reset(options: ResetOptions = {}): ResetResult<Float32Array> {
    this.seedFromReset(options);
    const given = stateOption(options.options, 4, "Acrobot");
    if (given) this.state.set(given);
    else {
      const [low, high] = resetBounds(options.options, -0.1, 0.1, "Acrobot");
      for (let i = 0; i < 4; i++) this.state[i] = Math.fround(this.rng.uniform(low, high));
    }
    this.#ready = true;
    return [this.#obs(), {}];
  }

  step(action: number): StepResult<Float32Array> {
    if (!this.#ready) throw notResetError("Acrobot");
    this.actionSpace.assertContains(action, "action");
    const torque = AVAIL_TORQUE[action];
    const s = this.state, y = this.#y, [k1, k2, k3, k4] = this.#k;
    // One classic RK4 step over [0, DT], as Gymnasium's rk4(t=[0, dt]).
    const dt2 = DT / 2;
    dsdt(s, torque, k1);
    for (let i = 0; i < 4; i++) y[i] = s[i] + dt2 * k1[i];
    dsdt(y, torque, k2);
    for (let i = 0; i < 4; i++) y[i] = s[i] + dt2 * k2[i];
    dsdt(y, torque, k3);
    for (let i = 0; i < 4; i++) y[i] = s[i] + DT * k3[i];
    dsdt(y, torque, k4);
    for (let i = 0; i < 4; i++) s[i] = s[i] + (DT / 6.0) * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]);
    s[0] = wrap(s[0], -Math.PI, Math.PI);
    s[1] = wrap(s[1], -Math.PI, Math.PI);
    s[2] = Math.min(Math.max(s[2], -MAX_VEL_1), MAX_VEL_1);
    s[3] = Math.min(Math.max(s[3], -MAX_VEL_2), MAX_VEL_2);
    const terminated = -Math.cos(s[0]) - Math.cos(s[1] + s[0]) > 1.0;
    return [this.#obs(), terminated ? 0 : -1, terminated, false, {}];
  }

  /**
   * A 500x500 frame drawn as Gymnasium's `rgb_array` mode draws it (without anti-aliasing), or undefined before the
   * first reset. The frame's buffer is reused by the next call.
   */
  override render(): RgbFrame | undefined {
    if (!this.#ready) return undefined;
    const canvas = this.#canvas ??= new Canvas(500, 500);
    const s = this.state, scale = 500 / (2.2 * 2), offset = 250;
    canvas.clear([255, 255, 255]);
    canvas.span(
      Math.trunc(1 * scale + offset),
      Math.trunc(-2.2 * scale + offset),
      Math.trunc(2.2 * scale + offset) + 1,
      [0, 0, 0],
    );
    // Joint positions (x, y) in pygame coordinates: the first at the centre, the second at the end of link 1.
    const joints: [number, number][] = [[offset, offset], [
      LINK_LENGTH_1 * Math.sin(s[0]) * scale + offset,
      -LINK_LENGTH_1 * Math.cos(s[0]) * scale + offset,
    ]];
    const thetas = [s[0] - Math.PI / 2, s[0] + s[1] - Math.PI / 2];
    for (let i = 0; i < 2; i++) {
      const [x, y] = joints[i], len = 1.0 * scale, w = 0.1 * scale;
      const link: [number, number][] = [[0, -w], [0, w], [len, w], [len, -w]];
      canvas.polygon(link.map(([lx, ly]) => rotate(lx, ly, thetas[i], x, y)), [0, 204, 204]);
      canvas.circle(Math.trunc(x), Math.trunc(y), Math.trunc(0.1 * scale), [204, 204, 0]);
    }
    return canvas.frame;
  }

  #obs(): Float32Array {
    const s = this.state;
    return Float32Array.of(Math.cos(s[0]), Math.sin(s[0]), Math.cos(s[1]), Math.sin(s[1]), s[2], s[3]);
  }
}

/** The equations of motion ("book" variant), written into `out` as `[θ1dot, θ2dot, θ1ddot, θ2ddot]`. */
function dsdt(s: Float64Array, a: number, out: Float64Array): void {
  const m1 = LINK_MASS_1, m2 = LINK_MASS_2, l1 = LINK_LENGTH_1, lc1 = LINK_COM_POS_1, lc2 = LINK_COM_POS_2;
  const I1 = LINK_MOI, I2 = LINK_MOI;
  const theta1 = s[0], theta2 = s[1], dtheta1 = s[2], dtheta2 = s[3];
  const d1 = m1 * lc1 ** 2 + m2 * (l1 ** 2 + lc2 ** 2 + 2 * l1 * lc2 * Math.cos(theta2)) + I1 + I2;
  const d2 = m2 * (lc2 ** 2 + l1 * lc2 * Math.cos(theta2)) + I2;
  const phi2 = m2 * lc2 * G * Math.cos(theta1 + theta2 - Math.PI / 2.0);
  const phi1 = -m2 * l1 * lc2 * dtheta2 ** 2 * Math.sin(theta2) -
    2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * Math.sin(theta2) +
    (m1 * lc1 + m2 * l1) * G * Math.cos(theta1 - Math.PI / 2) + phi2;
  const ddtheta2 = (a + (d2 / d1) * phi1 - m2 * l1 * lc2 * dtheta1 ** 2 * Math.sin(theta2) - phi2) /
    (m2 * lc2 ** 2 + I2 - d2 ** 2 / d1);
  const ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
  out[0] = dtheta1, out[1] = dtheta2, out[2] = ddtheta1, out[3] = ddtheta2;
}

/** Gymnasium's `wrap`: shifts `x` by multiples of `max - min` into `[min, max]`. */
function wrap(x: number, min: number, max: number): number {
  const diff = max - min;
  while (x > max) x = x - diff;
  while (x < min) x = x + diff;
  return x;
}

register({ id: "Acrobot-v1", create: () => new AcrobotEnv(), maxEpisodeSteps: 500, rewardThreshold: -100 });

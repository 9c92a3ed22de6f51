/**
 * Pendulum-v1: swing up an inverted pendulum and keep it upright, Gymnasium 1.x dynamics.
 *
 * @module
 */

import { Env, type ResetOptions, type ResetResult, type RgbFrame, type StepResult } from "../core.ts";
import { Canvas, rotate } from "./_raster.ts";
import { register } from "../registry.ts";
import { Box } from "../spaces.ts";
import { notResetError, stateOption } from "./_utils.ts";

const MAX_SPEED = 8;
const MAX_TORQUE = 2.0;
const DT = 0.05;
const MASS = 1.0;
const LENGTH = 1.0;
const TWO_PI = 2 * Math.PI;
const RED = [204, 77, 77] as const;

/** Options of `PendulumEnv`. */
export interface PendulumOptions {
  /** Gravitational acceleration (default 10). */
  g?: number;
}

/**
 * Pendulum: observation `[cos θ, sin θ, θdot]` (float32; float64 state `[θ, θdot]`), action a `Float32Array` torque
 * in `[-2, 2]`, reward `-(normalize(θ)² + 0.1 θdot² + 0.001 u²)`, never terminates. `make("Pendulum-v1")` adds a
 * 200-step TimeLimit.
 *
 * `reset({ options })` accepts Gymnasium's `{ x_init, y_init }` (also spelled `xInit`, `yInit`: θ uniform in
 * `[-x_init, x_init)`, default π, θdot in `[-y_init, y_init)`, default 1) or `{ state: [θ, θdot] }`.
 *
 * @example
 * ```ts
 * import { PendulumEnv } from "./pendulum.ts";
 * using env = new PendulumEnv();
 * env.reset({ seed: 0 });
 * const [obs, reward] = env.step(Float32Array.of(1.5));
 * console.assert(obs.length === 3 && reward <= 0);
 * ```
 */
export class PendulumEnv extends Env<Float32Array, Float32Array> {
  readonly observationSpace: Box<"float32"> = new Box([-1, -1, -MAX_SPEED], [1, 1, MAX_SPEED]);
  readonly actionSpace: Box<"float32"> = new Box(-MAX_TORQUE, MAX_TORQUE, { shape: [1] });
  override metadata = { renderModes: ["rgb_array"], renderFps: 30 };
  /** The float64 state `[θ, θdot]`; read it, don't write it. */
  readonly state: Float64Array = new Float64Array(2);
  /** The last torque applied (after clipping), or undefined after reset. */
  lastU: number | undefined = undefined;
  readonly #g: number;
  #ready = false;
  #canvas: Canvas | undefined;

  constructor(options: PendulumOptions = {}) {
    super();
    this.#g = options.g ?? 10.0;
  }

  reset(options: ResetOptions = {}): ResetResult<Float32Array> {
    this.seedFromReset(options);
    const opts = options.options;
    const given = stateOption(opts, 2, "Pendulum");
    if (given) this.state.set(given);
    else {
      const x = opts?.x_init ?? opts?.xInit ?? Math.PI, y = opts?.y_init ?? opts?.yInit ?? 1.0;
      if (typeof x !== "number" || typeof y !== "number" || !Number.isFinite(x) || !Number.isFinite(y)) {
        throw new TypeError(`Pendulum: reset options x_init and y_init must be finite numbers, got ${x}, ${y}`);
      }
      this.state[0] = this.rng.uniform(-x, x);
      this.state[1] = this.rng.uniform(-y, y);
    }
    this.lastU = undefined;
    this.#ready = true;
    return [this.#obs(), {}];
  }

  step(action: Float32Array): StepResult<Float32Array> {
    if (!this.#ready) throw notResetError("Pendulum");
    this.actionSpace.assertContains(action, "action");
    const th = this.state[0], thdot = this.state[1];
    // The torque stays float32 as in Gymnasium (NumPy 2 keeps float32 * Python float in float32).
    const u = Math.min(Math.max(action[0], -MAX_TORQUE), MAX_TORQUE);
    this.lastU = u;
    const costs = angleNormalize(th) ** 2 + 0.1 * thdot ** 2 + Math.fround(Math.fround(0.001) * Math.fround(u * u));
    const torqueTerm = Math.fround((3.0 / (MASS * LENGTH ** 2)) * u);
    let newThdot = thdot + ((3 * this.#g) / (2 * LENGTH) * Math.sin(th) + torqueTerm) * DT;
    newThdot = Math.min(Math.max(newThdot, -MAX_SPEED), MAX_SPEED);
    this.state[0] = th + newThdot * DT;
    this.state[1] = newThdot;
    return [this.#obs(), -costs, false, false, {}];
  }

  /**
   * A 500x500 frame drawn as Gymnasium's `rgb_array` mode draws it, without the torque arrow image and without
   * anti-aliasing; undefined before the first reset. The frame's buffer is reused by the next call.
   */
  override render(): RgbFrame | undefined {
    if (!this.#ready) return undefined;
    const canvas = this.#canvas ??= new Canvas(500, 500);
    const scale = 500 / (2.2 * 2), offset = 250, rodLength = LENGTH * scale, rodWidth = 0.2 * scale;
    const angle = this.state[0] + Math.PI / 2;
    canvas.clear([255, 255, 255]);
    const rod: [number, number][] = [[0, -rodWidth / 2], [0, rodWidth / 2], [rodLength, rodWidth / 2], [
      rodLength,
      -rodWidth / 2,
    ]];
    canvas.polygon(rod.map(([x, y]) => rotate(x, y, angle, offset, offset)), RED);
    canvas.circle(offset, offset, Math.trunc(rodWidth / 2), RED);
    const [ex, ey] = rotate(rodLength, 0, angle, offset, offset);
    canvas.circle(Math.trunc(ex), Math.trunc(ey), Math.trunc(rodWidth / 2), RED);
    canvas.circle(offset, offset, Math.trunc(0.05 * scale), [0, 0, 0]);
    return canvas.frame;
  }

  #obs(): Float32Array {
    const th = this.state[0];
    return Float32Array.of(Math.cos(th), Math.sin(th), this.state[1]);
  }
}

/** NumPy's `(x + π) % 2π - π` (floored modulo) into `[-π, π)`. */
function angleNormalize(x: number): number {
  let m = (x + Math.PI) % TWO_PI;
  if (m < 0) m += TWO_PI;
  return m - Math.PI;
}

register({
  id: "Pendulum-v1",
  create: (kwargs) => new PendulumEnv(kwargs as PendulumOptions),
  maxEpisodeSteps: 200,
});

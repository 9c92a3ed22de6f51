/**
 * MountainCar-v0: drive an underpowered car up a hill (Moore 1990), Gymnasium 1.x dynamics.
 *
 * @module
 */

import { Env, type ResetOptions, type ResetResult, type RgbFrame, type StepResult } from "../core.ts";
import { Canvas, rotate } from "./_raster.ts";
import { register } from "../registry.ts";
import { Box, Discrete } from "../spaces.ts";
import { notResetError, resetBounds, stateOption } from "./_utils.ts";

const MIN_POSITION = -1.2;
const MAX_POSITION = 0.6;
const MAX_SPEED = 0.07;
const GOAL_POSITION = 0.5;
const FORCE = 0.001;
const GRAVITY = 0.0025;

/** Options of `MountainCarEnv`. */
export interface MountainCarOptions {
  /** Velocity the car must have (at least) on reaching the goal (default 0). */
  goalVelocity?: number;
}

/**
 * MountainCar: observation `[position, velocity]` (float32; float64 state), actions `0` (accelerate left), `1` (don't
 * accelerate), `2` (accelerate right), reward -1 per step, termination at `position >= 0.5` (and velocity at least
 * `goalVelocity`). `make("MountainCar-v0")` adds a 200-step TimeLimit.
 *
 * `reset({ options })` accepts Gymnasium's `{ low, high }` (position uniform in `[low, high)`, default
 * `[-0.6, -0.4)`, velocity 0) or `{ state: [position, velocity] }` to start from an exact state.
 *
 * @example
 * ```ts
 * import { MountainCarEnv } from "./mountain_car.ts";
 * using env = new MountainCarEnv();
 * let [obs] = env.reset({ seed: 0 });
 * // Push in the direction of motion: builds up enough swing to reach the flag.
 * for (let t = 0; t < 200; t++) {
 *   const [next, , terminated] = env.step(obs[1] >= 0 ? 2 : 0);
 *   obs = next;
 *   if (terminated) break;
 * }
 * console.assert(obs[0] >= 0.5);
 * ```
 */
export class MountainCarEnv extends Env<Float32Array, number> {
  readonly observationSpace: Box<"float32"> = new Box([MIN_POSITION, -MAX_SPEED], [MAX_POSITION, MAX_SPEED]);
  readonly actionSpace: Discrete = new Discrete(3);
  override metadata = { renderModes: ["rgb_array"], renderFps: 30 };
  /** The float64 state `[position, velocity]`; read it, don't write it. */
  readonly state: Float64Array = new Float64Array(2);
  readonly #goalVelocity: number;
  #ready = false;
  #canvas: Canvas | undefined;

  constructor(options: MountainCarOptions = {}) {
    super();
    this.#goalVelocity = options.goalVelocity ?? 0;
  }

  reset(options: ResetOptions = {}): ResetResult<Float32Array> {
    this.seedFromReset(options);
    const given = stateOption(options.options, 2, "MountainCar");
    if (given) this.state.set(given);
    else {
      const [low, high] = resetBounds(options.options, -0.6, -0.4, "MountainCar");
      this.state[0] = this.rng.uniform(low, high);
      this.state[1] = 0;
    }
    this.#ready = true;
    return [Float32Array.from(this.state), {}];
  }

  step(action: number): StepResult<Float32Array> {
    if (!this.#ready) throw notResetError("MountainCar");
    this.actionSpace.assertContains(action, "action");
    let position = this.state[0], velocity = this.state[1];
    velocity += (action - 1) * FORCE + Math.cos(3 * position) * -GRAVITY;
    velocity = Math.min(Math.max(velocity, -MAX_SPEED), MAX_SPEED);
    position += velocity;
    position = Math.min(Math.max(position, MIN_POSITION), MAX_POSITION);
    if (position === MIN_POSITION && velocity < 0) velocity = 0;
    const terminated = position >= GOAL_POSITION && velocity >= this.#goalVelocity;
    this.state[0] = position, this.state[1] = velocity;
    return [Float32Array.from(this.state), -1, terminated, false, {}];
  }
  /**
   * A 600x400 frame drawn as Gymnasium's `rgb_array` mode draws it (without anti-aliasing), or undefined before the
   * first reset. The frame's buffer is reused by the next call.
   */
  override render(): RgbFrame | undefined {
    if (!this.#ready) return undefined;
    const canvas = this.#canvas ??= new Canvas(600, 400);
    const scale = 600 / (MAX_POSITION - MIN_POSITION), carWidth = 40, carHeight = 20, clearance = 10;
    const height = (x: number) => Math.sin(3 * x) * 0.45 + 0.55;
    const BLACK = [0, 0, 0] as const;
    canvas.clear([255, 255, 255]);
    for (let i = 0; i < 99; i++) {
      const x0 = MIN_POSITION + (i / 99) * (MAX_POSITION - MIN_POSITION);
      const x1 = MIN_POSITION + ((i + 1) / 99) * (MAX_POSITION - MIN_POSITION);
      canvas.line(
        (x0 - MIN_POSITION) * scale,
        height(x0) * scale,
        (x1 - MIN_POSITION) * scale,
        height(x1) * scale,
        1,
        BLACK,
      );
    }
    const pos = this.state[0], angle = Math.cos(3 * pos);
    const cx = (pos - MIN_POSITION) * scale, cy = clearance + height(pos) * scale;
    const car: [number, number][] = [[-carWidth / 2, 0], [-carWidth / 2, carHeight], [carWidth / 2, carHeight], [
      carWidth / 2,
      0,
    ]];
    canvas.polygon(car.map(([x, y]) => rotate(x, y, angle, cx, cy)), BLACK);
    for (const wx of [carWidth / 4, -carWidth / 4]) {
      const [x, y] = rotate(wx, 0, angle, cx, cy);
      canvas.circle(Math.trunc(x), Math.trunc(y), Math.trunc(carHeight / 2.5), [128, 128, 128]);
    }
    const flagX = Math.trunc((GOAL_POSITION - MIN_POSITION) * scale),
      flagY1 = Math.trunc(height(GOAL_POSITION) * scale);
    const flagY2 = flagY1 + 50;
    for (let y = flagY1; y <= flagY2; y++) canvas.span(y, flagX, flagX + 1, BLACK);
    canvas.polygon([[flagX, flagY2], [flagX, flagY2 - 10], [flagX + 25, flagY2 - 5]], [204, 204, 0]);
    return canvas.frame;
  }
}

register({
  id: "MountainCar-v0",
  create: (kwargs) => new MountainCarEnv(kwargs as MountainCarOptions),
  maxEpisodeSteps: 200,
  rewardThreshold: -110,
});

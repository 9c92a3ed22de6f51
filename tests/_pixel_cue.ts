/**
 * `PixelCue-v0`, a small pixel env for the APPO tests (registered on import, so rollout Workers can import this module
 * by URL). A frame is a 3x36x36 uint8 CHW image of noise with one 8x8 square, red or green, at a random place; the
 * action names the colour (0 red, 1 green). Episodes last `steps` steps (default 8, truncated).
 *
 * - `memory: false` (default): every step shows a square and pays 1 for naming its colour (random play earns half).
 * - `memory: true`: only the first frame shows the square, the others are black; the last step pays 1 for naming that
 *   colour, so the policy must carry it in its recurrent state (random or memoryless play earns 0.5).
 */
import { Env, type ResetOptions, type ResetResult, type StepResult } from "../envs/core.ts";
import { register } from "../envs/registry.ts";
import { Box, Discrete } from "../envs/spaces.ts";

const C = 3, H = 36, W = 36, SIDE = 8;

/** The env behind `PixelCue-v0`. */
export class PixelCue extends Env<Uint8Array, number> {
  readonly observationSpace: Box<"uint8"> = new Box(0, 255, { shape: [C, H, W], dtype: "uint8" });
  readonly actionSpace: Discrete = new Discrete(2);
  readonly #memory: boolean;
  readonly #steps: number;
  #cue = 0;
  #t = 0;

  constructor(options: { memory?: boolean; steps?: number } = {}) {
    super();
    this.#memory = options.memory ?? false;
    this.#steps = options.steps ?? 8;
  }

  override reset(options: ResetOptions = {}): ResetResult<Uint8Array> {
    this.seedFromReset(options);
    this.#t = 0;
    this.#cue = this.rng.integers(0, 2);
    return [this.#observe(true), {}];
  }

  override step(action: number): StepResult<Uint8Array> {
    this.actionSpace.assertContains(action, "action");
    this.#t++;
    const last = this.#t >= this.#steps;
    const pays = !this.#memory || last;
    const reward = pays && action === this.#cue ? 1 : 0;
    if (!this.#memory) this.#cue = this.rng.integers(0, 2);
    return [this.#observe(!this.#memory), reward, false, last, {}];
  }

  #observe(showCue: boolean): Uint8Array {
    const obs = new Uint8Array(C * H * W);
    if (!showCue) return obs;
    for (let i = 0; i < obs.length; i++) obs[i] = this.rng.integers(0, 64);
    {
      const y0 = this.rng.integers(0, H - SIDE + 1), x0 = this.rng.integers(0, W - SIDE + 1);
      const channel = this.#cue === 0 ? 0 : 1;
      for (let y = y0; y < y0 + SIDE; y++) {
        for (let x = x0; x < x0 + SIDE; x++) obs[channel * H * W + y * W + x] = 255;
      }
    }
    return obs;
  }
}

register({ id: "PixelCue-v0", create: (kwargs) => new PixelCue(kwargs as { memory?: boolean; steps?: number }) });

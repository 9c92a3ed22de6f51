/**
 * The environment contract, Gymnasium's in TypeScript tuples:
 *
 * ```
 * const [obs, info] = env.reset({ seed: 0 });
 * const [obs, reward, terminated, truncated, info] = env.step(action);
 * ```
 *
 * `terminated` means the MDP reached a terminal state (do not bootstrap); `truncated` means it was cut short (time
 * limit, bootstrap from the value of `obs`). Observations returned by native envs may be views of a buffer the env
 * reuses on the next step (zero-copy); copy with `.slice()` to keep one.
 *
 * @module
 */

import { Rng } from "./rng.ts";
import type { Space } from "./spaces.ts";

/** Extra per-step or per-reset information (`info` in Gymnasium). */
export type Info = Record<string, unknown>;

/** What `reset()` accepts. */
export interface ResetOptions {
  /** Reseeds the env's generator; the same seed gives the same trajectory for the same actions. */
  seed?: number;
  /** Env-specific reset options. */
  options?: Record<string, unknown>;
}

/** What `reset()` returns. */
export type ResetResult<O> = [obs: O, info: Info];

/** What `step()` returns. */
export type StepResult<O> = [obs: O, reward: number, terminated: boolean, truncated: boolean, info: Info];

/** Registration data of an env (Gymnasium's `EnvSpec`, the fields we use). */
export interface EnvSpec {
  /** Registered id, e.g. `CartPole-v1`. */
  id: string;
  /** Steps after which `make()` truncates episodes (TimeLimit), if any. */
  maxEpisodeSteps?: number;
  /** Mean return at which the task counts as solved, if any. */
  rewardThreshold?: number;
  /** Keyword arguments the env was made with. */
  kwargs?: Record<string, unknown>;
}

/** Static facts about rendering. */
export interface EnvMetadata {
  /** Render modes the env supports, e.g. `["rgb_array"]`. */
  renderModes: string[];
  /** Frames per second of rendered video. */
  renderFps?: number;
}

/** An RGB frame, `height x width x 3`, row-major. */
export interface RgbFrame {
  data: Uint8Array;
  width: number;
  height: number;
}

/**
 * Base class of every environment.
 *
 * Subclasses implement `reset()` (calling `this.seedFromReset(options)` first) and `step()`, and release native
 * resources in `close()`, which must be safe to call twice.
 *
 * @example
 * ```ts
 * import { Env, type ResetOptions, type ResetResult, type StepResult } from "./core.ts";
 * import { Box, Discrete } from "./spaces.ts";
 *
 * class Coin extends Env<Float32Array, number> {
 *   readonly observationSpace: Box<"float32"> = new Box(0, 1, { shape: [1] });
 *   readonly actionSpace: Discrete = new Discrete(2);
 *   override reset(options: ResetOptions = {}): ResetResult<Float32Array> {
 *     this.seedFromReset(options);
 *     return [Float32Array.of(0), {}];
 *   }
 *   override step(action: number): StepResult<Float32Array> {
 *     this.actionSpace.assertContains(action, "action");
 *     const side = this.rng.integers(0, 2);
 *     return [Float32Array.of(side), side === action ? 1 : 0, true, false, {}];
 *   }
 * }
 * using env = new Coin();
 * env.reset({ seed: 1 });
 * const [, reward] = env.step(0);
 * console.assert(reward === 0 || reward === 1);
 * ```
 */
export abstract class Env<O = unknown, A = unknown> {
  /** The space observations belong to. */
  abstract readonly observationSpace: Space<O>;
  /** The space actions must belong to. */
  abstract readonly actionSpace: Space<A>;
  /** Rendering facts. */
  metadata: EnvMetadata = { renderModes: [] };
  /** Set by `make()`. */
  spec?: EnvSpec;
  /** The env's generator (Gymnasium's `np_random`), reseeded by `reset({ seed })`. */
  protected rng: Rng = new Rng();

  /** Starts a new episode. */
  abstract reset(options?: ResetOptions): ResetResult<O>;

  /** Advances one step. Throws a `RangeError` for an action outside `actionSpace`. */
  abstract step(action: A): StepResult<O>;

  /** The current frame for video, when the env supports `rgb_array` rendering. */
  render(): RgbFrame | undefined {
    return undefined;
  }

  /** Releases resources. Safe to call more than once. */
  close(): void {}

  /** `using env = ...` closes the env at the end of the scope. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** The innermost env under any wrappers. */
  get unwrapped(): Env<unknown, unknown> {
    return this;
  }

  /** Reseeds `rng` when `options.seed` is given (call first in `reset`). */
  protected seedFromReset(options: ResetOptions | undefined): void {
    if (options?.seed !== undefined) this.rng = new Rng(options.seed);
  }
}

/**
 * Base of wrappers: forwards everything to the wrapped env. Subclasses override one hook.
 *
 * @example
 * ```ts
 * import { Wrapper, type StepResult } from "./core.ts";
 * class DoubleReward<O, A> extends Wrapper<O, A> {
 *   override step(action: A): StepResult<O> {
 *     const [obs, reward, terminated, truncated, info] = this.env.step(action);
 *     return [obs, 2 * reward, terminated, truncated, info];
 *   }
 * }
 * ```
 */
export class Wrapper<O = unknown, A = unknown, WO = O, WA = A> extends Env<O, A> {
  /** The wrapped env. */
  readonly env: Env<WO, WA>;

  constructor(env: Env<WO, WA>) {
    super();
    this.env = env;
    this.metadata = env.metadata;
    this.spec = env.spec;
  }

  get observationSpace(): Space<O> {
    return this.env.observationSpace as unknown as Space<O>;
  }

  get actionSpace(): Space<A> {
    return this.env.actionSpace as unknown as Space<A>;
  }

  reset(options?: ResetOptions): ResetResult<O> {
    return this.env.reset(options) as unknown as ResetResult<O>;
  }

  step(action: A): StepResult<O> {
    return this.env.step(action as unknown as WA) as unknown as StepResult<O>;
  }

  override render(): RgbFrame | undefined {
    return this.env.render();
  }

  override close(): void {
    this.env.close();
  }

  override get unwrapped(): Env<unknown, unknown> {
    return this.env.unwrapped;
  }
}

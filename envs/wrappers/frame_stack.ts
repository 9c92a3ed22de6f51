/**
 * Stacks the last `k` observations along a new leading axis (Gymnasium's `FrameStackObservation`).
 *
 * @module
 */

import { type Env, type ResetOptions, type ResetResult, type StepResult, Wrapper } from "../core.ts";
import { Box, type Space } from "../spaces.ts";

/** Options of `FrameStack`. */
export interface FrameStackOptions {
  /** Number of frames to stack (a positive integer). */
  stackSize: number;
  /** What fills the stack after a reset: copies of the reset frame (`"reset"`, default, as Gymnasium 1.x) or zeros. */
  padding?: "reset" | "zero";
}

type Frame = Uint8Array | Float32Array;

/**
 * Observations become `[stackSize, ...frameShape]`, oldest frame first, newest last.
 *
 * No per-step allocation and no per-step restacking: frames live in a mirrored ring of `2 * stackSize` slots; each
 * new frame is written into its slot and that slot's mirror, so the last `stackSize` frames always sit contiguously
 * and the observation is a view of them (one of `stackSize` views made up front). Each step copies the new frame
 * twice and nothing else. Because of this, the returned observation is overwritten by later steps: `.slice()` it to
 * keep it (as with native envs' zero-copy observations).
 *
 * @example
 * ```ts
 * import { FrameStack } from "./frame_stack.ts";
 * import { CartPoleEnv } from "../classic/cartpole.ts";
 *
 * using env = new FrameStack(new CartPoleEnv(), { stackSize: 4 });
 * const [first] = env.reset({ seed: 0 });
 * console.assert(env.observationSpace.shape.join() === "4,4");
 * console.assert(first.subarray(0, 4).join() === first.subarray(12, 16).join()); // padded with the reset frame
 * const [obs] = env.step(1);
 * console.assert(obs.length === 16);
 * ```
 */
export class FrameStack<T extends Frame = Frame, A = unknown> extends Wrapper<T, A, T, A> {
  /** Number of stacked frames. */
  readonly stackSize: number;
  /** How the stack is padded after a reset. */
  readonly padding: "reset" | "zero";
  readonly #space: Box;
  readonly #frameSize: number;
  readonly #ring: T;
  readonly #views: T[];
  readonly #zero: T;
  #head = 0;

  constructor(env: Env<T, A>, options: FrameStackOptions) {
    super(env);
    const inner = env.observationSpace;
    if (!(inner instanceof Box)) throw new TypeError(`FrameStack: needs a Box observation space, got ${inner}`);
    const k = options.stackSize;
    if (!Number.isInteger(k) || k < 1) {
      throw new RangeError(`FrameStack: stackSize must be a positive integer, got ${k}`);
    }
    this.stackSize = k;
    this.padding = options.padding ?? "reset";
    const n = inner.size;
    this.#frameSize = n;
    const Ctor = (inner.dtype === "uint8" ? Uint8Array : Float32Array) as unknown as new (n: number) => T;
    this.#ring = new Ctor(2 * k * n);
    this.#views = Array.from({ length: k }, (_, h) => this.#ring.subarray((h + 1) * n, (h + 1 + k) * n) as T);
    // Gymnasium's zero padding: zeros, clipped into the space when 0 is outside it.
    this.#zero = new Ctor(n);
    for (let i = 0; i < n; i++) this.#zero[i] = Math.min(Math.max(0, inner.low[i]), inner.high[i]);
    const low = new Float64Array(k * n), high = new Float64Array(k * n);
    for (let j = 0; j < k; j++) low.set(inner.low, j * n), high.set(inner.high, j * n);
    this.#space = new Box(low, high, { shape: [k, ...inner.shape], dtype: inner.dtype });
  }

  /** A Box of shape `[stackSize, ...frameShape]` with the frame bounds repeated. */
  override get observationSpace(): Box & Space<T> {
    return this.#space as Box & Space<T>;
  }

  override reset(options?: ResetOptions): ResetResult<T> {
    const [obs, info] = this.env.reset(options);
    const pad = this.padding === "reset" ? obs : this.#zero, n = this.#frameSize;
    for (let slot = 0; slot < 2 * this.stackSize; slot++) this.#ring.set(pad, slot * n);
    this.#head = this.stackSize - 1;
    return [this.#push(obs), info];
  }

  override step(action: A): StepResult<T> {
    const result = this.env.step(action) as unknown as [unknown, ...unknown[]];
    result[0] = this.#push(result[0] as T);
    return result as unknown as StepResult<T>;
  }

  /** Writes `frame` into the next slot and its mirror; returns the view of the last `stackSize` frames. */
  #push(frame: T): T {
    const h = this.#head = (this.#head + 1) % this.stackSize, n = this.#frameSize;
    if (frame.length !== n) throw new RangeError(`FrameStack: frame has ${frame.length} elements, expected ${n}`);
    this.#ring.set(frame, h * n);
    this.#ring.set(frame, (h + this.stackSize) * n);
    return this.#views[h];
  }
}

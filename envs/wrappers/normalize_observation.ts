/**
 * Normalizes observations to running mean 0 and variance 1 (Gymnasium's `NormalizeObservation`).
 *
 * @module
 */

import type { Env } from "../core.ts";
import { Box } from "../spaces.ts";
import { ObservationWrapper } from "./_base.ts";
import { RunningMeanStd } from "./_running_mean_std.ts";

/** Options of `NormalizeObservation`. */
export interface NormalizeObservationOptions {
  /** Added to the variance under the square root (default 1e-8). */
  epsilon?: number;
}

/**
 * Returns `(obs - mean) / sqrt(var + epsilon)` as a `Float32Array`, with `mean` and `var` running statistics updated
 * on every observation (reset ones included) while `updateRunningMean` is true. The observation space becomes an
 * unbounded float32 Box of the same shape. The returned array is reused on the next `reset`/`step`: `.slice()` it to
 * keep it.
 *
 * @example
 * ```ts
 * import { NormalizeObservation } from "./normalize_observation.ts";
 * import { MountainCarEnv } from "../classic/mountain_car.ts";
 *
 * using env = new NormalizeObservation(new MountainCarEnv());
 * env.reset({ seed: 0 });
 * for (let t = 0; t < 100; t++) env.step(t % 3);
 * env.updateRunningMean = false; // freeze the statistics, e.g. for evaluation
 * console.assert(env.obsRms.count > 100);
 * ```
 */
export class NormalizeObservation<A = unknown> extends ObservationWrapper<Float32Array, A, Uint8Array | Float32Array> {
  /** Whether observations update the statistics (set false to freeze them). */
  updateRunningMean = true;
  /** The running statistics (save and restore them with the policy). */
  readonly obsRms: RunningMeanStd;
  readonly epsilon: number;
  readonly #space: Box<"float32">;
  readonly #out: Float32Array;

  constructor(env: Env<Uint8Array | Float32Array, A>, options: NormalizeObservationOptions = {}) {
    super(env);
    const inner = env.observationSpace;
    if (!(inner instanceof Box)) {
      throw new TypeError(`NormalizeObservation: needs a Box observation space, got ${inner}`);
    }
    this.epsilon = options.epsilon ?? 1e-8;
    if (!(this.epsilon > 0)) {
      throw new RangeError(`NormalizeObservation: epsilon must be positive, got ${this.epsilon}`);
    }
    this.#space = new Box(-Infinity, Infinity, { shape: inner.shape, dtype: "float32" });
    this.obsRms = new RunningMeanStd(inner.size);
    this.#out = new Float32Array(inner.size);
  }

  override get observationSpace(): Box<"float32"> {
    return this.#space;
  }

  observation(obs: Uint8Array | Float32Array): Float32Array {
    if (this.updateRunningMean) this.obsRms.update(obs);
    const { mean, var: variance } = this.obsRms, out = this.#out, eps = this.epsilon;
    for (let i = 0; i < out.length; i++) out[i] = (obs[i] - mean[i]) / Math.sqrt(variance[i] + eps);
    return out;
  }
}

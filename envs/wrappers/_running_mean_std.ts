/**
 * Running mean and variance (Chan et al.'s parallel update), as Gymnasium's `RunningMeanStd`.
 *
 * @module
 */

/**
 * Element-wise running mean and (population) variance, starting from mean 0, variance 1 and a count of `epsilon`,
 * like Gymnasium's. Kept in float64 (Gymnasium keeps observation statistics in float32).
 *
 * @example
 * ```ts
 * import { RunningMeanStd } from "./_running_mean_std.ts";
 * const rms = new RunningMeanStd(1);
 * for (const x of [1, 2, 3]) rms.update(Float64Array.of(x));
 * console.assert(Math.abs(rms.mean[0] - 2) < 1e-3);
 * ```
 */
export class RunningMeanStd {
  /** Running mean per element. */
  readonly mean: Float64Array;
  /** Running variance per element. */
  readonly var: Float64Array;
  /** Number of samples seen (plus the initial epsilon). */
  count: number;

  constructor(size: number, epsilon = 1e-4) {
    this.mean = new Float64Array(size);
    this.var = new Float64Array(size).fill(1);
    this.count = epsilon;
  }

  /** Adds one sample (a batch of one: batch mean `x`, batch variance 0). */
  update(x: ArrayLike<number>): void {
    const total = this.count + 1;
    const mean = this.mean, variance = this.var, count = this.count;
    for (let i = 0; i < mean.length; i++) {
      const delta = x[i] - mean[i];
      mean[i] += delta / total;
      variance[i] = (variance[i] * count + (delta * delta * count) / total) / total;
    }
    this.count = total;
  }
}

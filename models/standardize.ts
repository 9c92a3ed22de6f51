/**
 * Per-feature standardization of input batches by running statistics (Sample Factory's `normalize_input`, Stable
 * Baselines' `VecNormalize`): batch moments to update the statistics, and `(x - mean) / std` clipped, in place. One
 * native pass each where the kernels load (a batch of 1024 Doom frames is 28M values), the same values as the
 * TypeScript loops (double precision, rows added in order, rounded once).
 *
 * @module
 */

import { nativeKernels } from "./backends/native/native.ts";

/**
 * `x[r, i] = clamp((x[r, i] - mean[i]) * inv[i], -clip, clip)` for `rows` rows of `mean.length` values, in place.
 *
 * @example
 * ```ts
 * import { standardize } from "./standardize.ts";
 * const x = new Float32Array([1, 10, 3, 30]); // two rows of two features
 * standardize(x, 2, new Float64Array([2, 20]), new Float64Array([1, 0.1]), 5);
 * console.log([...x]); // [-1, -1, 1, 1]
 * ```
 */
export function standardize(x: Float32Array, rows: number, mean: Float64Array, inv: Float64Array, clip: number): void {
  const size = mean.length;
  if (inv.length !== size || x.length < rows * size) {
    throw new RangeError(
      `standardize: ${rows} rows of ${size} values need ${rows * size} inputs and ${size} inverse stds, got ` +
        `${x.length} and ${inv.length}`,
    );
  }
  const k = rows * size >= 256 ? nativeKernels() : null;
  if (k !== null) {
    k.symbols.arc_standardize(x, rows, size, mean, inv, clip);
    return;
  }
  for (let r = 0, o = 0; r < rows; r++, o += size) {
    for (let i = 0; i < size; i++) {
      const y = (x[o + i] - mean[i]) * inv[i];
      x[o + i] = y > clip ? clip : y < -clip ? -clip : y;
    }
  }
}

/** Moments of a batch: per-feature mean and sum of squared deviations, over `count` rows. */
export interface BatchMoments {
  mean: Float64Array;
  m2: Float64Array;
  count: number;
}

/**
 * Per-feature mean and sum of squared deviations of the rows of `x` (`[rows, size]`) whose `mask` entry is nonzero
 * (all rows without a mask); for Chan et al.'s parallel update of running statistics.
 *
 * @example
 * ```ts
 * import { batchMoments } from "./standardize.ts";
 * const { mean, m2, count } = batchMoments(new Float32Array([1, 5, 3, 7, 100, 100]), 3, 2, new Uint8Array([1, 1, 0]));
 * console.log(count, [...mean], [...m2]); // 2 [2, 6] [2, 2]
 * ```
 */
export function batchMoments(x: Float32Array, rows: number, size: number, mask?: Uint8Array): BatchMoments {
  if (x.length < rows * size || (mask && mask.length < rows)) {
    throw new RangeError(
      `batchMoments: ${rows} rows of ${size} values need ${rows * size} inputs and ${rows} mask bytes, got ` +
        `${x.length} and ${mask?.length ?? "no mask"}`,
    );
  }
  const mean = new Float64Array(size), m2 = new Float64Array(size);
  const k = rows * size >= 256 ? nativeKernels() : null;
  if (k !== null) {
    const count = k.symbols.arc_masked_moments(x, rows, size, mask ?? null, mean, m2);
    return { mean, m2, count };
  }
  let count = 0;
  for (let r = 0; r < rows; r++) {
    if (mask && !mask[r]) continue;
    count++;
    for (let i = 0; i < size; i++) mean[i] += x[r * size + i];
  }
  if (count === 0) return { mean, m2, count };
  for (let i = 0; i < size; i++) mean[i] /= count;
  for (let r = 0; r < rows; r++) {
    if (mask && !mask[r]) continue;
    for (let i = 0; i < size; i++) {
      const d = x[r * size + i] - mean[i];
      m2[i] += d * d;
    }
  }
  return { mean, m2, count };
}

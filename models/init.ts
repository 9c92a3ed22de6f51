/**
 * Weight initializers (in place, PyTorch semantics) driven by a seeded `Rng`.
 *
 * @module
 */

import type { Rng } from "./rng.ts";
import type { Tensor } from "./tensor.ts";

/** Fan-in and fan-out as PyTorch computes them (`[out, in, ...kernel]`). */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) throw new Error(`fans: need at least 2 dims, got [${shape.join(",")}]`);
  let receptive = 1;
  for (let i = 2; i < shape.length; i++) receptive *= shape[i];
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

/** Recommended gain for a nonlinearity (`torch.nn.init.calculate_gain`). */
export function calculateGain(nonlinearity: "linear" | "relu" | "tanh" | "sigmoid" | "elu"): number {
  switch (nonlinearity) {
    case "relu":
      return Math.SQRT2;
    case "tanh":
      return 5 / 3;
    default:
      return 1;
  }
}

/** Fill with U(lo, hi). */
export function uniformInit(t: Tensor, lo: number, hi: number, rng: Rng): Tensor {
  for (let i = 0; i < t.size; i++) t.data[i] = rng.range(lo, hi);
  return t;
}

/** Fill with N(mean, std²). */
export function normalInit(t: Tensor, mean: number, std: number, rng: Rng): Tensor {
  for (let i = 0; i < t.size; i++) t.data[i] = mean + std * rng.normal();
  return t;
}

/** Fill with a constant. */
export function constantInit(t: Tensor, value: number): Tensor {
  t.data.fill(value);
  return t;
}

/**
 * PyTorch's default for `Linear`/`Conv2d` weights: `kaiming_uniform_(a=√5)`, i.e. U(±1/√fanIn).
 */
export function pytorchDefaultInit(weight: Tensor, rng: Rng): Tensor {
  const bound = 1 / Math.sqrt(fans(weight.shape).fanIn);
  return uniformInit(weight, -bound, bound, rng);
}

/**
 * Orthogonal init (`torch.nn.init.orthogonal_`): rows (or columns, whichever are fewer) orthonormal, scaled by
 * `gain`. Uses modified Gram–Schmidt in float64 on a Gaussian matrix, which matches QR with the sign fix.
 *
 * @example
 * ```ts
 * import { orthogonalInit, Rng, zeros } from "./mod.ts";
 * const w = orthogonalInit(zeros([64, 32]), { gain: Math.SQRT2, rng: new Rng(0) });
 * ```
 */
export function orthogonalInit(t: Tensor, options: { gain?: number; rng: Rng }): Tensor {
  const gain = options.gain ?? 1;
  if (t.ndim < 2) throw new Error(`orthogonalInit: need at least 2 dims, got [${t.shape.join(",")}]`);
  const rows = t.shape[0], cols = t.size / rows;
  // Work on a tall matrix A (R × C, R >= C) stored column-major: column j is a[j*R .. j*R+R).
  const R = Math.max(rows, cols), C = Math.min(rows, cols);
  const a = new Float64Array(R * C);
  for (let i = 0; i < a.length; i++) a[i] = options.rng.normal();
  for (let j = 0; j < C; j++) {
    const cj = j * R;
    for (let k = 0; k < j; k++) {
      const ck = k * R;
      let dot = 0;
      for (let i = 0; i < R; i++) dot += a[ck + i] * a[cj + i];
      for (let i = 0; i < R; i++) a[cj + i] -= dot * a[ck + i];
    }
    let norm = 0;
    for (let i = 0; i < R; i++) norm += a[cj + i] * a[cj + i];
    norm = Math.sqrt(norm);
    for (let i = 0; i < R; i++) a[cj + i] /= norm;
  }
  // rows >= cols: W[r, c] = Q[r, c]; rows < cols: W = Q^T, W[r, c] = Q[c, r].
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      t.data[r * cols + c] = gain * (rows >= cols ? a[c * R + r] : a[r * R + c]);
    }
  }
  return t;
}

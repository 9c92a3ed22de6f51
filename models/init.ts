/**
 * Weight initializers (in place, PyTorch semantics) driven by a seeded `Rng`.
 *
 * @module
 */

import type { Rng } from "./rng.ts";
import type { Tensor } from "./tensor.ts";
import { cpuBackend } from "./backends/cpu.ts";

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
  const d = t.data; // one host synchronization, not one per element
  for (let i = 0; i < d.length; i++) d[i] = rng.range(lo, hi);
  return t;
}

/** Fill with N(mean, std²). */
export function normalInit(t: Tensor, mean: number, std: number, rng: Rng): Tensor {
  const d = t.data;
  for (let i = 0; i < d.length; i++) d[i] = mean + std * rng.normal();
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
 * `gain`. Block Gram–Schmidt on a Gaussian matrix: earlier blocks are projected out with two GEMM passes
 * (re-orthogonalisation keeps float32 exact to ~1e-6), then modified Gram–Schmidt within each block in float64.
 * The triangular factor has a positive diagonal, which matches QR with PyTorch's sign fix.
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
  // Orthonormalise the C = min(rows, cols) vectors of length R = max(rows, cols), stored as the rows of q (C × R).
  const R = Math.max(rows, cols), C = Math.min(rows, cols);
  const q = new Float32Array(C * R);
  for (let i = 0; i < q.length; i++) q[i] = options.rng.normal();
  // Host work on host scratch arrays (the loops below read the GEMM results): always the CPU kernels, whichever
  // backend trains; a device backend would defer the GEMMs.
  const be = cpuBackend;
  const BS = 16; // small blocks: most work goes to the GEMMs
  const h = new Float32Array(BS * C);
  for (let k0 = 0; k0 < C; k0 += BS) {
    const k1 = Math.min(C, k0 + BS), b = k1 - k0;
    const block = q.subarray(k0 * R, k1 * R);
    if (k0 > 0) {
      const prev = q.subarray(0, k0 * R);
      for (let pass = 0; pass < 2; pass++) {
        be.gemm(false, true, b, k0, R, 1, block, prev, 0, h); // h = block · prevᵀ
        be.gemm(false, false, b, R, k0, -1, h, prev, 1, block); // block -= h · prev
      }
    }
    for (let j = 0; j < b; j++) {
      const cj = j * R;
      for (let pass = 0; pass < 2; pass++) {
        for (let i = 0; i < j; i++) {
          const ci = i * R;
          let dot = 0;
          for (let r = 0; r < R; r++) dot += block[ci + r] * block[cj + r];
          for (let r = 0; r < R; r++) block[cj + r] -= dot * block[ci + r];
        }
      }
      let norm = 0;
      for (let r = 0; r < R; r++) norm += block[cj + r] * block[cj + r];
      norm = Math.sqrt(norm);
      for (let r = 0; r < R; r++) block[cj + r] /= norm;
    }
  }
  // rows >= cols: W = Q (R × C), W[r, c] = q[c, r]; rows < cols: W = Qᵀ, W[r, c] = q[r, c].
  const d = t.data;
  if (rows < cols) { for (let i = 0; i < q.length; i++) d[i] = gain * q[i]; }
  else {
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) d[r * cols + c] = gain * q[c * R + r];
  }
  return t;
}

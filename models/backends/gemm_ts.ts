/**
 * Pure-TypeScript SGEMM, used when FFI is not permitted or no BLAS library is found, and as the reference the BLAS
 * self-test is checked against. Operands are packed so that both are walked along `k` contiguously, then a 4×4
 * register-blocked dot-product kernel runs over row panels that fit in L2. Accumulates in float64.
 *
 * @module
 */

let packA = new Float32Array(0);
let packB = new Float32Array(0);

/** Pack op(A) (m×k, row stride `ld` of the stored matrix) into 4-row panels `[panel][p][4]`, zero-padded. */
function packRows(a: Float32Array, trans: boolean, m: number, k: number, ld: number, dst: Float32Array): void {
  for (let i0 = 0; i0 < m; i0 += 4) {
    const base = i0 * k;
    for (let r = 0; r < 4; r++) {
      const i = i0 + r;
      if (i >= m) {
        for (let p = 0; p < k; p++) dst[base + p * 4 + r] = 0;
      } else if (trans) {
        for (let p = 0; p < k; p++) dst[base + p * 4 + r] = a[p * ld + i];
      } else {
        const row = i * ld;
        for (let p = 0; p < k; p++) dst[base + p * 4 + r] = a[row + p];
      }
    }
  }
}

/**
 * `C = alpha * op(A) * op(B) + beta * C` (row-major; see `Backend.gemm` for the layout and leading dimensions).
 *
 * @example
 * ```ts
 * import { gemmTs } from "./gemm_ts.ts";
 * const c = new Float32Array(1);
 * gemmTs(false, false, 1, 1, 2, 1, new Float32Array([1, 2]), new Float32Array([3, 4]), 0, c); // c[0] === 11
 * ```
 */
export function gemmTs(
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  b: Float32Array,
  beta: number,
  c: Float32Array,
  lda = transA ? m : k,
  ldb = transB ? k : n,
  ldc = n,
): void {
  if (beta !== 1) {
    for (let i = 0; i < m; i++) {
      const row = i * ldc;
      if (beta === 0) c.fill(0, row, row + n);
      else for (let j = 0; j < n; j++) c[row + j] *= beta;
    }
  }
  if (k === 0 || alpha === 0) return;
  // Interleaved 4-wide panels: the kernel then reads 8 contiguous floats per step (no 4 KiB aliasing between rows).
  const mp = (m + 3) & ~3, np = (n + 3) & ~3;
  if (packA.length < mp * k) packA = new Float32Array(mp * k);
  if (packB.length < np * k) packB = new Float32Array(np * k);
  packRows(a, transA, m, k, lda, packA);
  // op(B) columns are rows of op(B)^T, which is B stored n×k when transB, else B^T.
  packRows(b, !transB, n, k, ldb, packB);
  kernel(m, n, k, alpha, packA, packB, c, ldc);
}

function kernel(
  m: number,
  n: number,
  k: number,
  alpha: number,
  A: Float32Array,
  B: Float32Array,
  C: Float32Array,
  ldc: number,
) {
  // Row panels of A sized to stay in L2 while one 4-column panel of B stays in L1.
  const MC = Math.max(4, Math.min((m + 3) & ~3, (Math.floor(65536 / Math.max(k, 1)) >> 2) << 2));
  for (let i0 = 0; i0 < m; i0 += MC) {
    const i1 = Math.min(m, i0 + MC);
    for (let j = 0; j < n; j += 4) {
      const bb = j * k;
      const nj = Math.min(4, n - j);
      for (let i = i0; i < i1; i += 4) {
        const ab = i * k;
        let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
        let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
        let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        for (let p = 0, pa = ab, pb = bb; p < k; p++, pa += 4, pb += 4) {
          const y0 = B[pb], y1 = B[pb + 1], y2 = B[pb + 2], y3 = B[pb + 3];
          let x = A[pa];
          c00 += x * y0;
          c01 += x * y1;
          c02 += x * y2;
          c03 += x * y3;
          x = A[pa + 1];
          c10 += x * y0;
          c11 += x * y1;
          c12 += x * y2;
          c13 += x * y3;
          x = A[pa + 2];
          c20 += x * y0;
          c21 += x * y1;
          c22 += x * y2;
          c23 += x * y3;
          x = A[pa + 3];
          c30 += x * y0;
          c31 += x * y1;
          c32 += x * y2;
          c33 += x * y3;
        }
        const mi = Math.min(4, m - i);
        if (mi === 4 && nj === 4) {
          let o = i * ldc + j;
          C[o] += alpha * c00, C[o + 1] += alpha * c01, C[o + 2] += alpha * c02, C[o + 3] += alpha * c03;
          o += ldc;
          C[o] += alpha * c10, C[o + 1] += alpha * c11, C[o + 2] += alpha * c12, C[o + 3] += alpha * c13;
          o += ldc;
          C[o] += alpha * c20, C[o + 1] += alpha * c21, C[o + 2] += alpha * c22, C[o + 3] += alpha * c23;
          o += ldc;
          C[o] += alpha * c30, C[o + 1] += alpha * c31, C[o + 2] += alpha * c32, C[o + 3] += alpha * c33;
        } else {
          const acc = [c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33];
          for (let r = 0; r < mi; r++) {
            for (let q = 0; q < nj; q++) C[(i + r) * ldc + j + q] += alpha * acc[r * 4 + q];
          }
        }
      }
    }
  }
}

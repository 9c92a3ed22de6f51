/**
 * One differentiable function per backend primitive: each computes its forward with the current backend and
 * records a backward that accumulates input gradients in place. Everything else (`ops.ts`) is composed from these.
 *
 * @module
 */

import type { BinaryOp, ConvGeometry, UnaryOp } from "./primitives.ts";
import { broadcastShapes, broadcastStrides, contiguousStrides, shapeSize } from "./primitives.ts";
import { backend, gradBuffer, gradTarget, record, scalar, Tensor, zeroedBuffer } from "./tensor.ts";
import { releaseBuffer, takeBuffer } from "./pool.ts";

/** A tensor or a plain number (a constant scalar). */
export type TensorLike = Tensor | number;

function asTensor(x: TensorLike): Tensor {
  return typeof x === "number" ? scalar(x) : x;
}

function fmt(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}

function normAxis(axis: number, ndim: number, op: string): number {
  const a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim || !Number.isInteger(a)) throw new Error(`${op}: axis ${axis} out of range for ${ndim} dims`);
  return a;
}

/** `(outer, n, inner)` of `shape` around `axis`. */
function axisTriple(shape: readonly number[], axis: number): [number, number, number] {
  let outer = 1, inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i];
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  return [outer, shape[axis], inner];
}

// ---------------------------------------------------------------------------------------------------------------
// Elementwise

/** Apply a unary primitive (`p0`, `p1`: elu alpha, pow exponent, clamp bounds). */
export function unaryOp(op: UnaryOp, x: Tensor, p0 = 0, p1 = 0): Tensor {
  const be = backend();
  const out = new Tensor(new Float32Array(x.size), x.shape);
  be.unary(op, x.raw, out.raw, p0, p1);
  return record(out, op, [x], (gy) => be.unaryGrad(op, x.raw, out.raw, gy, gradBuffer(x), p0, p1));
}

/** Apply a broadcasting binary primitive; comparisons (`gt`, `eq`, …) have no gradient. */
export function binaryOp(op: BinaryOp, a: TensorLike, b: TensorLike): Tensor {
  const ta = asTensor(a), tb = asTensor(b);
  const be = backend();
  const shape = broadcastShapes(ta.shape, tb.shape, op);
  const out = new Tensor(new Float32Array(shapeSize(shape)), shape);
  be.binary(op, ta.raw, ta.shape, tb.raw, tb.shape, out.raw, shape);
  if (op !== "add" && op !== "sub" && op !== "mul" && op !== "div" && op !== "maximum" && op !== "minimum") {
    return out; // comparisons are piecewise constant
  }
  return record(out, op, [ta, tb], (gy) => {
    const n = out.size;
    switch (op) {
      case "add":
      case "sub":
        if (ta.requiresGrad) be.sumTo(gy, shape, gradBuffer(ta), ta.shape, 1);
        if (tb.requiresGrad) be.sumTo(gy, shape, gradBuffer(tb), tb.shape, op === "add" ? 1 : -1);
        return;
      case "mul": {
        const tmp = takeBuffer(n, false);
        if (ta.requiresGrad) {
          be.binary("mul", gy, shape, tb.raw, tb.shape, tmp, shape);
          be.sumTo(tmp, shape, gradBuffer(ta), ta.shape, 1);
        }
        if (tb.requiresGrad) {
          be.binary("mul", gy, shape, ta.raw, ta.shape, tmp, shape);
          be.sumTo(tmp, shape, gradBuffer(tb), tb.shape, 1);
        }
        releaseBuffer(tmp);
        return;
      }
      case "div": {
        const tmp = takeBuffer(n, false);
        be.binary("div", gy, shape, tb.raw, tb.shape, tmp, shape); // gy / b
        if (ta.requiresGrad) be.sumTo(tmp, shape, gradBuffer(ta), ta.shape, 1);
        if (tb.requiresGrad) {
          be.binary("mul", tmp, shape, out.raw, shape, tmp, shape); // gy * (a / b) / b
          be.sumTo(tmp, shape, gradBuffer(tb), tb.shape, -1);
        }
        releaseBuffer(tmp);
        return;
      }
      case "maximum":
      case "minimum": {
        // Ties send the gradient to `a` (a >= b for maximum, a <= b for minimum).
        const mask = new Float32Array(n);
        be.binary(op === "maximum" ? "ge" : "le", ta.raw, ta.shape, tb.raw, tb.shape, mask, shape);
        const tmp = new Float32Array(n);
        be.binary("mul", gy, shape, mask, shape, tmp, shape);
        if (ta.requiresGrad) be.sumTo(tmp, shape, gradBuffer(ta), ta.shape, 1);
        if (tb.requiresGrad) {
          be.sumTo(gy, shape, gradBuffer(tb), tb.shape, 1);
          be.sumTo(tmp, shape, gradBuffer(tb), tb.shape, -1);
        }
        releaseBuffer(tmp);
        return;
      }
    }
  });
}

/**
 * `cond != 0 ? a : b` with broadcasting; `cond` carries no gradient.
 *
 * @example
 * ```ts
 * import { where } from "./autograd.ts";
 * import { tensor } from "./tensor.ts";
 * where(tensor([1, 0]), tensor([1, 2]), -1).toArray(); // [1, -1]
 * ```
 */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const ta = asTensor(a), tb = asTensor(b);
  const be = backend();
  const shape = broadcastShapes(broadcastShapes(cond.shape, ta.shape, "where"), tb.shape, "where");
  const out = new Tensor(new Float32Array(shapeSize(shape)), shape);
  be.where(cond.raw, cond.shape, ta.raw, ta.shape, tb.raw, tb.shape, out.raw, shape);
  return record(out, "where", [ta, tb], (gy) => {
    const tmp = new Float32Array(out.size);
    const zero = new Float32Array(1);
    if (ta.requiresGrad) {
      be.where(cond.raw, cond.shape, gy, shape, zero, [], tmp, shape);
      be.sumTo(tmp, shape, gradBuffer(ta), ta.shape, 1);
    }
    if (tb.requiresGrad) {
      be.where(cond.raw, cond.shape, zero, [], gy, shape, tmp, shape);
      be.sumTo(tmp, shape, gradBuffer(tb), tb.shape, 1);
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Reductions

/** Options for reductions. */
export interface ReduceOptions {
  /** Axis or axes to reduce (default: all). Negative values count from the end. */
  axis?: number | readonly number[];
  /** Keep reduced dims as size 1. */
  keepdim?: boolean;
}

function reducedShapes(shape: readonly number[], options: ReduceOptions, op: string): [number[], number[]] {
  const axes = options.axis === undefined
    ? shape.map((_, i) => i)
    : (typeof options.axis === "number" ? [options.axis] : options.axis).map((a) => normAxis(a, shape.length, op));
  const keep = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const out = options.keepdim ? keep : shape.filter((_, i) => !axes.includes(i));
  return [keep, out];
}

/**
 * Sum over `axis` (default all).
 *
 * @example
 * ```ts
 * import { sum } from "./autograd.ts";
 * import { tensor } from "./tensor.ts";
 * sum(tensor([[1, 2], [3, 4]]), { axis: 1 }).toArray(); // [3, 7]
 * ```
 */
export function sum(x: Tensor, options: ReduceOptions = {}): Tensor {
  const be = backend();
  const [keep, shape] = reducedShapes(x.shape, options, "sum");
  const out = new Tensor(new Float32Array(shapeSize(shape)), shape);
  be.sumTo(x.raw, x.shape, out.raw, keep, 1);
  return record(out, "sum", [x], (gy) => {
    const gx = gradBuffer(x);
    be.binary("add", gx, x.shape, gy, keep, gx, x.shape);
  });
}

/** Maximum over one `axis` (default: all elements); the gradient goes to the first maximal element. */
export function max(x: Tensor, options: { axis?: number; keepdim?: boolean } = {}): Tensor {
  if (options.axis === undefined) {
    const flat = x.reshape([1, x.size]);
    return max(flat, { axis: 1 }).reshape(options.keepdim ? x.shape.map(() => 1) : []);
  }
  const be = backend();
  const axis = normAxis(options.axis, x.ndim, "max");
  const [outer, n, inner] = axisTriple(x.shape, axis);
  const [, shape] = reducedShapes(x.shape, { axis, keepdim: options.keepdim }, "max");
  const out = new Tensor(new Float32Array(outer * inner), shape);
  const idx = new Float32Array(outer * inner);
  be.reduce("argmax", x.raw, outer, n, inner, idx);
  be.gather(x.raw, outer, n, inner, idx, 1, out.raw);
  return record(out, "max", [x], (gy) => be.scatterAdd(gy, outer, n, inner, idx, 1, gradBuffer(x)));
}

/** Index of the maximum along `axis` (as float values; no gradient). */
export function argmax(x: Tensor, options: { axis: number; keepdim?: boolean }): Tensor {
  const axis = normAxis(options.axis, x.ndim, "argmax");
  const [outer, n, inner] = axisTriple(x.shape, axis);
  const [, shape] = reducedShapes(x.shape, { axis, keepdim: options.keepdim }, "argmax");
  const out = new Tensor(new Float32Array(outer * inner), shape);
  backend().reduce("argmax", x.raw, outer, n, inner, out.raw);
  return out;
}

/** Log-softmax over `axis` (default -1), numerically stable. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  const be = backend();
  const [outer, n, inner] = axisTriple(x.shape, normAxis(axis, x.ndim, "logSoftmax"));
  const out = new Tensor(new Float32Array(x.size), x.shape);
  be.logSoftmax(x.raw, outer, n, inner, out.raw);
  return record(out, "logSoftmax", [x], (gy) => be.logSoftmaxGrad(out.raw, gy, outer, n, inner, gradBuffer(x)));
}

// ---------------------------------------------------------------------------------------------------------------
// Linear algebra

/**
 * Matrix product: `[..., M, K] @ [K, N]`, or batched `[B, M, K] @ [B, K, N]`.
 *
 * @example
 * ```ts
 * import { matmul } from "./autograd.ts";
 * import { tensor } from "./tensor.ts";
 * matmul(tensor([[1, 2]]), tensor([[3], [4]])).toArray(); // [11]
 * ```
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  const be = backend();
  const bad = () => new Error(`matmul: cannot multiply ${fmt(a.shape)} by ${fmt(b.shape)}`);
  if (a.ndim < 1 || b.ndim < 1) throw bad();
  if (b.ndim === 2 || b.ndim === 1) {
    const K = b.shape[0], N = b.ndim === 2 ? b.shape[1] : 1;
    if (a.shape[a.ndim - 1] !== K) throw bad();
    const M = a.size / K;
    const shape = [...a.shape.slice(0, -1), ...(b.ndim === 2 ? [N] : [])];
    const out = new Tensor(new Float32Array(M * N), shape);
    be.gemm(false, false, M, N, K, 1, a.raw, b.raw, 0, out.raw);
    return record(out, "matmul", [a, b], (gy) => {
      if (a.requiresGrad) be.gemm(false, true, M, K, N, 1, gy, b.raw, 1, gradBuffer(a));
      if (b.requiresGrad) be.gemm(true, false, K, N, M, 1, a.raw, gy, 1, gradBuffer(b));
    });
  }
  if (a.ndim !== 3 || b.ndim !== 3 || a.shape[0] !== b.shape[0] || a.shape[2] !== b.shape[1]) throw bad();
  const [B, M, K] = a.shape, N = b.shape[2];
  const out = new Tensor(new Float32Array(B * M * N), [B, M, N]);
  const sa = M * K, sb = K * N, so = M * N;
  for (let i = 0; i < B; i++) {
    be.gemm(
      false,
      false,
      M,
      N,
      K,
      1,
      a.raw.subarray(i * sa, (i + 1) * sa),
      b.raw.subarray(i * sb, (i + 1) * sb),
      0,
      out.raw.subarray(i * so, (i + 1) * so),
    );
  }
  return record(out, "matmul", [a, b], (gy) => {
    const ga = a.requiresGrad ? gradBuffer(a) : null, gb = b.requiresGrad ? gradBuffer(b) : null;
    for (let i = 0; i < B; i++) {
      const g = gy.subarray(i * so, (i + 1) * so);
      if (ga) be.gemm(false, true, M, K, N, 1, g, b.raw.subarray(i * sb, (i + 1) * sb), 1, ga.subarray(i * sa));
      if (gb) be.gemm(true, false, K, N, M, 1, a.raw.subarray(i * sa, (i + 1) * sa), g, 1, gb.subarray(i * sb));
    }
  });
}

/** An activation that a producing layer can apply in place (its derivative is a function of its output). */
export interface Activation {
  op: "relu" | "elu" | "tanh" | "sigmoid";
  /** ELU's alpha (default 1). */
  alpha?: number;
}

/**
 * `out[r, :] = row` for `rows` rows: on a host backend `set` is a memcpy, ~10x faster than a broadcasting strided
 * copy; a device backend (one with `sync`) gets the strided copy.
 */
function broadcastRows(row: Float32Array, out: Float32Array, rows: number): void {
  const n = row.length, be = backend();
  if (be.sync) {
    be.copyStrided(row, 0, [0, 1], [rows, n], out, 0, [n, 1], false);
    return;
  }
  for (let r = 0; r < rows; r++) out.set(row, r * n);
}

/** `out[o, :] = col[o]` over rows of length `n` (on the host `fill` is a native memset-like loop). */
function broadcastColumns(col: Float32Array, out: Float32Array, n: number): void {
  const be = backend();
  if (be.sync) {
    be.copyStrided(col, 0, [1, 0], [col.length, n], out, 0, [n, 1], false);
    return;
  }
  for (let o = 0; o < col.length; o++) out.fill(col[o], o * n, (o + 1) * n);
}

/** Apply `act` in place on a freshly computed layer output. */
function applyActivation(y: Float32Array, act: Activation | undefined): void {
  if (act) backend().unary(act.op, y, y, act.alpha ?? 1, 0);
}

/** `gy ⊙ act'(y)` into a pooled buffer (callers release it), or `gy` itself without an activation. */
function activationGrad(y: Float32Array, gy: Float32Array, act: Activation | undefined): Float32Array {
  if (!act) return gy;
  const g = zeroedBuffer(gy.length);
  // For these activations the derivative can be evaluated at the output: relu/elu test y > 0 ⟺ x > 0.
  backend().unaryGrad(act.op, y, y, gy, g, act.alpha ?? 1, 0);
  return g;
}

/**
 * Fused affine layer `x @ weight^T + bias` (PyTorch `F.linear`): `x` is `[..., in]`, `weight` is `[out, in]`.
 * One GEMM forward, two GEMMs backward, accumulating straight into the gradient buffers.
 */
export function linear(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor | null,
  options: { activation?: Activation } = {},
): Tensor {
  const act = options.activation;
  const be = backend();
  if (weight.ndim !== 2 || x.ndim < 1 || x.shape[x.ndim - 1] !== weight.shape[1]) {
    throw new Error(`linear: cannot multiply ${fmt(x.shape)} by weight^T of ${fmt(weight.shape)}`);
  }
  const [N, K] = weight.shape;
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== N)) {
    throw new Error(`linear: bias shape ${fmt(bias.shape)} does not match weight ${fmt(weight.shape)}`);
  }
  const M = x.size / K;
  const shape = [...x.shape.slice(0, -1), N];
  const out = new Tensor(new Float32Array(M * N), shape);
  if (bias) broadcastRows(bias.raw, out.raw, M);
  be.gemm(false, true, M, N, K, 1, x.raw, weight.raw, bias ? 1 : 0, out.raw);
  applyActivation(out.raw, act);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record(out, act ? `linear+${act.op}` : "linear", inputs, (gyOut) => {
    const gy = activationGrad(out.raw, gyOut, act);
    if (x.requiresGrad) {
      const [gx, beta] = gradTarget(x);
      be.gemm(false, false, M, K, N, 1, gy, weight.raw, beta, gx);
    }
    if (weight.requiresGrad) {
      const [gw, beta] = gradTarget(weight);
      be.gemm(true, false, N, K, M, 1, gy, x.raw, beta, gw);
    }
    if (bias?.requiresGrad) be.sumTo(gy, [M, N], gradBuffer(bias), [N], 1);
    if (gy !== gyOut) releaseBuffer(gy);
  });
}

/** Options for `conv2d`. */
export interface Conv2dOptions {
  /** Stride (one number for both dims, or `[sh, sw]`). Default 1. */
  stride?: number | [number, number];
  /** Zero padding (one number for both dims, or `[ph, pw]`). Default 0. */
  padding?: number | [number, number];
  /**
   * Lowering to GEMM. `"im2col"`: classic unfold + one GEMM. `"flat"`: space-to-depth by the stride, then one GEMM
   * per kernel shift reading the flattened grid through a leading dimension (no unfolded matrix; a few wasted border
   * columns); needs kernel sizes divisible by the strides. `"auto"` (default) picks `"flat"` when it wastes < 35%
   * columns and the output is wide enough (≥ 32 columns per output channel).
   */
  algorithm?: "auto" | "im2col" | "flat";
  /** Activation applied in place to the output (saves a tensor and a pass; `Sequential` fuses this itself). */
  activation?: Activation;
}

/**
 * 2-D convolution (cross-correlation, PyTorch semantics): `x` `[N, C, H, W]`, `weight` `[O, C, kh, kw]`,
 * optional `bias` `[O]`. Lowered to one GEMM over the whole batch (see `Conv2dOptions.algorithm`); backward uses GEMMs
 * for the weight and input gradients and skips the input gradient when `x` needs none.
 */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, options: Conv2dOptions = {}): Tensor {
  const [sh, sw] = typeof options.stride === "number" || options.stride === undefined
    ? [options.stride ?? 1, options.stride ?? 1]
    : options.stride;
  const [ph, pw] = typeof options.padding === "number" || options.padding === undefined
    ? [options.padding ?? 0, options.padding ?? 0]
    : options.padding;
  if (x.ndim !== 4 || weight.ndim !== 4 || x.shape[1] !== weight.shape[1]) {
    throw new Error(
      `conv2d: input ${fmt(x.shape)} and weight ${fmt(weight.shape)} do not match (want [N,C,H,W] and [O,C,kh,kw])`,
    );
  }
  const [N, C, H, W] = x.shape;
  const [O, , KH, KW] = weight.shape;
  const OH = Math.floor((H + 2 * ph - KH) / sh) + 1, OW = Math.floor((W + 2 * pw - KW) / sw) + 1;
  if (OH < 1 || OW < 1) throw new Error(`conv2d: kernel ${fmt(weight.shape)} larger than padded input ${fmt(x.shape)}`);
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== O)) {
    throw new Error(`conv2d: bias shape ${fmt(bias.shape)} does not match weight ${fmt(weight.shape)}`);
  }
  const g: ConvGeometry = {
    batch: N,
    channels: C,
    height: H,
    width: W,
    kernelH: KH,
    kernelW: KW,
    strideH: sh,
    strideW: sw,
    padH: ph,
    padW: pw,
    outH: OH,
    outW: OW,
  };
  const divisible = KH % sh === 0 && KW % sw === 0;
  const algorithm = options.algorithm ?? "auto";
  if (algorithm === "flat" && !divisible) {
    throw new Error(`conv2d: algorithm "flat" needs kernel ${KH}x${KW} divisible by stride ${sh}x${sw}`);
  }
  const waste = (Math.ceil((H + 2 * ph) / sh) * Math.ceil((W + 2 * pw) / sw)) / (OH * OW);
  // Small outputs (batch-1 inference) favour one im2col GEMM over per-shift GEMMs and the weight reshuffle (Nature
  // conv1 at batch 1: 0.13 vs 0.19 ms; Doom's conv1 at batch 8 is even).
  const wide = N * OH * OW >= 32 * weight.shape[0];
  if (algorithm === "flat" || (algorithm === "auto" && divisible && waste < 1.35 && wide)) {
    return conv2dFlat(x, weight, bias ?? null, g, options.activation);
  }
  return conv2dIm2col(x, weight, bias ?? null, g, options.activation);
}

function conv2dIm2col(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  g: ConvGeometry,
  act: Activation | undefined,
): Tensor {
  const be = backend();
  const { batch: N, channels: C, height: H, width: W, kernelH: KH, kernelW: KW, outH: OH, outW: OW } = g;
  const O = weight.shape[0];
  const P = OH * OW, CKK = C * KH * KW, CHW = C * H * W, OP = O * P;
  // Samples unfolded at a time: a part's unfolded matrix stays in cache from im2col to its GEMMs, where the whole
  // batch's would go through memory (Doom's conv2 over a 264-sample learner chunk unfolds 53 MB, and its input
  // gradient as many). The backward pass then unfolds each part again, from an input that is still in cache.
  const nb = be.cacheFloats ? Math.max(1, Math.min(N, Math.floor(be.cacheFloats / (CKK * P)))) : N;
  const chunked = nb < N;
  /** Samples [n0, n0 + cn) of a batch-major array with `size` floats per sample (the array itself when whole). */
  const part = (a: Float32Array, n0: number, cn: number, size: number) =>
    chunked ? a.subarray(n0 * size, (n0 + cn) * size) : a;
  const geometry = (cn: number): ConvGeometry => cn === N ? g : { ...g, batch: cn };
  const col = takeBuffer(CKK * nb * P, false);
  // yT[O, cn*P] = W[O, CKK] @ col[CKK, cn*P], then permuted to [cn, O, P] (one sample needs no permute).
  const yT = nb === 1 ? new Float32Array(0) : takeBuffer(O * nb * P, false);
  const out = new Tensor(new Float32Array(N * OP), [N, O, OH, OW]);
  for (let n0 = 0; n0 < N; n0 += nb) {
    const cn = Math.min(nb, N - n0), NP = cn * P;
    be.im2col(part(x.raw, n0, cn, CHW), geometry(cn), col);
    const target = cn === 1 ? part(out.raw, n0, 1, OP) : yT;
    if (bias) broadcastColumns(bias.raw, target, NP);
    be.gemm(false, false, O, NP, CKK, 1, weight.raw, col, bias ? 1 : 0, target);
    if (cn > 1) be.copyStrided(yT, 0, [P, NP, 1], [cn, O, P], out.raw, n0 * OP, [OP, P, 1], false);
  }
  applyActivation(out.raw, act);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  let colHoldsInput = !chunked;
  return record(out, act ? `conv2d+${act.op}` : "conv2d", inputs, (gyOut) => {
    const gy = activationGrad(out.raw, gyOut, act);
    const [gw, beta] = weight.requiresGrad ? gradTarget(weight) : [null, 0];
    for (let n0 = 0; n0 < N; n0 += nb) {
      const cn = Math.min(nb, N - n0), NP = cn * P;
      // Unfold again: each part after the first, and the whole batch after a retained graph's earlier backward.
      if (!colHoldsInput) be.im2col(part(x.raw, n0, cn, CHW), geometry(cn), col);
      let gT = part(gy, n0, cn, OP);
      if (cn > 1) {
        gT = yT; // reuse the forward buffer: [O, cn*P]
        be.copyStrided(gy, n0 * OP, [OP, P, 1], [cn, O, P], gT, 0, [P, NP, 1], false);
      }
      if (gw) be.gemm(false, true, O, CKK, NP, 1, gT, col, n0 === 0 ? beta : 1, gw);
      if (bias?.requiresGrad) be.sumTo(gT, [O, NP], gradBuffer(bias), [O, 1], 1);
      if (x.requiresGrad) {
        be.gemm(true, false, CKK, NP, O, 1, weight.raw, gT, 0, col); // col is dead after dW: reuse it for dcol
        colHoldsInput = false;
        be.col2im(col, geometry(cn), part(gradBuffer(x), n0, cn, CHW));
      }
    }
    if (gy !== gyOut) releaseBuffer(gy);
  }, () => {
    releaseBuffer(col);
    releaseBuffer(yT);
  });
}

/**
 * Space-to-depth lowering. With kernel = stride × (KH', KW'), a stride-s conv over x equals a stride-1 conv with
 * kernel KH'×KW' over S = spaceToDepth(pad(x), s), laid out channel-major as `[C·s·s, N·H'·W']`. Computed at every
 * grid position (not just valid ones), that conv is a sum of KH'·KW' GEMMs, each reading S shifted by `di·W' + dj`
 * through a leading dimension: no unfolded matrix is built, and the only TypeScript copies are O(|x| + |y|)
 * (space-to-depth, output extraction). The extra border/wrap-around columns are dropped and carry zero gradient.
 */
function conv2dFlat(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  g: ConvGeometry,
  act: Activation | undefined,
): Tensor {
  const be = backend();
  const { batch: N, channels: C, kernelH: KH, kernelW: KW, outH: OH, outW: OW } = g;
  const { strideH: sh, strideW: sw, padH: ph, padW: pw, height: H, width: W } = g;
  const O = weight.shape[0];
  const Hq = Math.ceil((H + 2 * ph) / sh), Wq = Math.ceil((W + 2 * pw) / sw); // grid after space-to-depth
  const KHq = KH / sh, KWq = KW / sw;
  const Cq = C * sh * sw, G = Hq * Wq, NG = N * G;
  const L = NG - ((KHq - 1) * Wq + (KWq - 1)); // columns whose shifted reads stay inside S
  const shifts = KHq * KWq, K2 = shifts * Cq;
  // Weight as one [O, shifts·Cq] matrix: Wr[o, di, dj, (c, u, v)] = W[o, c, di·sh + u, dj·sw + v]; shift t's block
  // is columns t·Cq.. (lda K2).
  const wrShape = [O, KHq, KWq, C, sh, sw];
  const wSrcStrides = [C * KH * KW, sh * KW, sw, KH * KW, KW, 1];
  const wrStrides = contiguousStrides(wrShape);
  const shiftOffset = (t: number) => Math.floor(t / KWq) * Wq + (t % KWq);
  // Row (t, q) of the stacked product reads row q of S from shift t's offset: all shifts as one GEMM over K2 rows,
  // summed in registers instead of through C (backends without `gemmRows` run one GEMM per shift).
  const stacked = be.gemmRows !== undefined && Cq * NG < 2 ** 31;
  const rows = new Int32Array(stacked ? K2 : 0);
  if (stacked) {
    for (let t = 0; t < shifts; t++) for (let q = 0; q < Cq; q++) rows[t * Cq + q] = q * NG + shiftOffset(t);
  }
  // Output extraction: Y[o, n·G + i·Wq + j] → out[n, o, i, j].
  const yShape = [N, O, OH, OW];
  const ySrcStrides = [G, L, Wq, 1];
  const yStrides = contiguousStrides(yShape);

  // Without padding and with sizes divisible by the strides, space-to-depth writes every element of S: skip zeroing.
  const dense = ph === 0 && pw === 0 && H % sh === 0 && W % sw === 0;
  const S = dense ? takeBuffer(Cq * NG, false) : zeroedBuffer(Cq * NG);
  spaceToDepth(x.raw, g, Hq, Wq, S, false);
  const wr = takeBuffer(O * K2, false);
  be.copyStrided(weight.raw, 0, wSrcStrides, wrShape, wr, 0, wrStrides, false);
  const Y = takeBuffer(O * L, false);
  if (bias) broadcastColumns(bias.raw, Y, L);
  if (!(stacked && be.gemmRows!(false, false, O, L, K2, 1, wr, S, rows, bias ? 1 : 0, Y, K2, L))) {
    for (let t = 0; t < shifts; t++) {
      const beta = bias || t > 0 ? 1 : 0;
      be.gemm(false, false, O, L, Cq, 1, wr.subarray(t * Cq), S.subarray(shiftOffset(t)), beta, Y, K2, NG, L);
    }
  }
  const out = new Tensor(new Float32Array(N * O * OH * OW), yShape);
  be.copyStrided(Y, 0, ySrcStrides, yShape, out.raw, 0, yStrides, false);
  applyActivation(out.raw, act);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record(out, act ? `conv2d+${act.op}` : "conv2d", inputs, (gyOut) => {
    const gy = activationGrad(out.raw, gyOut, act);
    const dY = Y; // [O, L], zero except at valid output columns
    be.fill(dY, 0);
    be.copyStrided(gy, 0, yStrides, yShape, dY, 0, ySrcStrides, false);
    if (weight.requiresGrad) {
      const dwr = takeBuffer(O * K2, false);
      if (!(stacked && be.gemmRows!(false, true, O, K2, L, 1, dY, S, rows, 0, dwr, L, K2))) {
        for (let t = 0; t < shifts; t++) {
          be.gemm(false, true, O, Cq, L, 1, dY, S.subarray(shiftOffset(t)), 0, dwr.subarray(t * Cq), L, NG, K2);
        }
      }
      const [gw, beta] = gradTarget(weight); // the copy below writes every element of gw
      be.copyStrided(dwr, 0, wrStrides, wrShape, gw, 0, wSrcStrides, beta === 1);
      releaseBuffer(dwr);
    }
    if (bias?.requiresGrad) be.sumTo(dY, [O, L], gradBuffer(bias), [O, 1], 1);
    if (x.requiresGrad) {
      const dS = zeroedBuffer(Cq * NG);
      for (let t = 0; t < shifts; t++) {
        be.gemm(true, false, Cq, L, O, 1, wr.subarray(t * Cq), dY, 1, dS.subarray(shiftOffset(t)), K2, L, NG);
      }
      spaceToDepth(gradBuffer(x), g, Hq, Wq, dS, true);
      releaseBuffer(dS);
    }
    if (gy !== gyOut) releaseBuffer(gy);
  }, () => {
    releaseBuffer(S);
    releaseBuffer(wr);
    releaseBuffer(Y);
  });
}

/**
 * `S[c, u, v, n, i, j] = x[n, c, i·sh + u − ph, j·sw + v − pw]` (zero outside x; `S` must be zeroed), or with
 * `adjoint` its transpose `x += …S…`. One strided box copy per (u, v) phase.
 */
function spaceToDepth(
  x: Float32Array,
  g: ConvGeometry,
  Hq: number,
  Wq: number,
  S: Float32Array,
  adjoint: boolean,
): void {
  const be = backend();
  const { batch: N, channels: C, height: H, width: W, strideH: sh, strideW: sw, padH: ph, padW: pw } = g;
  const NG = N * Hq * Wq;
  const rows = (u: number) => [Math.max(0, Math.ceil((ph - u) / sh)), Math.min(Hq, Math.ceil((H + ph - u) / sh))];
  const cols = (v: number) => [Math.max(0, Math.ceil((pw - v) / sw)), Math.min(Wq, Math.ceil((W + pw - v) / sw))];
  const [i0, i1] = rows(0), [j0, j1] = cols(0);
  let uniform = i1 > i0 && j1 > j0;
  for (let u = 1; u < sh && uniform; u++) uniform = rows(u)[0] === i0 && rows(u)[1] === i1;
  for (let v = 1; v < sw && uniform; v++) uniform = cols(v)[0] === j0 && cols(v)[1] === j1;
  if (uniform) {
    // Every phase covers the same grid box (e.g. no padding, sizes divisible by the strides): one 6-D copy with the
    // phases innermost but one, so each input row is read once while it is in L1 (16 box copies re-read x 4x).
    const shape = [C, N, i1 - i0, sh, sw, j1 - j0];
    const xOff = (i0 * sh - ph) * W + (j0 * sw - pw);
    const xStrides = [H * W, C * H * W, sh * W, W, 1, sw];
    const sOff = i0 * Wq + j0;
    const sStrides = [sh * sw * NG, Hq * Wq, Wq, sw * NG, NG, 1];
    if (adjoint) be.copyStrided(S, sOff, sStrides, shape, x, xOff, xStrides, true);
    else be.copyStrided(x, xOff, xStrides, shape, S, sOff, sStrides, false);
    return;
  }
  for (let u = 0; u < sh; u++) {
    // Valid grid rows i: 0 <= i·sh + u − ph < H.
    const i0 = Math.max(0, Math.ceil((ph - u) / sh)), i1 = Math.min(Hq, Math.ceil((H + ph - u) / sh));
    if (i1 <= i0) continue;
    for (let v = 0; v < sw; v++) {
      const j0 = Math.max(0, Math.ceil((pw - v) / sw)), j1 = Math.min(Wq, Math.ceil((W + pw - v) / sw));
      if (j1 <= j0) continue;
      const shape = [C, N, i1 - i0, j1 - j0];
      const xOff = (i0 * sh + u - ph) * W + (j0 * sw + v - pw);
      const xStrides = [H * W, C * H * W, sh * W, sw];
      const sOff = (u * sw + v) * NG + i0 * Wq + j0;
      const sStrides = [sh * sw * NG, Hq * Wq, Wq, 1];
      if (adjoint) be.copyStrided(S, sOff, sStrides, shape, x, xOff, xStrides, true);
      else be.copyStrided(x, xOff, xStrides, shape, S, sOff, sStrides, false);
    }
  }
}

/**
 * Permute dimensions (`out.shape[i] = x.shape[dims[i]]`); copies.
 *
 * @example
 * ```ts
 * import { permute } from "./autograd.ts";
 * import { tensor } from "./tensor.ts";
 * permute(tensor([[1, 2, 3]]), [1, 0]).shape; // [3, 1]
 * ```
 */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  if (dims.length !== x.ndim || [...dims].sort((p, q) => p - q).some((d, i) => d !== i)) {
    throw new Error(`permute: [${dims.join(",")}] is not a permutation of the dims of ${fmt(x.shape)}`);
  }
  const be = backend();
  const xs = contiguousStrides(x.shape);
  const shape = dims.map((d) => x.shape[d]);
  const srcStrides = dims.map((d) => xs[d]);
  const outStrides = contiguousStrides(shape);
  const out = new Tensor(new Float32Array(x.size), shape);
  be.copyStrided(x.raw, 0, srcStrides, shape, out.raw, 0, outStrides, false);
  return record(out, "permute", [x], (gy) => {
    be.copyStrided(gy, 0, outStrides, shape, gradBuffer(x), 0, srcStrides, true);
  });
}

/** Elements `start..end` (exclusive) of `axis`; copies. Negative indices count from the end. */
export function slice(x: Tensor, axis: number, start: number, end?: number): Tensor {
  const be = backend();
  const ax = normAxis(axis, x.ndim, "slice");
  const n = x.shape[ax];
  const s = Math.max(0, Math.min(n, start < 0 ? start + n : start));
  const e = Math.max(s, Math.min(n, end === undefined ? n : end < 0 ? end + n : end));
  const shape = x.shape.map((d, i) => (i === ax ? e - s : d));
  const xs = contiguousStrides(x.shape);
  const outStrides = contiguousStrides(shape);
  const out = new Tensor(new Float32Array(shapeSize(shape)), shape);
  be.copyStrided(x.raw, s * xs[ax], xs, shape, out.raw, 0, outStrides, false);
  return record(out, "slice", [x], (gy) => {
    be.copyStrided(gy, 0, outStrides, shape, gradBuffer(x), s * xs[ax], xs, true);
  });
}

/** Join tensors along `axis` (all other dims must match). */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new Error("concat: need at least one tensor");
  const be = backend();
  const ax = normAxis(axis, xs[0].ndim, "concat");
  for (const t of xs) {
    if (t.ndim !== xs[0].ndim || t.shape.some((d, i) => i !== ax && d !== xs[0].shape[i])) {
      throw new Error(`concat: shapes ${xs.map((u) => fmt(u.shape)).join(", ")} differ outside axis ${axis}`);
    }
  }
  const shape = xs[0].shape.map((d, i) => (i === ax ? xs.reduce((s, t) => s + t.shape[ax], 0) : d));
  const outStrides = contiguousStrides(shape);
  const out = new Tensor(new Float32Array(shapeSize(shape)), shape);
  const offsets: number[] = [];
  let off = 0;
  for (const t of xs) {
    offsets.push(off * outStrides[ax]);
    be.copyStrided(t.raw, 0, contiguousStrides(t.shape), t.shape, out.raw, off * outStrides[ax], outStrides, false);
    off += t.shape[ax];
  }
  return record(out, "concat", [...xs], (gy) => {
    xs.forEach((t, i) => {
      if (t.requiresGrad) {
        be.copyStrided(gy, offsets[i], outStrides, t.shape, gradBuffer(t), 0, contiguousStrides(t.shape), true);
      }
    });
  });
}

/** Broadcast `x` to `shape` (copies); the gradient sums back over broadcast dims. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const full = broadcastShapes(x.shape, shape, "expand");
  if (full.some((d, i) => d !== shape[i]) || full.length !== shape.length) {
    throw new Error(`expand: cannot expand ${fmt(x.shape)} to ${fmt(shape)}`);
  }
  const be = backend();
  const out = new Tensor(new Float32Array(shapeSize(shape)), shape);
  be.copyStrided(x.raw, 0, broadcastStrides(x.shape, shape), shape, out.raw, 0, contiguousStrides(shape), false);
  return record(out, "expand", [x], (gy) => be.sumTo(gy, shape, gradBuffer(x), x.shape, 1));
}

/**
 * `out[..., j, ...] = x[..., index[..., j, ...], ...]` along `axis` (PyTorch `gather`); `index` has `x`'s shape
 * except on `axis` and holds integer values (as floats or an `Int32Array`-backed tensor-like object).
 *
 * @example
 * ```ts
 * import { gather } from "./autograd.ts";
 * import { tensor } from "./tensor.ts";
 * gather(tensor([[1, 2], [3, 4]]), 1, tensor([[1], [0]])).toArray(); // [2, 3]
 * ```
 */
export function gather(x: Tensor, axis: number, index: Tensor): Tensor {
  const be = backend();
  const ax = normAxis(axis, x.ndim, "gather");
  if (index.ndim !== x.ndim || index.shape.some((d, i) => i !== ax && d !== x.shape[i])) {
    throw new Error(`gather: index shape ${fmt(index.shape)} must match input ${fmt(x.shape)} except on axis ${axis}`);
  }
  const [outer, n, inner] = axisTriple(x.shape, ax);
  const m = index.shape[ax];
  const out = new Tensor(new Float32Array(index.size), index.shape);
  be.gather(x.raw, outer, n, inner, index.raw, m, out.raw);
  return record(out, "gather", [x], (gy) => be.scatterAdd(gy, outer, n, inner, index.raw, m, gradBuffer(x)));
}

/**
 * The primitives every tensor backend implements. Everything else in `models/` (autograd, `nn`, optimizers) is
 * composed from this list, so a new backend only has to provide these kernels.
 *
 * Conventions: buffers are dense row-major `Float32Array`s; shapes are plain arrays of sizes; an "axis triple"
 * `(outer, n, inner)` describes a reduction/gather axis of length `n` with `outer` blocks before it and `inner`
 * contiguous elements after it. Kernels never allocate their outputs: the caller passes `out`, which lets autograd
 * accumulate gradients in place. Hot kernels take positional arguments (no options object) so that calls stay
 * allocation-free.
 *
 * A device backend (one with `sync`) may treat the arrays as names of device buffers and defer the work: callers then
 * read results on the host only after `sync` (the tensor layer does this in `Tensor.data`, `item()` and `toArray()`).
 *
 * @module
 */

/** Elementwise unary operations. `p0`/`p1` are parameters: `elu` alpha, `pow` exponent, `clamp` min/max. */
export type UnaryOp =
  | "neg"
  | "exp"
  | "log"
  | "sqrt"
  | "abs"
  | "relu"
  | "elu"
  | "tanh"
  | "sigmoid"
  | "pow"
  | "clamp";

/** Elementwise binary operations with NumPy broadcasting. Comparisons return 1 or 0. */
export type BinaryOp = "add" | "sub" | "mul" | "div" | "maximum" | "minimum" | "gt" | "ge" | "lt" | "le" | "eq";

/** Reductions over one axis. `argmax` writes the index (first maximum) as a float. */
export type ReduceOp = "sum" | "max" | "argmax";

/** Geometry of a 2-D convolution over an NCHW input; all fields are plain sizes. */
export interface ConvGeometry {
  batch: number;
  channels: number;
  height: number;
  width: number;
  kernelH: number;
  kernelW: number;
  strideH: number;
  strideW: number;
  padH: number;
  padW: number;
  outH: number;
  outW: number;
}

/** Index buffers: integer values stored either as floats (tensors) or as `Int32Array`. */
export type IndexArray = Float32Array | Int32Array;

/** The kernel set a backend must provide. */
export interface Backend {
  /** Registry name, e.g. `"cpu"`. */
  readonly name: string;
  /**
   * Floats of an unfolded (im2col) matrix that stay in cache: convolutions unfold that much of the batch at a time
   * and run its GEMMs before the next part (the CPU's L2). Undefined: the whole batch at once.
   */
  readonly cacheFloats?: number;
  /** `out[i] = op(x[i])`; `out` may alias `x`. */
  unary(op: UnaryOp, x: Float32Array, out: Float32Array, p0: number, p1: number): void;
  /** `gx[i] += gy[i] * op'(x[i])`; `y` is the forward output (used by exp, tanh, sigmoid, sqrt, elu). */
  unaryGrad(
    op: UnaryOp,
    x: Float32Array,
    y: Float32Array,
    gy: Float32Array,
    gx: Float32Array,
    p0: number,
    p1: number,
  ): void;
  /** Broadcasting `out = a op b`; `out` has the broadcast shape and may alias an operand of the same shape. */
  binary(
    op: BinaryOp,
    a: Float32Array,
    aShape: readonly number[],
    b: Float32Array,
    bShape: readonly number[],
    out: Float32Array,
    outShape: readonly number[],
  ): void;
  /** Broadcasting `out = cond != 0 ? a : b`. */
  where(
    cond: Float32Array,
    condShape: readonly number[],
    a: Float32Array,
    aShape: readonly number[],
    b: Float32Array,
    bShape: readonly number[],
    out: Float32Array,
    outShape: readonly number[],
  ): void;
  /** `out += alpha * x` summed down to `outShape` (which broadcasts to `xShape`): the adjoint of broadcasting. */
  sumTo(
    x: Float32Array,
    xShape: readonly number[],
    out: Float32Array,
    outShape: readonly number[],
    alpha: number,
  ): void;
  /** Reduce axis `(outer, n, inner)` of `x` into `out` (length `outer * inner`), overwriting it. */
  reduce(op: ReduceOp, x: Float32Array, outer: number, n: number, inner: number, out: Float32Array): void;
  /**
   * `C = alpha * op(A) * op(B) + beta * C`, row-major (`op(A)` is m×k, `op(B)` is k×n, `C` is m×n).
   * `transA` means `A` is stored k×m; `transB` means `B` is stored n×k. `beta = 0` ignores C's old contents.
   * Leading dimensions (row strides of the stored matrices) default to packed: `lda` = stored row length of A, etc.
   */
  gemm(
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
    lda?: number,
    ldb?: number,
    ldc?: number,
  ): void;
  /**
   * `gemm` with stored row `r` of B (a row of `op(B)`, or a column when `transB`) at `b[bRows[r]]` instead of
   * `b[r * ldb]`; rows may overlap (a strided convolution's kernel shifts over one space-to-depth matrix as one
   * product). Optional, and may decline (returns false) for shapes it does not take: callers fall back to `gemm`.
   */
  gemmRows?(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: Float32Array,
    b: Float32Array,
    bRows: Int32Array,
    beta: number,
    c: Float32Array,
    lda?: number,
    ldc?: number,
  ): boolean;
  /** Unfold NCHW `x` into `col` of shape `[C*kh*kw, N*outH*outW]` (zero padding). */
  im2col(x: Float32Array, g: ConvGeometry, col: Float32Array): void;
  /** Adjoint of `im2col`: `dx += fold(col)`. */
  col2im(col: Float32Array, g: ConvGeometry, dx: Float32Array): void;
  /**
   * Strided copy over `shape`: `dst[dstOffset + Σ i·dstStrides] (+)= src[srcOffset + Σ i·srcStrides]`.
   * Covers permute, slice, concat, broadcast-expand and their adjoints (with `accumulate`).
   */
  copyStrided(
    src: Float32Array,
    srcOffset: number,
    srcStrides: readonly number[],
    shape: readonly number[],
    dst: Float32Array,
    dstOffset: number,
    dstStrides: readonly number[],
    accumulate: boolean,
  ): void;
  /** `out[o, j, i] = x[o, index[o, j, i], i]` over axis `(outer, n, inner)`, `index` has `m` entries on the axis. */
  gather(
    x: Float32Array,
    outer: number,
    n: number,
    inner: number,
    index: IndexArray,
    m: number,
    out: Float32Array,
  ): void;
  /** Adjoint of `gather`: `gx[o, index[o, j, i], i] += g[o, j, i]`. */
  scatterAdd(
    g: Float32Array,
    outer: number,
    n: number,
    inner: number,
    index: IndexArray,
    m: number,
    gx: Float32Array,
  ): void;
  /** Numerically stable log-softmax over axis `(outer, n, inner)`. */
  logSoftmax(x: Float32Array, outer: number, n: number, inner: number, out: Float32Array): void;
  /** `gx += gy - exp(y) * Σ_axis gy` where `y` is the log-softmax output. */
  logSoftmaxGrad(y: Float32Array, gy: Float32Array, outer: number, n: number, inner: number, gx: Float32Array): void;
  /** `out[i] = value` (gradient zeroing, pooled scratch). */
  fill(out: Float32Array, value: number): void;
  /**
   * One Adam update in place (`torch.optim.Adam`, L2 `weightDecay` added to the gradient):
   * `m += (1-β1)(g-m)`, `v = β2 v + (1-β2) g²`, `x -= stepSize · m / (√v / bc2Sqrt + eps)`.
   */
  adamStep(
    x: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    beta1: number,
    beta2: number,
    stepSize: number,
    bc2Sqrt: number,
    eps: number,
    weightDecay: number,
  ): void;
  /** One RMSprop update in place (`torch.optim.RMSprop`); `gradAvg` when centered, `momentumBuf` when momentum > 0. */
  rmspropStep(
    x: Float32Array,
    g: Float32Array,
    squareAvg: Float32Array,
    gradAvg: Float32Array | null,
    momentumBuf: Float32Array | null,
    lr: number,
    alpha: number,
    eps: number,
    weightDecay: number,
    momentum: number,
  ): void;
  /** One SGD update in place (`torch.optim.SGD`); `first` copies the gradient into `momentumBuf`. */
  sgdStep(
    x: Float32Array,
    g: Float32Array,
    momentumBuf: Float32Array | null,
    lr: number,
    momentum: number,
    dampening: number,
    weightDecay: number,
    nesterov: boolean,
    first: boolean,
  ): void;
  /**
   * Scale `grads` in place so their global L2 norm is at most `maxNorm` (coefficient `maxNorm / (norm + 1e-6)` when
   * below 1) and write the norm before clipping to `norm[0]`: one primitive so a device backend keeps the norm on the
   * device.
   */
  clipGradNorm(grads: readonly Float32Array[], maxNorm: number, norm: Float32Array): void;
  /**
   * Device backends only: make `arrays` current on the host (one flush and one readback for all of them). With
   * `write` the host takes them over: the device re-uploads them on next use. Host backends leave it undefined, so
   * callers' `backend.sync?.(…)` costs nothing there.
   */
  sync?(arrays: Float32Array | readonly Float32Array[], write: boolean): void;
  /** Device backends only: upload `arrays` now (one submit), e.g. weights arriving from another backend. */
  prefetch?(arrays: readonly Float32Array[]): void;
}

/** Row-major strides of a contiguous array with `shape`. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

/** Number of elements of an array with `shape`. */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * NumPy broadcast of two shapes; throws naming `op` and both shapes when they are incompatible.
 *
 * @example
 * ```ts
 * import { broadcastShapes } from "./primitives.ts";
 * broadcastShapes([2, 1, 3], [4, 1], "add"); // [2, 4, 3]
 * ```
 */
export function broadcastShapes(a: readonly number[], b: readonly number[], op: string): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = i < n - a.length ? 1 : a[i - (n - a.length)];
    const db = i < n - b.length ? 1 : b[i - (n - b.length)];
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`${op}: cannot broadcast [${a.join(",")}] with [${b.join(",")}]`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides of `shape` aligned to `outShape` (right-aligned, 0 on broadcast dimensions). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const s = contiguousStrides(shape);
  const off = outShape.length - shape.length;
  const out = new Array<number>(outShape.length).fill(0);
  for (let i = 0; i < shape.length; i++) out[i + off] = shape[i] === 1 ? 0 : s[i];
  return out;
}

/**
 * The operation set built on the differentiable primitives in `autograd.ts`: named elementwise ops, means,
 * softmax, stacking and shape helpers. Nothing here has its own backward.
 *
 * @module
 */

import { binaryOp, concat, logSoftmax, permute, sum, unaryOp } from "./autograd.ts";
import type { ReduceOptions, TensorLike } from "./autograd.ts";
import type { Tensor } from "./tensor.ts";

/**
 * `a + b` with broadcasting.
 *
 * @example
 * ```ts
 * import { add } from "./ops.ts";
 * import { tensor } from "./tensor.ts";
 * add(tensor([[1, 2], [3, 4]]), tensor([10, 20])).toArray(); // [11, 22, 13, 24]
 * ```
 */
export function add(a: TensorLike, b: TensorLike): Tensor {
  return binaryOp("add", a, b);
}
/** `a - b` with broadcasting. */
export function sub(a: TensorLike, b: TensorLike): Tensor {
  return binaryOp("sub", a, b);
}
/** `a * b` with broadcasting. */
export function mul(a: TensorLike, b: TensorLike): Tensor {
  return binaryOp("mul", a, b);
}
/** `a / b` with broadcasting. */
export function div(a: TensorLike, b: TensorLike): Tensor {
  return binaryOp("div", a, b);
}
/** Elementwise maximum (gradient to `a` on ties). */
export function maximum(a: TensorLike, b: TensorLike): Tensor {
  return binaryOp("maximum", a, b);
}
/** Elementwise minimum (gradient to `a` on ties). */
export function minimum(a: TensorLike, b: TensorLike): Tensor {
  return binaryOp("minimum", a, b);
}
/** `a > b` as 1/0 (no gradient). */
export function gt(a: TensorLike, b: TensorLike): Tensor {
  return binaryOp("gt", a, b);
}
/** `a >= b` as 1/0. */
export function ge(a: TensorLike, b: TensorLike): Tensor {
  return binaryOp("ge", a, b);
}
/** `a < b` as 1/0. */
export function lt(a: TensorLike, b: TensorLike): Tensor {
  return binaryOp("lt", a, b);
}
/** `a <= b` as 1/0. */
export function le(a: TensorLike, b: TensorLike): Tensor {
  return binaryOp("le", a, b);
}
/** `a == b` as 1/0. */
export function eq(a: TensorLike, b: TensorLike): Tensor {
  return binaryOp("eq", a, b);
}

/** `-x`. */
export function neg(x: Tensor): Tensor {
  return unaryOp("neg", x);
}
/** `e^x`. */
export function exp(x: Tensor): Tensor {
  return unaryOp("exp", x);
}
/** Natural log. */
export function log(x: Tensor): Tensor {
  return unaryOp("log", x);
}
/** Square root. */
export function sqrt(x: Tensor): Tensor {
  return unaryOp("sqrt", x);
}
/** `|x|` (gradient 0 at 0). */
export function abs(x: Tensor): Tensor {
  return unaryOp("abs", x);
}
/** `x ** exponent` for a constant exponent. */
export function pow(x: Tensor, exponent: number): Tensor {
  return unaryOp("pow", x, exponent);
}
/** `x * x`. */
export function square(x: Tensor): Tensor {
  return unaryOp("pow", x, 2);
}
/** `max(x, 0)`. */
export function relu(x: Tensor): Tensor {
  return unaryOp("relu", x);
}
/** ELU: `x` if `x > 0` else `alpha * (e^x - 1)`. */
export function elu(x: Tensor, alpha = 1): Tensor {
  return unaryOp("elu", x, alpha);
}
/** Hyperbolic tangent. */
export function tanh(x: Tensor): Tensor {
  return unaryOp("tanh", x);
}
/** Logistic sigmoid. */
export function sigmoid(x: Tensor): Tensor {
  return unaryOp("sigmoid", x);
}
/** Clamp into `[min, max]` (gradient passes where `min <= x <= max`, as in PyTorch). */
export function clamp(x: Tensor, min = -Infinity, max = Infinity): Tensor {
  return unaryOp("clamp", x, min, max);
}

/**
 * Mean over `axis` (default all).
 *
 * @example
 * ```ts
 * import { mean } from "./ops.ts";
 * import { tensor } from "./tensor.ts";
 * mean(tensor([1, 2, 3, 4])).item(); // 2.5
 * ```
 */
export function mean(x: Tensor, options: ReduceOptions = {}): Tensor {
  const s = sum(x, options);
  return mul(s, s.size === 0 ? NaN : s.size / x.size);
}

/** Options for `variance`/`std`. */
export interface VarianceOptions extends ReduceOptions {
  /** Bessel's correction (divide by n − 1), PyTorch's default. Default true. */
  unbiased?: boolean;
}

/** Variance over `axis` (default all), unbiased by default like `torch.var`. */
export function variance(x: Tensor, options: VarianceOptions = {}): Tensor {
  const m = mean(x, { axis: options.axis, keepdim: true });
  const sq = sum(square(sub(x, m)), options);
  const n = x.size / sq.size;
  return mul(sq, 1 / ((options.unbiased ?? true) ? n - 1 : n));
}

/** Standard deviation over `axis` (default all), unbiased by default like `torch.std`. */
export function std(x: Tensor, options: VarianceOptions = {}): Tensor {
  return sqrt(variance(x, options));
}

/** Softmax over `axis` (default -1), as `exp(logSoftmax(x))`. */
export function softmax(x: Tensor, axis = -1): Tensor {
  return exp(logSoftmax(x, axis));
}

/** Swap two dims. */
export function transpose(x: Tensor, dim0 = -2, dim1 = -1): Tensor {
  const n = x.ndim;
  const d0 = dim0 < 0 ? dim0 + n : dim0, d1 = dim1 < 0 ? dim1 + n : dim1;
  const dims = x.shape.map((_, i) => (i === d0 ? d1 : i === d1 ? d0 : i));
  return permute(x, dims);
}

/** Insert a size-1 dim at `axis` (a view). */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = axis < 0 ? axis + x.ndim + 1 : axis;
  const shape = [...x.shape];
  shape.splice(a, 0, 1);
  return x.reshape(shape);
}

/** Remove size-1 dims (all, or the one at `axis`) (a view). */
export function squeeze(x: Tensor, axis?: number): Tensor {
  if (axis === undefined) return x.reshape(x.shape.filter((d) => d !== 1));
  const a = axis < 0 ? axis + x.ndim : axis;
  if (x.shape[a] !== 1) throw new Error(`squeeze: dim ${axis} of [${x.shape.join(",")}] is not 1`);
  return x.reshape(x.shape.filter((_, i) => i !== a));
}

/** Flatten dims from `startDim` on into one (a view): `[N, C, H, W] → [N, C*H*W]` by default. */
export function flatten(x: Tensor, startDim = 1): Tensor {
  return x.reshape([...x.shape.slice(0, startDim), -1]);
}

/** Stack equally shaped tensors along a new `axis`. */
export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  return concat(xs.map((t) => unsqueeze(t, axis)), axis);
}

/**
 * Regression losses, composed from differentiable ops (PyTorch semantics, mean reduction by default).
 *
 * @module
 */

import { sum, where } from "./autograd.ts";
import { abs, lt, mean, mul, square, sub } from "./ops.ts";
import type { Tensor } from "./tensor.ts";

/** How a per-element loss is reduced. */
export type Reduction = "mean" | "sum" | "none";

function reduce(x: Tensor, reduction: Reduction): Tensor {
  return reduction === "mean" ? mean(x) : reduction === "sum" ? sum(x) : x;
}

/**
 * Mean squared error.
 *
 * @example
 * ```ts
 * import { mseLoss } from "./losses.ts";
 * import { tensor } from "./tensor.ts";
 * mseLoss(tensor([1, 2]), tensor([1, 4])).item(); // 2
 * ```
 */
export function mseLoss(input: Tensor, target: Tensor, options: { reduction?: Reduction } = {}): Tensor {
  return reduce(square(sub(input, target)), options.reduction ?? "mean");
}

/** Huber loss (`F.huber_loss`): `0.5 d²` if `|d| < delta`, else `delta (|d| − 0.5 delta)`. */
export function huberLoss(
  input: Tensor,
  target: Tensor,
  options: { delta?: number; reduction?: Reduction } = {},
): Tensor {
  const delta = options.delta ?? 1;
  const d = sub(input, target);
  const a = abs(d);
  const loss = where(lt(a, delta), mul(square(d), 0.5), mul(sub(a, 0.5 * delta), delta));
  return reduce(loss, options.reduction ?? "mean");
}

/** Smooth L1 loss (`F.smooth_l1_loss`): `0.5 d² / beta` if `|d| < beta`, else `|d| − 0.5 beta`. */
export function smoothL1Loss(
  input: Tensor,
  target: Tensor,
  options: { beta?: number; reduction?: Reduction } = {},
): Tensor {
  const beta = options.beta ?? 1;
  const d = sub(input, target);
  const a = abs(d);
  const loss = where(lt(a, beta), mul(square(d), 0.5 / beta), sub(a, 0.5 * beta));
  return reduce(loss, options.reduction ?? "mean");
}

/**
 * Optimizers with PyTorch's update rules exactly (Adam, RMSprop, SGD), global-norm gradient clipping and learning
 * rate schedules. Updates run in place (no allocation per step) as backend primitives (`adamStep`, `clipGradNorm`, …),
 * so on a device backend parameters, gradients and optimizer state never leave the device.
 *
 * @module
 */

import { backend, syncHost, type Tensor, wrapStorage, zeroGradLazily } from "./tensor.ts";

/** Serializable optimizer state: the step count and named state buffers (`<paramIndex>.<buffer>`). */
export interface OptimizerState {
  step: number;
  buffers: Record<string, Float32Array>;
}

/** Common optimizer surface. */
export interface Optimizer {
  /** Current learning rate (assign to schedule it). */
  lr: number;
  /** Parameters being optimized. */
  readonly params: readonly Tensor[];
  /** Apply one update from the parameters' `.grad` (parameters without a grad are skipped). */
  step(): void;
  /** Zero all gradients (keeps the buffers). */
  zeroGrad(): void;
  /** Snapshot of the state (buffers are copies). */
  stateDict(): OptimizerState;
  /** Restore state; throws naming any missing or mis-sized buffer. */
  loadStateDict(state: OptimizerState): void;
}

abstract class BaseOptimizer implements Optimizer {
  lr: number;
  readonly params: readonly Tensor[];
  protected t = 0;
  protected readonly buffers: Map<string, Float32Array> = new Map();

  constructor(params: readonly Tensor[], lr: number) {
    if (params.length === 0) throw new Error("optimizer: got an empty parameter list");
    this.params = params;
    this.lr = lr;
  }

  abstract step(): void;

  zeroGrad(): void {
    for (const p of this.params) zeroGradLazily(p);
  }

  /** The named state buffer for parameter `i`, created zeroed on first use. */
  protected buffer(i: number, name: string): Float32Array {
    const key = `${i}.${name}`;
    let b = this.buffers.get(key);
    if (!b) {
      b = new Float32Array(this.params[i].size);
      this.buffers.set(key, b);
    }
    return b;
  }

  stateDict(): OptimizerState {
    syncHost([...this.buffers.values()]); // one readback on a device backend
    const buffers: Record<string, Float32Array> = {};
    for (const [k, v] of this.buffers) buffers[k] = v.slice();
    return { step: this.t, buffers };
  }

  loadStateDict(state: OptimizerState): void {
    const problems: string[] = [];
    for (const [k, v] of Object.entries(state.buffers)) {
      const i = Number(k.split(".")[0]);
      const p = this.params[i];
      if (!p) problems.push(`buffer '${k}' refers to parameter ${i}, but there are ${this.params.length}`);
      else if (p.size !== v.length) problems.push(`buffer '${k}' has ${v.length} values, parameter has ${p.size}`);
    }
    if (problems.length) throw new Error(`optimizer state does not match:\n  ${problems.join("\n  ")}`);
    this.t = state.step;
    this.buffers.clear();
    for (const [k, v] of Object.entries(state.buffers)) this.buffers.set(k, v.slice());
  }
}

/** Options for `Adam` (PyTorch defaults). */
export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  /** L2 penalty added to the gradient (PyTorch `Adam(weight_decay=…)`, not AdamW). */
  weightDecay?: number;
}

/**
 * Adam (`torch.optim.Adam`, non-AMSGrad): `p -= lr/(1-β1^t) · m / (√v/√(1-β2^t) + eps)`.
 *
 * @example
 * ```ts
 * import { Adam, Linear, mean, square, zeros } from "./mod.ts";
 * const net = new Linear(3, 1);
 * const opt = new Adam(net.parameters(), { lr: 2.5e-4, eps: 1e-5 });
 * opt.zeroGrad();
 * mean(square(net.forward(zeros([4, 3])))).backward();
 * opt.step();
 * ```
 */
export class Adam extends BaseOptimizer {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  constructor(params: readonly Tensor[], options: AdamOptions = {}) {
    super(params, options.lr ?? 1e-3);
    [this.beta1, this.beta2] = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
  }

  step(): void {
    this.t++;
    const stepSize = this.lr / (1 - Math.pow(this.beta1, this.t));
    const bc2Sqrt = Math.sqrt(1 - Math.pow(this.beta2, this.t));
    const be = backend();
    for (let i = 0; i < this.params.length; i++) {
      const p = this.params[i];
      if (!p.grad) continue;
      be.adamStep(
        p.raw,
        p.grad.raw,
        this.buffer(i, "exp_avg"),
        this.buffer(i, "exp_avg_sq"),
        this.beta1,
        this.beta2,
        stepSize,
        bc2Sqrt,
        this.eps,
        this.weightDecay,
      );
    }
  }
}

/** Options for `RMSprop` (PyTorch defaults). */
export interface RMSpropOptions {
  lr?: number;
  alpha?: number;
  /** Added outside the square root, as in PyTorch (TensorFlow adds it inside). */
  eps?: number;
  weightDecay?: number;
  momentum?: number;
  centered?: boolean;
}

/** RMSprop (`torch.optim.RMSprop`): `p -= lr · g / (√(v − centered·ḡ²) + eps)`, optional momentum. */
export class RMSprop extends BaseOptimizer {
  readonly alpha: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly momentum: number;
  readonly centered: boolean;
  constructor(params: readonly Tensor[], options: RMSpropOptions = {}) {
    super(params, options.lr ?? 1e-2);
    this.alpha = options.alpha ?? 0.99;
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    this.momentum = options.momentum ?? 0;
    this.centered = options.centered ?? false;
  }

  step(): void {
    this.t++;
    const { alpha, eps, weightDecay: wd, momentum, centered, lr } = this;
    const be = backend();
    this.params.forEach((p, i) => {
      if (!p.grad) return;
      const v = this.buffer(i, "square_avg");
      const ga = centered ? this.buffer(i, "grad_avg") : null;
      const buf = momentum > 0 ? this.buffer(i, "momentum_buffer") : null;
      be.rmspropStep(p.raw, p.grad.raw, v, ga, buf, lr, alpha, eps, wd, momentum);
    });
  }
}

/** Options for `SGD` (PyTorch defaults). */
export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/** SGD with momentum (`torch.optim.SGD`): the first step copies the gradient into the momentum buffer. */
export class SGD extends BaseOptimizer {
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  constructor(params: readonly Tensor[], options: SGDOptions) {
    super(params, options.lr);
    this.momentum = options.momentum ?? 0;
    this.dampening = options.dampening ?? 0;
    this.weightDecay = options.weightDecay ?? 0;
    this.nesterov = options.nesterov ?? false;
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new Error("SGD: nesterov needs momentum > 0 and dampening = 0");
    }
  }

  step(): void {
    const first = this.t === 0;
    this.t++;
    const { momentum, dampening, weightDecay: wd, nesterov, lr } = this;
    const be = backend();
    this.params.forEach((p, i) => {
      if (!p.grad) return;
      const buf = momentum !== 0 ? this.buffer(i, "momentum_buffer") : null;
      be.sgdStep(p.raw, p.grad.raw, buf, lr, momentum, dampening, wd, nesterov, first);
    });
  }
}

/**
 * Scale gradients in place so their global L2 norm is at most `maxNorm` (`torch.nn.utils.clip_grad_norm_`);
 * returns the norm before clipping as a scalar tensor, which stays on the device with a device backend (read it with
 * `item()` when logging, after the optimizer step, so the step still reads back once).
 *
 * @example
 * ```ts
 * import { clipGradNormTensor, tensor } from "./mod.ts";
 * const p = tensor([0, 0], { requiresGrad: true });
 * p.grad = tensor([3, 4]);
 * clipGradNormTensor([p], 1).item(); // 5 (and p.grad is now [0.6, 0.8])
 * ```
 */
export function clipGradNormTensor(params: readonly Tensor[], maxNorm: number): Tensor {
  const grads: Float32Array[] = [];
  for (const p of params) if (p.grad) grads.push(p.grad.raw);
  const norm = new Float32Array(1);
  backend().clipGradNorm(grads, maxNorm, norm);
  return wrapStorage(norm, []);
}

/**
 * `clipGradNormTensor` returning the norm as a number (a readback on a device backend).
 *
 * @example
 * ```ts
 * import { clipGradNorm, tensor } from "./mod.ts";
 * const p = tensor([0, 0], { requiresGrad: true });
 * p.grad = tensor([3, 4]);
 * clipGradNorm([p], 1); // 5
 * ```
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): number {
  return clipGradNormTensor(params, maxNorm).item();
}

/** A learning-rate schedule: step index (0-based) → learning rate. */
export type Schedule = (step: number) => number;

/** Constant schedule. */
export function constantSchedule(lr: number): Schedule {
  return () => lr;
}

/**
 * Linear interpolation from `start` to `end` over `steps`, then constant at `end` (CleanRL's annealing is
 * `linearSchedule({ start: lr, end: 0, steps: numUpdates })`).
 *
 * @example
 * ```ts
 * import { linearSchedule } from "./optim.ts";
 * const lr = linearSchedule({ start: 1e-3, end: 0, steps: 100 });
 * lr(50); // 5e-4
 * ```
 */
export function linearSchedule(options: { start: number; end?: number; steps: number }): Schedule {
  const end = options.end ?? 0;
  return (step) => options.start + (end - options.start) * Math.min(1, Math.max(0, step / options.steps));
}

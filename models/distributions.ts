/**
 * Action distributions for policy-gradient methods: `Categorical` (from logits over the last axis) and
 * `DiagGaussian`. Sampling uses a seeded `Rng` and carries no gradient; `logProb` and `entropy` are differentiable.
 *
 * @module
 */

import { argmax, gather, logSoftmax, sum } from "./autograd.ts";
import { add, clamp, exp, mul, neg, square, sub } from "./ops.ts";
import type { Rng } from "./rng.ts";
import { Tensor } from "./tensor.ts";

/**
 * Categorical distribution over the last axis of `logits` (`[..., n]`).
 *
 * @example
 * ```ts
 * import { Categorical, Rng, tensor } from "./mod.ts";
 * const dist = new Categorical(tensor([[0, 1, 2], [2, 1, 0]]));
 * const a = dist.sample(new Rng(0)); // shape [2], integer-valued floats
 * const lp = dist.logProb(a); // shape [2], differentiable w.r.t. the logits
 * ```
 */
export class Categorical {
  /** Normalized log-probabilities (`logits − logsumexp(logits)`). */
  readonly logits: Tensor;
  readonly #n: number;
  readonly #batch: number[];

  constructor(logits: Tensor) {
    if (logits.ndim < 1) throw new Error("Categorical: logits need at least one dim");
    this.logits = logSoftmax(logits, -1);
    this.#n = logits.shape[logits.ndim - 1];
    this.#batch = logits.shape.slice(0, -1);
  }

  /** Probabilities. */
  get probs(): Tensor {
    return exp(this.logits);
  }

  /** Draw one action per row by inverse CDF (no gradient). */
  sample(rng: Rng): Tensor {
    const n = this.#n, lp = this.logits.data;
    const rows = lp.length / n;
    const out = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      let u = rng.uniform(), k = 0;
      for (; k < n - 1; k++) {
        u -= Math.exp(lp[r * n + k]);
        if (u < 0) break;
      }
      out[r] = k;
    }
    return new Tensor(out, this.#batch);
  }

  /** Log-probability of integer actions (shape = batch shape). */
  logProb(actions: Tensor): Tensor {
    return gather(this.logits, -1, actions.reshape([...this.#batch, 1])).reshape(this.#batch);
  }

  /** Entropy `−Σ p log p` per row; masked (−∞) logits contribute 0, as in `torch.distributions.Categorical`. */
  entropy(): Tensor {
    const finite = clamp(this.logits, -3.4028234663852886e38); // 0 · (−∞) would be NaN
    return neg(sum(mul(this.probs, finite), { axis: -1 }));
  }

  /** Most likely action per row. */
  mode(): Tensor {
    return argmax(this.logits, { axis: -1 });
  }
}

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/** Diagonal Gaussian over the last axis: `mean` and `logStd` broadcast together. */
export class DiagGaussian {
  constructor(readonly mean: Tensor, readonly logStd: Tensor) {}

  /** `mean + std · ε`, ε ~ N(0, 1) from `rng` (no gradient). */
  sample(rng: Rng): Tensor {
    const std = exp(this.logStd).data;
    const out = new Float32Array(this.mean.size);
    const m = this.mean.data, per = std.length;
    for (let i = 0; i < out.length; i++) out[i] = m[i] + std[per === out.length ? i : i % per] * rng.normal();
    return new Tensor(out, this.mean.shape);
  }

  /** Log-density summed over the last axis. */
  logProb(x: Tensor): Tensor {
    const z = mul(sub(x, this.mean), exp(neg(this.logStd)));
    const per = sub(mul(square(z), -0.5), add(this.logStd, HALF_LOG_2PI));
    return sum(per, { axis: -1 });
  }

  /** Entropy summed over the last axis. */
  entropy(): Tensor {
    const per = add(this.logStd, 0.5 + HALF_LOG_2PI);
    const full = add(per, mul(this.mean, 0)); // broadcast to the batch shape
    return sum(full, { axis: -1 });
  }

  /** The mean. */
  mode(): Tensor {
    return this.mean;
  }
}

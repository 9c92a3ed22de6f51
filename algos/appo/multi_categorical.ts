/**
 * Sample Factory's action distribution for MultiDiscrete spaces: one categorical per action dimension, each over its
 * own slice of a single concatenated logits row (one linear head produces them all). An action is one sample per
 * dimension; its log-probability and the entropy are sums over the dimensions, as for independent factors.
 *
 * @module
 */

import { add, Categorical, mean, type Rng, slice, Tensor } from "../../models/mod.ts";

/**
 * Independent categoricals over the dimensions of a MultiDiscrete action: `logits` is `[..., Σ nvec]`, dimension `d`
 * owning the `nvec[d]` columns after those of the dimensions before it.
 *
 * @example
 * ```ts
 * import { MultiCategorical } from "./multi_categorical.ts";
 * import { Rng, tensor } from "../../models/mod.ts";
 * // Two rows, dimensions of 3 and 2 choices.
 * const dist = new MultiCategorical(tensor([[0, 1, 2, 0, 0], [2, 1, 0, 5, -5]]), [3, 2]);
 * const a = dist.sample(new Rng(0)); // [2, 2]: a column per dimension
 * const lp = dist.logProb(a); // [2]: sum of the per-dimension log-probabilities, differentiable
 * console.assert(a.shape[1] === 2 && lp.shape[0] === 2 && dist.entropy().shape[0] === 2);
 * ```
 */
export class MultiCategorical {
  /** Choices per dimension. */
  readonly nvec: readonly number[];
  /** One `Categorical` per dimension, over its slice of the logits. */
  readonly dims: readonly Categorical[];
  readonly #batch: number[];

  constructor(logits: Tensor, nvec: readonly number[]) {
    const total = nvec.reduce((a, b) => a + b, 0);
    if (nvec.length === 0 || nvec.some((n) => !Number.isInteger(n) || n < 1)) {
      throw new RangeError(`MultiCategorical: nvec must hold positive integers, got [${nvec}]`);
    }
    if (logits.ndim < 1 || logits.shape[logits.ndim - 1] !== total) {
      throw new RangeError(
        `MultiCategorical: logits [${logits.shape}] need a last dim of ${total} (the sum of nvec [${nvec}])`,
      );
    }
    this.nvec = [...nvec];
    this.#batch = logits.shape.slice(0, -1);
    let at = 0;
    this.dims = nvec.map((n) => new Categorical(slice(logits, -1, at, at += n)));
  }

  /** One draw per dimension and row (rows outer, dimensions inner), shape `[..., D]`; no gradient. */
  sample(rng: Rng): Tensor {
    const D = this.nvec.length, rows = this.#rows();
    const out = new Float32Array(rows * D);
    for (let r = 0; r < rows; r++) {
      for (let d = 0; d < D; d++) {
        const n = this.nvec[d], lp = this.dims[d].logits.data;
        let u = rng.uniform(), k = 0;
        for (; k < n - 1; k++) {
          u -= Math.exp(lp[r * n + k]);
          if (u < 0) break;
        }
        out[r * D + d] = k;
      }
    }
    return new Tensor(out, [...this.#batch, D]);
  }

  /** `Σ_d log p_d(a_d)` for actions `[..., D]` (integer-valued); shape = batch shape. */
  logProb(actions: Tensor): Tensor {
    const D = this.nvec.length, rows = this.#rows();
    if (actions.size !== rows * D) {
      throw new RangeError(`MultiCategorical.logProb: actions [${actions.shape}] must be [${[...this.#batch, D]}]`);
    }
    const a = actions.data;
    return this.#sum((dist, d) => {
      const column = new Float32Array(rows);
      for (let r = 0; r < rows; r++) column[r] = a[r * D + d];
      return dist.logProb(new Tensor(column, this.#batch));
    });
  }

  /** `Σ_d H(p_d)` per row. */
  entropy(): Tensor {
    return this.#sum((dist) => dist.entropy());
  }

  /**
   * `Σ_d mean_k log p_d(k)` per row. The symmetric KL to the uniform prior, summed over dimensions (Sample Factory's
   * multi-categorical exploration loss), is `(−entropy() − meanLogProbs()) / 2`.
   */
  meanLogProbs(): Tensor {
    return this.#sum((dist) => mean(dist.logits, { axis: -1 }));
  }

  /** Most likely choice per dimension, `[..., D]`. */
  mode(): Tensor {
    const D = this.nvec.length, rows = this.#rows();
    const out = new Float32Array(rows * D);
    this.dims.forEach((dist, d) => dist.mode().data.forEach((k, r) => (out[r * D + d] = k)));
    return new Tensor(out, [...this.#batch, D]);
  }

  #rows(): number {
    return this.#batch.reduce((a, b) => a * b, 1);
  }

  #sum(per: (dist: Categorical, d: number) => Tensor): Tensor {
    let total = per(this.dims[0], 0);
    for (let d = 1; d < this.dims.length; d++) total = add(total, per(this.dims[d], d));
    return total;
  }
}

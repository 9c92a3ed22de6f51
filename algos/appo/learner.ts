/**
 * The learner role: takes complete trajectories from the ring as they arrive, and trains on batches of them with
 * PPO's clipped objective plus value clipping, advantages from GAE (behaviour values) or V-trace (current values),
 * per-sample policy-lag filtering, the GRU core unrolled over each trajectory from its stored initial state with
 * episode-reset masks, and input/return normalization. Each optimizer step bumps the policy version, which
 * inference stamps on the steps it records.
 *
 * A batch is trained in chunks of trajectories whose gradients accumulate, so the caller can serve inference between
 * chunks (one thread runs both roles).
 *
 * @module
 */

import {
  add,
  Categorical,
  clamp,
  clipGradNormTensor,
  exp,
  maximum,
  mean,
  minimum,
  mul,
  neg,
  noGrad,
  type Optimizer,
  square,
  sub,
  sum,
  Tensor,
} from "../../models/mod.ts";
import type { AppoModel } from "./model.ts";
import { type TrajectoryRing, TRUNCATED } from "./trajectory_buffer.ts";

/** Options of the learner (see `APPO_DEFAULTS` in `appo.ts` for the defaults). */
export interface LearnerOptions {
  /** Trajectories per batch (`batchSize / rollout`). */
  batchTrajectories: number;
  /** Trajectories per gradient-accumulation chunk (inference runs between chunks). */
  chunkTrajectories: number;
  /** Optimizer steps on each batch. */
  numEpochs: number;
  /** Learning rate at the start (the optimizer's own `lr` is left alone when `lrDecaySamples` is 0). */
  learningRate: number;
  /** Samples over which the learning rate decays linearly to 0; 0 keeps it constant. */
  lrDecaySamples: number;
  gamma: number;
  gaeLambda: number;
  /** PPO ratio clip: the ratio is clipped to `[1 / (1 + c), 1 + c]` (Sample Factory's form). */
  clipRatio: number;
  /** Value clip around the behaviour value (in normalized units). */
  clipValue: number;
  valueLossCoeff: number;
  explorationLossCoeff: number;
  explorationLoss: "entropy" | "symmetric_kl";
  maxGradNorm: number;
  /** Use V-trace targets and advantages instead of GAE. */
  withVtrace: boolean;
  vtraceRho: number;
  vtraceC: number;
  /** Samples whose policy version is more than this behind the learner's are left out of the loss. */
  maxPolicyLag: number;
  /** Add `gamma * value` to the reward of time-limit truncations (treat them as non-terminal). */
  valueBootstrap: boolean;
  /** Normalize advantages over the batch (V-trace: over each chunk). */
  normalizeAdvantage: boolean;
}

/** Metrics of one optimizer step, with CleanRL-style names. */
export type LearnerStats = Record<string, number>;

/**
 * Generalized advantage estimation over `k` trajectories of `T` steps: `values` is `[k, T + 1]` (row T the
 * bootstrap), `rewards`/`dones` are `[k, T]` (done: the next observation starts a new episode). Writes `[k, T]`
 * advantages into `out` and returns it.
 *
 * @example
 * ```ts
 * import { gae } from "./learner.ts";
 * const adv = gae({ rewards: [1, 1], dones: [0, 1], values: [0, 0, 5], k: 1, T: 2, gamma: 0.5, lambda: 1 });
 * // [1 + 0.5 * 1, 1] = [1.5, 1]
 * ```
 */
export function gae(o: {
  rewards: ArrayLike<number>;
  dones: ArrayLike<number>;
  values: ArrayLike<number>;
  k: number;
  T: number;
  gamma: number;
  lambda: number;
  out?: Float32Array;
}): Float32Array {
  const { k, T, gamma, lambda } = o;
  const out = o.out ?? new Float32Array(k * T);
  for (let j = 0; j < k; j++) {
    let last = 0;
    for (let t = T - 1; t >= 0; t--) {
      const notDone = o.dones[j * T + t] ? 0 : 1;
      const v = o.values[j * (T + 1) + t], next = o.values[j * (T + 1) + t + 1];
      const delta = o.rewards[j * T + t] + gamma * next * notDone - v;
      last = delta + gamma * lambda * notDone * last;
      out[j * T + t] = last;
    }
  }
  return out;
}

/**
 * V-trace (Espeholt et al. 2018) over `k` trajectories of `T` steps. `ratios` are `π/μ` per step (`[k, T]`),
 * `values` `[k, T + 1]` the current value estimates with row T the bootstrap. Returns the value targets `vs` and the
 * policy-gradient advantages `ρ_t (r_t + γ v_{t+1} − V(x_t))`, both `[k, T]`.
 *
 * @example
 * ```ts
 * import { vtrace } from "./learner.ts";
 * const { vs, pgAdv } = vtrace({
 *   ratios: [1, 1], rewards: [1, 1], dones: [0, 0], values: [0, 0, 0], k: 1, T: 2, gamma: 1, rhoBar: 1, cBar: 1,
 * });
 * // on-policy with λ = 1: vs = [2, 1], pgAdv = [2, 1]
 * ```
 */
export function vtrace(o: {
  ratios: ArrayLike<number>;
  rewards: ArrayLike<number>;
  dones: ArrayLike<number>;
  values: ArrayLike<number>;
  k: number;
  T: number;
  gamma: number;
  rhoBar: number;
  cBar: number;
}): { vs: Float32Array; pgAdv: Float32Array } {
  const { k, T, gamma } = o;
  const vs = new Float32Array(k * T), pgAdv = new Float32Array(k * T);
  for (let j = 0; j < k; j++) {
    let vsNext = o.values[j * (T + 1) + T];
    for (let t = T - 1; t >= 0; t--) {
      const i = j * T + t, disc = o.dones[i] ? 0 : gamma;
      const v = o.values[j * (T + 1) + t], vNext = o.values[j * (T + 1) + t + 1];
      const rho = Math.min(o.rhoBar, o.ratios[i]), c = Math.min(o.cBar, o.ratios[i]);
      const delta = rho * (o.rewards[i] + disc * vNext - v);
      pgAdv[i] = rho * (o.rewards[i] + disc * vsNext - v);
      vsNext = v + delta + disc * c * (vsNext - vNext);
      vs[i] = vsNext;
    }
  }
  return { vs, pgAdv };
}

/** A batch being trained on: everything the chunks need, in trajectory-major `[k, T + 1]` rows. */
interface Batch {
  slots: number[];
  /** Encoder input for all rows. */
  x: Float32Array;
  /** `[M, actSize]` actions (one integer per action dimension). */
  actions: Float32Array;
  oldLogp: Float32Array;
  /** Behaviour values, normalized units. */
  oldValues: Float32Array;
  /** GAE: normalized advantages; V-trace: unused. */
  adv: Float32Array;
  /** GAE: normalized return targets. */
  targets: Float32Array;
  /** Per-row loss weight: valid / number of valid samples (0 for bootstrap rows and stale samples). */
  weight: Float32Array;
  rewards: Float32Array;
  dones: Uint8Array;
  h0: Float32Array;
  masks: Float32Array;
  epoch: number;
  chunk: number;
  numValid: number;
  lagSum: number;
  lagMax: number;
  sums: Record<string, number>;
}

/**
 * The learner role.
 *
 * @example
 * ```ts
 * import { Adam } from "../../models/mod.ts";
 * import { Learner } from "./learner.ts";
 * import { AppoModel } from "./model.ts";
 * import { allocateTrajectoryBuffer, TrajectoryRing } from "./trajectory_buffer.ts";
 * import { APPO_DEFAULTS } from "./appo.ts";
 * const model = new AppoModel({ obsShape: [4], obsDtype: "float32", numActions: 2, mlpLayers: [16] });
 * const ring = new TrajectoryRing(allocateTrajectoryBuffer({
 *   numSlots: 4, rollout: 8, obsSize: 4, obsDtype: "float32", actSize: 1, hiddenSize: 0,
 * }));
 * const learner = new Learner(model, new Adam(model.parameters()), ring, {
 *   ...APPO_DEFAULTS, batchTrajectories: 2, chunkTrajectories: 2, lrDecaySamples: 0,
 * });
 * console.assert(!learner.hasWork()); // no complete trajectories yet
 * ```
 */
export class Learner {
  readonly model: AppoModel;
  readonly optimizer: Optimizer;
  readonly ring: TrajectoryRing;
  readonly options: LearnerOptions;
  /** Policy version: optimizer steps taken. */
  version = 0;
  /** Samples trained on (each counted once per batch). */
  samples = 0;
  #batch: Batch | undefined;

  constructor(model: AppoModel, optimizer: Optimizer, ring: TrajectoryRing, options: LearnerOptions) {
    if (ring.buf.layout.actSize !== model.actionNvec.length) {
      throw new RangeError(
        `Learner: the trajectory buffer holds ${ring.buf.layout.actSize} integers per action, the model has ` +
          `${model.actionNvec.length} action dimensions`,
      );
    }
    this.model = model;
    this.optimizer = optimizer;
    this.ring = ring;
    this.options = options;
  }

  /** Whether a batch is in progress or enough trajectories wait to start one. */
  hasWork(): boolean {
    return this.#batch !== undefined || this.ring.readyCount >= this.options.batchTrajectories;
  }

  /** Whether a batch is in progress (its trajectories are out of the ring). */
  get busy(): boolean {
    return this.#batch !== undefined;
  }

  /**
   * Does one chunk of work: starts a batch if needed, accumulates one chunk's gradients, and after the last chunk of
   * an epoch takes the optimizer step. Returns that step's metrics, undefined otherwise (also when no work).
   */
  trainChunk(): LearnerStats | undefined {
    if (!this.#batch) {
      const slots = this.ring.popReady(this.options.batchTrajectories);
      if (!slots) return undefined;
      this.#batch = this.#prepare(slots);
    }
    const batch = this.#batch;
    const k = batch.slots.length, c = this.options.chunkTrajectories;
    const j0 = batch.chunk * c, j1 = Math.min(k, j0 + c);
    if (batch.numValid > 0) this.#chunkLoss(batch, j0, j1);
    batch.chunk++;
    if (j1 < k) return undefined;
    // End of an epoch: one optimizer step.
    const params = this.optimizer.params;
    let gradNorm = 0;
    if (batch.numValid > 0) {
      const norm = clipGradNormTensor(params, this.options.maxGradNorm);
      const { learningRate, lrDecaySamples } = this.options;
      if (lrDecaySamples > 0) this.optimizer.lr = learningRate * Math.max(0, 1 - this.samples / lrDecaySamples);
      this.optimizer.step();
      gradNorm = norm.item(); // after the step: on a device backend the update is recorded before this one readback
    }
    this.optimizer.zeroGrad();
    this.version++;
    batch.chunk = 0;
    batch.epoch++;
    const s = batch.sums, n = Math.max(1, batch.numValid);
    const stats: LearnerStats = {
      "losses/policy_loss": s.policy / n,
      "losses/value_loss": s.value / n,
      "losses/entropy": s.entropy / n,
      "losses/approx_kl": s.kl / n,
      "losses/clipfrac": s.clip / n,
      "losses/grad_norm": gradNorm,
      "perf/policy_lag": batch.lagSum / Math.max(1, batch.numValid + s.stale),
      "perf/policy_lag_max": batch.lagMax,
      "perf/stale_fraction": s.stale / Math.max(1, batch.numValid + s.stale),
    };
    for (const key of Object.keys(s)) if (key !== "stale") s[key] = 0;
    if (batch.epoch >= this.options.numEpochs) {
      this.ring.release(batch.slots);
      this.samples += batch.numValid + s.stale;
      this.#batch = undefined;
    }
    return stats;
  }

  /** Runs `trainChunk` until the current (or next) batch is fully trained; returns the last step's metrics. */
  trainBatch(): LearnerStats | undefined {
    let stats: LearnerStats | undefined;
    if (!this.hasWork()) return undefined;
    do stats = this.trainChunk() ?? stats; while (this.#batch);
    return stats;
  }

  #prepare(slots: number[]): Batch {
    const o = this.options, model = this.model, buf = this.ring.buf, T = buf.layout.rollout, L = T + 1;
    const k = slots.length, M = k * L, size = buf.layout.obsSize, H = model.hiddenSize;
    const raw = buf.layout.obsDtype === "uint8" ? new Uint8Array(M * size) : new Float32Array(M * size);
    const actSize = buf.layout.actSize;
    const actions = new Float32Array(M * actSize), oldLogp = new Float32Array(M), values = new Float32Array(M);
    const rewards = new Float32Array(k * T), dones = new Uint8Array(k * T), weight = new Float32Array(M);
    const h0 = new Float32Array(k * H), masks = new Float32Array(L * k).fill(1);
    const valid = new Uint8Array(M);
    let numValid = 0, stale = 0, lagSum = 0, lagMax = 0;
    for (let j = 0; j < k; j++) {
      const s = slots[j];
      raw.set(buf.obs.subarray(s * L * size, (s + 1) * L * size), j * L * size);
      values.set(buf.values.subarray(s * L, (s + 1) * L), j * L);
      h0.set(buf.h0.subarray(s * H, (s + 1) * H), j * H);
      for (let t = 0; t < T; t++) {
        const at = s * T + t, row = j * L + t;
        for (let d = 0; d < actSize; d++) actions[row * actSize + d] = buf.actions[at * actSize + d];
        oldLogp[row] = buf.logp[at];
        rewards[j * T + t] = buf.rewards[at];
        dones[j * T + t] = buf.dones[at];
        if (t + 1 < L && buf.dones[at]) masks[(t + 1) * k + j] = 0;
        const lag = this.version - buf.versions[at];
        lagSum += lag;
        if (lag > lagMax) lagMax = lag;
        if (lag <= o.maxPolicyLag) {
          valid[row] = 1;
          numValid++;
        } else stale++;
      }
    }
    if (o.valueBootstrap) {
      for (let j = 0; j < k; j++) {
        for (let t = 0; t < T; t++) {
          if (dones[j * T + t] & TRUNCATED) rewards[j * T + t] += o.gamma * values[j * L + t];
        }
      }
    }
    // Sample Factory's order: the statistics take in the batch, then normalize it.
    const x = model.scaleObs(raw, M);
    model.obsRms?.update(x, M, valid);
    model.normalizeObs(x, M);
    const adv = new Float32Array(M), targets = new Float32Array(M), oldValues = new Float32Array(M);
    if (!o.withVtrace) {
      const a = gae({ rewards, dones, values, k, T, gamma: o.gamma, lambda: o.gaeLambda });
      const returns = new Float32Array(M);
      for (let j = 0; j < k; j++) {
        for (let t = 0; t < T; t++) {
          adv[j * L + t] = a[j * T + t];
          returns[j * L + t] = a[j * T + t] + values[j * L + t];
        }
      }
      model.retRms?.update(returns, M, valid);
      for (let r = 0; r < M; r++) targets[r] = model.normalizeValue(returns[r]);
      if (o.normalizeAdvantage) normalizeMasked(adv, valid);
    }
    for (let r = 0; r < M; r++) oldValues[r] = model.normalizeValue(values[r]);
    for (let r = 0; r < M; r++) weight[r] = valid[r] / Math.max(1, numValid);
    return {
      slots,
      x,
      actions,
      oldLogp,
      oldValues,
      adv,
      targets,
      weight,
      rewards,
      dones,
      h0,
      masks,
      epoch: 0,
      chunk: 0,
      numValid,
      lagSum,
      lagMax,
      sums: { policy: 0, value: 0, entropy: 0, kl: 0, clip: 0, stale },
    };
  }

  #chunkLoss(b: Batch, j0: number, j1: number): void {
    const o = this.options, model = this.model, T = this.ring.buf.layout.rollout, L = T + 1;
    const k = j1 - j0, m = k * L, H = model.hiddenSize, size = model.obsSize;
    const x = new Tensor(b.x.subarray(j0 * L * size, j1 * L * size), [m, ...model.inputShape]);
    let h0: Tensor | undefined, masks: Tensor | undefined;
    if (H) {
      h0 = new Tensor(b.h0.slice(j0 * H, j1 * H), [k, H]);
      const mk = new Float32Array(L * k);
      for (let t = 0; t < L; t++) for (let j = 0; j < k; j++) mk[t * k + j] = b.masks[t * b.slots.length + j0 + j];
      masks = new Tensor(mk, [L, k]);
    }
    const out = model.forwardSequence(x, k, L, h0, masks);
    const dist = model.distribution(out.logits), D = model.actionNvec.length;
    const logp = dist.logProb(new Tensor(b.actions.slice(j0 * L * D, j1 * L * D), D > 1 ? [m, D] : [m]));
    const oldLogp = new Tensor(b.oldLogp.slice(j0 * L, j1 * L), [m]);
    const ratio = clamp(exp(sub(logp, oldLogp)), 0.05, 20);
    let adv: Float32Array, targets: Float32Array;
    const weight = b.weight.slice(j0 * L, j1 * L);
    if (o.withVtrace) {
      ({ adv, targets } = this.#vtraceChunk(b, j0, j1, ratio.data, out.values.data));
      const valid = new Uint8Array(m);
      for (let r = 0; r < m; r++) valid[r] = weight[r] > 0 ? 1 : 0;
      if (o.normalizeAdvantage) normalizeMasked(adv, valid);
    } else {
      adv = b.adv.slice(j0 * L, j1 * L);
      targets = b.targets.slice(j0 * L, j1 * L);
    }
    const advT = new Tensor(adv, [m]);
    const hi = 1 + o.clipRatio, lo = 1 / hi;
    const pg = neg(minimum(mul(ratio, advT), mul(clamp(ratio, lo, hi), advT)));
    const oldV = new Tensor(b.oldValues.slice(j0 * L, j1 * L), [m]);
    const tgt = new Tensor(targets, [m]);
    const v = out.values;
    const vClipped = add(oldV, clamp(sub(v, oldV), -o.clipValue, o.clipValue));
    const vl = maximum(square(sub(v, tgt)), square(sub(vClipped, tgt)));
    const entropy = dist.entropy();
    const expl = o.explorationLoss === "entropy"
      ? neg(entropy)
      // Sample Factory's symmetric KL to the uniform prior, (KL(p‖u) + KL(u‖p)) / 2 = (Σ p log p − mean(log p)) / 2
      // (summed over dimensions).
      : clamp(
        mul(
          sub(neg(entropy), dist instanceof Categorical ? mean(dist.logits, { axis: -1 }) : dist.meanLogProbs()),
          0.5,
        ),
        -Infinity,
        30,
      );
    const perSample = add(add(pg, mul(vl, o.valueLossCoeff)), mul(expl, o.explorationLossCoeff));
    const w = new Tensor(weight, [m]);
    sum(mul(perSample, w)).backward();
    // Metrics over valid samples, from the values already computed.
    const s = b.sums, r = ratio.data, lp = logp.data, ol = oldLogp.data;
    for (let i = 0; i < m; i++) {
      if (weight[i] === 0) continue;
      s.policy += pg.data[i];
      s.value += vl.data[i];
      s.entropy += entropy.data[i];
      const logRatio = lp[i] - ol[i];
      s.kl += Math.exp(logRatio) - 1 - logRatio;
      if (r[i] < lo || r[i] > hi) s.clip++;
    }
  }

  /** V-trace targets (normalized units) and advantages for a chunk, from the current values (no gradient). */
  #vtraceChunk(
    b: Batch,
    j0: number,
    j1: number,
    ratios: Float32Array,
    values: Float32Array,
  ): { adv: Float32Array; targets: Float32Array } {
    const o = this.options, model = this.model, T = this.ring.buf.layout.rollout, L = T + 1, k = j1 - j0;
    const v = new Float32Array(k * L), ratio = new Float32Array(k * T);
    noGrad(() => {
      for (let i = 0; i < k * L; i++) v[i] = model.denormalizeValue(values[i]);
    });
    for (let j = 0; j < k; j++) for (let t = 0; t < T; t++) ratio[j * T + t] = ratios[j * L + t];
    const { vs, pgAdv } = vtrace({
      ratios: ratio,
      rewards: b.rewards.subarray(j0 * T, j1 * T),
      dones: b.dones.subarray(j0 * T, j1 * T),
      values: v,
      k,
      T,
      gamma: o.gamma,
      rhoBar: o.vtraceRho,
      cBar: o.vtraceC,
    });
    const mask = new Uint8Array(k * T);
    for (let j = 0; j < k; j++) for (let t = 0; t < T; t++) mask[j * T + t] = b.weight[(j0 + j) * L + t] > 0 ? 1 : 0;
    model.retRms?.update(vs, k * T, mask);
    const adv = new Float32Array(k * L), targets = new Float32Array(k * L);
    for (let j = 0; j < k; j++) {
      for (let t = 0; t < T; t++) {
        adv[j * L + t] = pgAdv[j * T + t];
        targets[j * L + t] = model.normalizeValue(vs[j * T + t]);
      }
    }
    return { adv, targets };
  }
}

/** Normalizes `x` to mean 0, std 1 over the entries where `mask` is set (others become 0). */
function normalizeMasked(x: Float32Array, mask: Uint8Array): void {
  let n = 0, s = 0, s2 = 0;
  for (let i = 0; i < x.length; i++) {
    if (!mask[i]) continue;
    n++;
    s += x[i];
  }
  if (n === 0) return;
  const mu = s / n;
  for (let i = 0; i < x.length; i++) if (mask[i]) s2 += (x[i] - mu) ** 2;
  const std = Math.max(Math.sqrt(s2 / Math.max(1, n - 1)), 1e-7);
  for (let i = 0; i < x.length; i++) x[i] = mask[i] ? (x[i] - mu) / std : 0;
}

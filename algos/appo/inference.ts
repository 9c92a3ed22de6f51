/**
 * The batched inference role: takes every env group the rollout workers handed over, runs the current policy once
 * for the whole batch, writes the actions back into the rollout buffer and records the step (observation, action,
 * log-probability, value, policy version) into each env's trajectory slot. GRU hidden states are kept per env and
 * reset where an episode begins.
 *
 * @module
 */

import { noGrad, Rng, Tensor } from "../../models/mod.ts";
import type { AppoModel } from "./model.ts";
import { GROUP_ACTIONS, groupIndex, groupRanges, POLICY_VERSION, type RolloutBuffers } from "./rollout_worker.ts";
import type { TrajectoryRing } from "./trajectory_buffer.ts";

/** An episode that ended, as inference saw it. */
export interface EpisodeStat {
  env: number;
  return: number;
  length: number;
}

/** Options of `Inference`. */
export interface InferenceOptions {
  /** The policy (shared with the learner on this thread). */
  model: AppoModel;
  /** The rollout workers' shared buffer. */
  rollout: RolloutBuffers;
  /** The trajectory ring to fill. */
  ring: TrajectoryRing;
  /** Seed of action sampling (each batch draws from `Rng(seed, batch index)`). */
  seed: number;
}

/**
 * Per-env inference state plus the batch step.
 *
 * @example
 * ```ts
 * import { make } from "../../envs/mod.ts";
 * import { Inference } from "./inference.ts";
 * import { AppoModel } from "./model.ts";
 * import { allocateRolloutBuffers, RolloutWorker } from "./rollout_worker.ts";
 * import { allocateTrajectoryBuffer, TrajectoryRing } from "./trajectory_buffer.ts";
 * const rollout = allocateRolloutBuffers({
 *   numWorkers: 1, envsPerWorker: 2, numSplits: 2, obsSize: 4, obsDtype: "float32", actSize: 1,
 * });
 * const ring = new TrajectoryRing(allocateTrajectoryBuffer({
 *   numSlots: 4, rollout: 8, obsSize: 4, obsDtype: "float32", actSize: 1, hiddenSize: 0,
 * }));
 * const model = new AppoModel({ obsShape: [4], obsDtype: "float32", numActions: 2, mlpLayers: [16] });
 * const worker = new RolloutWorker({ envs: [make("CartPole-v1"), make("CartPole-v1")], worker: 0, buffers: rollout, seed: 0 });
 * const inference = new Inference({ model, rollout, ring, seed: 0 });
 * worker.start();
 * inference.run(inference.readyGroups()); // actions for both groups
 * worker.stepGroup(0);
 * ```
 */
export class Inference {
  readonly model: AppoModel;
  readonly rollout: RolloutBuffers;
  readonly ring: TrajectoryRing;
  readonly seed: number;
  /** Policy version stamped on every step: the learner's published version (`POLICY_VERSION` in the rollout buffer). */
  get version(): number {
    return Atomics.load(this.rollout.ints, POLICY_VERSION);
  }
  set version(v: number) {
    Atomics.store(this.rollout.ints, POLICY_VERSION, v);
  }
  /** Batches run so far (seeds the sampling of the next one). */
  batches = 0;
  /** Env steps recorded so far (first observations after a (re)start are not steps). */
  envSteps = 0;
  /** Per env: its trajectory slot (-1: none yet). */
  readonly slot: Int32Array;
  /** Per env: steps already recorded in its slot. */
  readonly step: Int32Array;
  /** Per env: 1 when the env (re)started, so the rollout buffer holds no reward for a recorded step yet. */
  readonly fresh: Uint8Array;
  /** Per env hidden states `[numEnvs, H]`. */
  readonly h: Float32Array;
  /** Episodes finished since the caller last drained this list. */
  readonly episodes: EpisodeStat[] = [];
  readonly numEnvs: number;
  readonly #T: number;
  readonly #groupEnvs: { start: number; count: number }[];
  readonly #raw: Uint8Array | Float32Array;
  readonly #x: Float32Array;
  readonly #hBatch: Float32Array;
  readonly #rows: Int32Array;

  constructor(options: InferenceOptions) {
    this.model = options.model;
    this.rollout = options.rollout;
    this.ring = options.ring;
    this.seed = options.seed;
    const l = options.rollout.layout;
    if (l.actSize !== options.model.actionNvec.length) {
      throw new RangeError(
        `Inference: the rollout buffer holds ${l.actSize} integers per action, the model has ` +
          `${options.model.actionNvec.length} action dimensions`,
      );
    }
    this.numEnvs = l.numWorkers * l.envsPerWorker;
    this.#T = options.ring.buf.layout.rollout;
    this.slot = new Int32Array(this.numEnvs).fill(-1);
    this.step = new Int32Array(this.numEnvs);
    this.fresh = new Uint8Array(this.numEnvs).fill(1);
    const H = options.model.hiddenSize;
    this.h = new Float32Array(this.numEnvs * H);
    this.#groupEnvs = [];
    for (let w = 0; w < l.numWorkers; w++) {
      for (const r of groupRanges(l)) this.#groupEnvs.push({ start: w * l.envsPerWorker + r.start, count: r.count });
    }
    const size = l.obsSize;
    this.#raw = l.obsDtype === "uint8" ? new Uint8Array(this.numEnvs * size) : new Float32Array(this.numEnvs * size);
    this.#x = new Float32Array(this.numEnvs * size);
    this.#hBatch = new Float32Array(this.numEnvs * H);
    this.#rows = new Int32Array(this.numEnvs);
  }

  /** Number of groups (workers × splits). */
  get numGroups(): number {
    return this.#groupEnvs.length;
  }

  /** Indices of the groups whose observations are waiting for actions. */
  readyGroups(): number[] {
    const out: number[] = [], ints = this.rollout.ints;
    for (let k = 0; k < this.#groupEnvs.length; k++) if (Atomics.load(ints, groupIndex(k)) === 1) out.push(k);
    return out;
  }

  /**
   * Runs the policy once for the envs of `groups` (all in the ready state), records the step into the
   * trajectory slots and hands the groups back to their workers. Groups that would need a trajectory slot when the
   * ring is full are left waiting. Returns the number of env steps served.
   */
  run(groups: readonly number[]): number {
    const T = this.#T, ring = this.ring, buf = ring.buf, rb = this.rollout, size = rb.layout.obsSize;
    const H = this.model.hiddenSize, k = rb.layout.actSize;
    // Admit groups while the ring has slots for the trajectories they begin.
    let free = ring.freeCount, B = 0;
    const served: number[] = [];
    for (const g of groups) {
      const { start, count } = this.#groupEnvs[g];
      let need = 0;
      for (let i = start; i < start + count; i++) if (this.slot[i] < 0 || this.step[i] === T) need++;
      if (need > free) continue;
      free -= need;
      served.push(g);
      for (let i = start; i < start + count; i++) this.#rows[B++] = i;
    }
    if (B === 0) return 0;
    const completing = new Int32Array(B).fill(-1);
    for (let b = 0; b < B; b++) {
      const i = this.#rows[b];
      const obsRow = rb.obs.subarray(i * size, (i + 1) * size);
      if (!this.fresh[i]) {
        this.envSteps++;
        const at = this.slot[i] * T + this.step[i] - 1, d = rb.dones[i];
        buf.rewards[at] = rb.rewards[i];
        buf.dones[at] = d;
        if (d) {
          this.episodes.push({ env: i, return: rb.episodeReturn[i], length: rb.episodeLength[i] });
          if (H) this.h.fill(0, i * H, (i + 1) * H);
        }
      }
      this.fresh[i] = 0;
      if (this.step[i] === T) {
        // The trajectory is complete but for its bootstrap observation/value: this observation and value.
        buf.obs.set(obsRow, (this.slot[i] * (T + 1) + T) * size);
        completing[b] = this.slot[i];
        this.slot[i] = -1;
      }
      if (this.slot[i] < 0) {
        this.slot[i] = ring.take(i)!;
        this.step[i] = 0;
      }
      const s = this.slot[i];
      if (this.step[i] === 0 && H) buf.h0.set(this.h.subarray(i * H, (i + 1) * H), s * H);
      buf.obs.set(obsRow, (s * (T + 1) + this.step[i]) * size);
      this.#raw.set(obsRow, b * size);
      if (H) this.#hBatch.set(this.h.subarray(i * H, (i + 1) * H), b * H);
    }
    const model = this.model;
    const out = noGrad(() => {
      const x = model.prepareObs(this.#raw, B, this.#x.subarray(0, B * size));
      const h = H ? new Tensor(this.#hBatch.subarray(0, B * H), [B, H]) : undefined;
      return model.forward(x, B, h);
    });
    const logits = out.logits.data, values = out.values.data, A = out.logits.shape[1];
    const nvec = model.actionNvec;
    const version = this.version;
    const rng = new Rng((Math.imul(this.seed, 0x9e3779b1) ^ this.batches++) >>> 0);
    for (let b = 0; b < B; b++) {
      const i = this.#rows[b], s = this.slot[i], t = this.step[i];
      // One draw per action dimension (MultiDiscrete: each over its own slice of the logits), log-probabilities
      // summed; each drawn from softmax by inverse CDF, its log-probability from the stable log-sum-exp.
      let logp = 0;
      for (let d = 0, o = b * A; d < k; o += nvec[d++]) {
        const n = nvec[d];
        let m = -Infinity;
        for (let a = 0; a < n; a++) m = Math.max(m, logits[o + a]);
        let z = 0;
        for (let a = 0; a < n; a++) z += Math.exp(logits[o + a] - m);
        let u = rng.uniform() * z, action = n - 1;
        for (let a = 0; a < n - 1; a++) {
          u -= Math.exp(logits[o + a] - m);
          if (u < 0) {
            action = a;
            break;
          }
        }
        rb.actions[i * k + d] = action;
        buf.actions[(s * T + t) * k + d] = action;
        logp += logits[o + action] - m - Math.log(z);
      }
      const value = model.denormalizeValue(values[b]);
      buf.logp[s * T + t] = logp;
      buf.values[s * (T + 1) + t] = value;
      buf.versions[s * T + t] = version;
      this.step[i] = t + 1;
      if (completing[b] >= 0) {
        buf.values[completing[b] * (T + 1) + T] = value;
        ring.complete(completing[b]);
      }
      if (H) this.h.set(out.h!.data.subarray(b * H, (b + 1) * H), i * H);
    }
    const ints = rb.ints;
    for (const g of served) {
      Atomics.store(ints, groupIndex(g), GROUP_ACTIONS);
      Atomics.notify(ints, groupIndex(g));
    }
    return B;
  }

  /**
   * Forgets envs `[start, start + count)` (their worker crashed and restarts): drops their partial trajectories,
   * zeroes their hidden states, and waits for fresh first observations.
   */
  dropEnvs(start: number, count: number): void {
    const H = this.model.hiddenSize;
    const drop: number[] = [];
    for (let i = start; i < start + count; i++) {
      if (this.slot[i] >= 0) drop.push(this.slot[i]);
      this.slot[i] = -1;
      this.step[i] = 0;
      this.fresh[i] = 1;
      if (H) this.h.fill(0, i * H, (i + 1) * H);
    }
    this.ring.release(drop);
  }
}

/**
 * On-policy rollout storage and collection shared by PPO and A2C: `T` steps of `N` envs stored time-major
 * (`[T, N, ...]`), preallocated once, with everything `computeGae`/`computeNStepReturns` need (rewards, values,
 * terminated/truncated flags, values of the final observations of truncated episodes, bootstrap values).
 *
 * @module
 */

import { Categorical, noGrad, type Tensor } from "../models/mod.ts";
import type { ObsArray, VectorEnv } from "../envs/mod.ts";
import { sampleCategorical, type TrainRng } from "./_training.ts";
import { type ActorCritic, obsTensor } from "./policies.ts";

/** A finished episode seen during collection. */
export interface EpisodeRecord {
  /** Global env step at which it ended. */
  step: number;
  /** Undiscounted return. */
  return: number;
  /** Length in steps. */
  length: number;
}

/** `T x N` steps of on-policy experience. */
export class Rollout {
  readonly numSteps: number;
  readonly numEnvs: number;
  readonly obsShape: readonly number[];
  readonly obsSize: number;
  /** `[T, N, ...obsShape]` observations the actions were taken from (uint8 frames stay uint8). */
  readonly obs: ObsArray;
  /** `[T, N]` actions taken. */
  readonly actions: Int32Array;
  /** `[T, N]` log-probabilities of the actions under the behaviour policy. */
  readonly logprobs: Float32Array;
  /** `[T, N]` rewards. */
  readonly rewards: Float32Array;
  /** `[T, N]` values `V(s_t)` under the behaviour policy. */
  readonly values: Float32Array;
  /** `[T, N]` values of the final observations of truncated episodes. */
  readonly finalValues: Float32Array;
  /** `[T, N]` terminal flags. */
  readonly terminated: Uint8Array;
  /** `[T, N]` truncation flags. */
  readonly truncated: Uint8Array;
  /** `[N]` values of the observations after the last step. */
  readonly nextValues: Float32Array;
  /** `[T, N]` advantages (filled by the learner). */
  readonly advantages: Float32Array;
  /** `[T, N]` value targets (filled by the learner). */
  readonly returns: Float32Array;
  readonly #act: Int32Array;
  readonly #scratch = { buf: new Float32Array(0) };

  constructor(numSteps: number, numEnvs: number, obsShape: readonly number[], uint8Obs: boolean) {
    this.numSteps = numSteps;
    this.numEnvs = numEnvs;
    this.obsShape = obsShape;
    this.obsSize = obsShape.reduce((a, b) => a * b, 1);
    const n = numSteps * numEnvs;
    this.obs = uint8Obs ? new Uint8Array(n * this.obsSize) : new Float32Array(n * this.obsSize);
    this.actions = new Int32Array(n);
    this.logprobs = new Float32Array(n);
    this.rewards = new Float32Array(n);
    this.values = new Float32Array(n);
    this.finalValues = new Float32Array(n);
    this.terminated = new Uint8Array(n);
    this.truncated = new Uint8Array(n);
    this.nextValues = new Float32Array(numEnvs);
    this.advantages = new Float32Array(n);
    this.returns = new Float32Array(n);
    this.#act = new Int32Array(numEnvs);
  }

  /**
   * Fill the rollout by stepping `envs` from their current observations with actions sampled from `net`; finished
   * episodes are appended to `episodes`. Returns the global step after the last step.
   */
  async collect(
    envs: VectorEnv,
    net: ActorCritic,
    rng: TrainRng,
    globalStep: number,
    episodes: EpisodeRecord[],
  ): Promise<number> {
    const N = this.numEnvs, S = this.obsSize, A = net.numActions;
    const current = envs.buffers.observations;
    for (let t = 0; t < this.numSteps; t++) {
      this.obs.set(current, t * N * S);
      const { logits, value } = noGrad(() => net.forward(obsTensor(current, this.obsShape, this.#scratch)));
      this.values.set(value.data, t * N);
      sampleCategorical(logits.data, A, rng, this.#act);
      for (let i = 0; i < N; i++) {
        this.actions[t * N + i] = this.#act[i];
        this.logprobs[t * N + i] = logProbOf(logits.data, i * A, A, this.#act[i]);
      }
      const [, rewards, terminated, truncated, infos] = await envs.step(this.#act);
      globalStep += N;
      this.rewards.set(rewards, t * N);
      this.terminated.set(terminated, t * N);
      this.truncated.set(truncated, t * N);
      let anyTruncated = false;
      for (let i = 0; i < N; i++) {
        if (truncated[i] && !terminated[i]) anyTruncated = true;
        if (terminated[i] || truncated[i]) {
          episodes.push({ step: globalStep, return: infos.episodeReturn[i], length: infos.episodeLength[i] });
        }
      }
      if (anyTruncated) {
        // Time-limit cuts bootstrap from the value of the last observation of the cut episode.
        const v = noGrad(() => net.value(obsTensor(infos.finalObservation, this.obsShape, this.#scratch)));
        for (let i = 0; i < N; i++) this.finalValues[t * N + i] = truncated[i] ? v.data[i] : 0;
      }
    }
    this.nextValues.set(noGrad(() => net.value(obsTensor(current, this.obsShape, this.#scratch))).data);
    return globalStep;
  }

  /** Copy rows `indices` of the observations into `out` as floats (`[indices.length, ...obsShape]`). */
  gatherObs(indices: Int32Array, out: Float32Array): void {
    const S = this.obsSize;
    for (let j = 0; j < indices.length; j++) {
      const k = indices[j] * S;
      if (this.obs instanceof Float32Array) out.set(this.obs.subarray(k, k + S), j * S);
      else for (let s = 0; s < S; s++) out[j * S + s] = this.obs[k + s];
    }
  }
}

/** `log softmax(logits)[action]` for one row starting at `base`. */
export function logProbOf(logits: Float32Array, base: number, n: number, action: number): number {
  let max = -Infinity;
  for (let k = 0; k < n; k++) if (logits[base + k] > max) max = logits[base + k];
  let sum = 0;
  for (let k = 0; k < n; k++) sum += Math.exp(logits[base + k] - max);
  return logits[base + action] - max - Math.log(sum);
}

/** Log-probabilities and entropies of `actions` under `logits` as differentiable tensors. */
export function policyTerms(logits: Tensor, actions: Tensor): { logprob: Tensor; entropy: Tensor } {
  const dist = new Categorical(logits);
  return { logprob: dist.logProb(actions), entropy: dist.entropy() };
}

/** `1 − Var(y − ŷ) / Var(y)` (NaN when `y` is constant), as CleanRL logs it. */
export function explainedVariance(pred: Float32Array, target: Float32Array): number {
  const n = target.length;
  let my = 0, md = 0;
  for (let i = 0; i < n; i++) {
    my += target[i];
    md += target[i] - pred[i];
  }
  my /= n;
  md /= n;
  let vy = 0, vd = 0;
  for (let i = 0; i < n; i++) {
    vy += (target[i] - my) ** 2;
    const d = target[i] - pred[i] - md;
    vd += d * d;
  }
  return vy === 0 ? NaN : 1 - vd / vy;
}

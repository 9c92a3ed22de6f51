/**
 * Return and advantage estimators over `[T, N]` rollouts (time-major, `N` envs): GAE (Schulman et al. 2016) and
 * n-step (A2C) returns. Both respect Gymnasium's split of `done`:
 *
 * - `terminated[t, i]`: the episode ended in a terminal state → no bootstrap after step `t`.
 * - `truncated[t, i]`: the episode was cut (time limit) → bootstrap from `finalValues[t, i]`, the value of the last
 *   observation of the cut episode (vector envs give it as `infos.finalObservation`), not from `values[t + 1, i]`,
 *   which belongs to the next episode (same-step autoreset).
 * - otherwise the next value is `values[t + 1, i]`, or `nextValues[i]` at `t = T - 1`.
 *
 * Both functions write into caller-owned buffers and allocate nothing, so a learner can call them every update.
 *
 * @module
 */

/** One rollout of `T` steps of `N` envs; every `[T, N]` array is flat, row `t` holds the `N` envs of step `t`. */
export interface RolloutReturnsInput {
  /** `[T, N]` reward received after the action of step `t`. */
  rewards: Float32Array;
  /** `[T, N]` value estimate `V(s_t)` of the observation the action of step `t` was taken from. */
  values: Float32Array;
  /** `[T, N]` 1 where the step ended the episode in a terminal state. */
  terminated: Uint8Array;
  /** `[T, N]` 1 where the step cut the episode short (time limit); ignored where `terminated` is 1. */
  truncated: Uint8Array;
  /** `[T, N]` value of the final observation where `truncated` is 1 (other entries are not read); omit to treat truncation like termination (CleanRL's simplification). */
  finalValues?: Float32Array;
  /** `[N]` value of the observation after the last step (the bootstrap for unfinished episodes). */
  nextValues: Float32Array;
}

/** Caller-owned output buffers, each `[T, N]`. */
export interface ReturnsOutput {
  /** Advantages `A_t` (GAE) or `R_t − V(s_t)` (n-step). */
  advantages: Float32Array;
  /** Value targets `R_t = A_t + V(s_t)`. */
  returns: Float32Array;
}

/** Options of `computeGae`. */
export interface GaeOptions {
  /** Discount factor γ. */
  gamma: number;
  /** GAE λ (1 gives Monte-Carlo-style n-step advantages, 0 one-step TD errors). */
  lambda: number;
}

function checkSizes(input: RolloutReturnsInput, out: ReturnsOutput, fn: string): [number, number] {
  const n = input.nextValues.length;
  const size = input.rewards.length;
  if (n === 0 || size % n !== 0) {
    throw new RangeError(`${fn}: rewards has ${size} entries, not a multiple of nextValues' ${n} envs`);
  }
  const arrays: [string, { length: number } | undefined][] = [
    ["values", input.values],
    ["terminated", input.terminated],
    ["truncated", input.truncated],
    ["finalValues", input.finalValues],
    ["advantages", out.advantages],
    ["returns", out.returns],
  ];
  for (const [name, a] of arrays) {
    if (a !== undefined && a.length !== size) {
      throw new RangeError(`${fn}: ${name} has ${a.length} entries, expected ${size} (T=${size / n} x N=${n})`);
    }
  }
  return [size / n, n];
}

/**
 * Generalized advantage estimation, backwards over time:
 * `δ_t = r_t + γ V_next − V(s_t)`, `A_t = δ_t + γ λ (1 − done_t) A_{t+1}`, `R_t = A_t + V(s_t)`, where `V_next` and
 * `done_t` follow the terminated/truncated rules of this module.
 *
 * @example
 * ```ts
 * import { computeGae } from "./returns.ts";
 * // One env, two steps, the second terminal.
 * const out = { advantages: new Float32Array(2), returns: new Float32Array(2) };
 * computeGae({
 *   rewards: Float32Array.of(1, 1),
 *   values: Float32Array.of(0.5, 0.5),
 *   terminated: Uint8Array.of(0, 1),
 *   truncated: Uint8Array.of(0, 0),
 *   nextValues: Float32Array.of(9), // not used: the episode terminated
 * }, out, { gamma: 0.9, lambda: 0.8 });
 * console.log(out.returns); // [1.9, 1] (up to float32 rounding)
 * ```
 */
export function computeGae(input: RolloutReturnsInput, out: ReturnsOutput, options: GaeOptions): void {
  const [T, N] = checkSizes(input, out, "computeGae");
  const { rewards, values, terminated, truncated, finalValues, nextValues } = input;
  const { advantages, returns } = out;
  const { gamma, lambda } = options;
  for (let i = 0; i < N; i++) {
    let nextAdv = 0;
    let nextValue = nextValues[i];
    for (let t = T - 1; t >= 0; t--) {
      const k = t * N + i;
      let delta: number;
      if (terminated[k]) {
        delta = rewards[k] - values[k];
        nextAdv = delta;
      } else if (truncated[k]) {
        delta = rewards[k] + (finalValues ? gamma * finalValues[k] : 0) - values[k];
        nextAdv = delta;
      } else {
        delta = rewards[k] + gamma * nextValue - values[k];
        nextAdv = delta + gamma * lambda * nextAdv;
      }
      advantages[k] = nextAdv;
      returns[k] = nextAdv + values[k];
      nextValue = values[k];
    }
  }
}

/** Options of `computeNStepReturns`. */
export interface NStepOptions {
  /** Discount factor γ. */
  gamma: number;
}

/**
 * n-step discounted returns (A2C): `R_t = r_t + γ R_{t+1}`, restarted at episode ends (terminated: `R_t = r_t`;
 * truncated: `R_t = r_t + γ V(final)`) and bootstrapped with `nextValues` after the last step. Advantages are
 * `R_t − V(s_t)`. Equal to `computeGae` with λ = 1.
 *
 * @example
 * ```ts
 * import { computeNStepReturns } from "./returns.ts";
 * const out = { advantages: new Float32Array(2), returns: new Float32Array(2) };
 * computeNStepReturns({
 *   rewards: Float32Array.of(1, 1),
 *   values: Float32Array.of(0, 0),
 *   terminated: Uint8Array.of(0, 0),
 *   truncated: Uint8Array.of(0, 0),
 *   nextValues: Float32Array.of(10),
 * }, out, { gamma: 0.5 });
 * console.log(out.returns); // [4, 6]: 1 + 0.5 * (1 + 0.5 * 10)
 * ```
 */
export function computeNStepReturns(input: RolloutReturnsInput, out: ReturnsOutput, options: NStepOptions): void {
  const [T, N] = checkSizes(input, out, "computeNStepReturns");
  const { rewards, values, terminated, truncated, finalValues, nextValues } = input;
  const { advantages, returns } = out;
  const gamma = options.gamma;
  for (let i = 0; i < N; i++) {
    let ret = nextValues[i];
    for (let t = T - 1; t >= 0; t--) {
      const k = t * N + i;
      if (terminated[k]) ret = rewards[k];
      else if (truncated[k]) ret = rewards[k] + (finalValues ? gamma * finalValues[k] : 0);
      else ret = rewards[k] + gamma * ret;
      returns[k] = ret;
      advantages[k] = ret - values[k];
    }
  }
}

/**
 * Scales to mean 0, std 1 in place (unbiased std, + 1e-8), like CleanRL's `(adv - adv.mean()) / (adv.std() + 1e-8)`.
 *
 * @example
 * ```ts
 * import { normalizeInPlace } from "./returns.ts";
 * const adv = Float32Array.of(1, 2, 3);
 * normalizeInPlace(adv);
 * console.assert(Math.abs(adv[0] + 1) < 1e-6 && adv[1] === 0);
 * ```
 */
export function normalizeInPlace(a: Float32Array): void {
  const n = a.length;
  let m = 0;
  for (let i = 0; i < n; i++) m += a[i];
  m /= n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (a[i] - m) ** 2;
  const std = Math.sqrt(v / Math.max(1, n - 1));
  for (let i = 0; i < n; i++) a[i] = (a[i] - m) / (std + 1e-8);
}

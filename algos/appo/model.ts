/**
 * The APPO actor-critic: an encoder (an MLP for vector observations, Sample Factory's Doom conv net for images), an
 * optional GRU core and policy/value heads, plus the input and return normalizers the learner updates and inference
 * reads. Both roles use the same object on the main thread, so "publishing" weights is bumping a version counter.
 *
 * @module
 */

import {
  batchMoments,
  Categorical,
  Conv2d,
  ELU,
  Flatten,
  GRU,
  imagesToFloat,
  type Layer,
  Linear,
  Module,
  permute,
  ReLU,
  Rng,
  Sequential,
  standardize,
  Tanh,
  Tensor,
  toBackend,
} from "../../models/mod.ts";
import { MultiCategorical } from "./multi_categorical.ts";

/** Options of `AppoModel`. */
export interface AppoModelOptions {
  /** Observation shape: `[n]` for vectors, `[C, H, W]` or `[H, W, C]` (C ≤ 4) for images. */
  obsShape: readonly number[];
  /** Observation dtype; uint8 observations are scaled by 1/255. */
  obsDtype: "uint8" | "float32";
  /** Number of discrete actions; for a MultiDiscrete space, the logits of all dimensions (the sum of `actionNvec`). */
  numActions: number;
  /**
   * Choices per dimension of a MultiDiscrete action space: the policy head's `numActions` logits are then split into
   * one categorical per dimension (Sample Factory's multi-categorical head). Unset for Discrete actions.
   */
  actionNvec?: number[];
  /** Encoder: "mlp" for vectors, "doom" (conv 32@8x8/4, 64@4x4/2, 128@3x3/2, fc 512) for images (the default). */
  encoder?: "mlp" | "doom";
  /** Hidden layer sizes of the MLP encoder (default [512, 512], Sample Factory's). */
  mlpLayers?: number[];
  /** Activation of the encoder (default "elu"). */
  nonlinearity?: "elu" | "relu" | "tanh";
  /**
   * Orthogonal initialization of the conv and linear layers, biases 0 (the GRU keeps its own uniform init):
   * `"sample_factory"` (default) uses gain 1 everywhere, Sample Factory's `policy_init_gain`; `"cleanrl"` uses √2 (5/3
   * for tanh) in the encoder, 0.01 on the policy head and 1 on the value head. With one optimizer step per batch, as
   * Sample Factory trains, a 0.01 policy head starves the encoder of policy gradient: measured on
   * `doom_health_gathering_supreme`, the policy's entropy barely moved from uniform in 750k frames.
   */
  initialization?: "sample_factory" | "cleanrl";
  /** GRU core size; 0 for none (default 0). */
  rnnSize?: number;
  /**
   * Running mean/std normalization of the encoder's input, per value (per pixel and channel for images, after scaling
   * to [0, 1]), clipped to ±5: Sample Factory's `normalize_input`.
   */
  normalizeInput?: boolean;
  /** The value head predicts returns normalized by a running mean/std. */
  normalizeReturns?: boolean;
  /** Init seed. */
  seed?: number;
}

/**
 * Running mean and variance over batches (Chan et al.), in float64. Code that writes `mean`/`var` directly (loading
 * statistics) sets `count` too: `invStd` is cached by it.
 */
export class AppoRunningMeanStd {
  readonly mean: Float64Array;
  readonly var: Float64Array;
  count = 1e-4;
  #inv: Float64Array;
  #invCount = NaN;
  constructor(size: number) {
    this.mean = new Float64Array(size);
    this.var = new Float64Array(size).fill(1);
    this.#inv = new Float64Array(size);
  }

  /** `1 / sqrt(var + 1e-8)` per value, recomputed only when `count` changed (inference normalizes every batch). */
  invStd(): Float64Array {
    if (this.#invCount !== this.count) {
      const v = this.var, inv = this.#inv;
      for (let i = 0; i < v.length; i++) inv[i] = 1 / Math.sqrt(v[i] + 1e-8);
      this.#invCount = this.count;
    }
    return this.#inv;
  }

  /** Adds `n` rows of `x` (`[n, size]`, row-major), only rows where `mask` (if given) is nonzero. */
  update(x: Float32Array, n: number, mask?: Uint8Array): void {
    const size = this.mean.length;
    const { mean: bm, m2: bv, count: m } = batchMoments(x, n, size, mask);
    if (m === 0) return;
    const total = this.count + m;
    for (let i = 0; i < size; i++) {
      const delta = bm[i] - this.mean[i];
      const m2 = this.var[i] * this.count + bv[i] + (delta * delta * this.count * m) / total;
      this.mean[i] += (delta * m) / total;
      this.var[i] = m2 / total;
    }
    this.count = total;
  }
}

/** Heads' output for a batch. */
export interface AppoModelOutput {
  /** `[M, numActions]` unnormalized log-probabilities (MultiDiscrete: the dimensions' logits side by side). */
  logits: Tensor;
  /** `[M]` values, in normalized units when `normalizeReturns`. */
  values: Tensor;
  /** Final hidden state `[B, H]` of the core (inference), if any. */
  h?: Tensor;
}

function activation(kind: "elu" | "relu" | "tanh"): Layer {
  return kind === "elu" ? new ELU() : kind === "relu" ? new ReLU() : new Tanh();
}

/**
 * Encoder + optional GRU + policy and value heads.
 *
 * @example
 * ```ts
 * import { AppoModel } from "./model.ts";
 * const model = new AppoModel({ obsShape: [4], obsDtype: "float32", numActions: 2, mlpLayers: [64, 64] });
 * const x = model.prepareObs(new Float32Array(8), 2); // two observations
 * const { logits, values } = model.forward(x, 2);
 * console.assert(logits.shape[1] === 2 && values.shape[0] === 2);
 * // MultiDiscrete([3, 2]): one head of 3 + 2 logits, one categorical per dimension.
 * const md = new AppoModel({ obsShape: [4], obsDtype: "float32", numActions: 5, actionNvec: [3, 2], mlpLayers: [8] });
 * const actions = md.distribution(md.forward(x, 2).logits).mode(); // [2, 2]: a column per dimension
 * ```
 */
export class AppoModel extends Module {
  readonly options: AppoModelOptions;
  readonly encoder: Sequential;
  readonly core: GRU | null;
  readonly policyHead: Linear;
  readonly valueHead: Linear;
  /** Input normalizer over the encoder's input layout (with `normalizeInput`). */
  readonly obsRms: AppoRunningMeanStd | null;
  /** Return normalizer (with `normalizeReturns`). */
  readonly retRms: AppoRunningMeanStd | null;
  /** Choices per action dimension: `[numActions]` for Discrete actions, the MultiDiscrete `nvec` otherwise. */
  readonly actionNvec: readonly number[];
  /** Recurrent state size (0 without a core). */
  readonly hiddenSize: number;
  /** Values per observation. */
  readonly obsSize: number;
  /** Shape the encoder sees for one observation (`[C, H, W]` for images). */
  readonly inputShape: number[];
  readonly #hwc: boolean;

  constructor(options: AppoModelOptions) {
    super();
    this.options = options;
    this.actionNvec = options.actionNvec ? [...options.actionNvec] : [options.numActions];
    if (this.actionNvec.reduce((a, b) => a + b, 0) !== options.numActions || this.actionNvec.some((n) => n < 1)) {
      throw new RangeError(
        `AppoModel: actionNvec [${options.actionNvec}] must be positive and sum to numActions ${options.numActions}`,
      );
    }
    const rng = new Rng(options.seed ?? 0);
    const shape = [...options.obsShape];
    this.obsSize = shape.reduce((a, b) => a * b, 1);
    const kind = options.encoder ?? (shape.length === 3 ? "doom" : "mlp");
    const act = options.nonlinearity ?? "elu";
    const cleanrl = options.initialization === "cleanrl";
    const gain = !cleanrl ? 1 : act === "tanh" ? 5 / 3 : Math.SQRT2;
    const layers: Layer[] = [];
    let features: number;
    if (kind === "doom") {
      if (shape.length !== 3) {
        throw new Error(`AppoModel: the doom encoder needs [C, H, W] observations, got [${shape}]`);
      }
      this.#hwc = shape[2] <= 4 && shape[0] > 4;
      const [c, h, w] = this.#hwc ? [shape[2], shape[0], shape[1]] : shape;
      this.inputShape = [c, h, w];
      const convs: [number, number, number][] = [[32, 8, 4], [64, 4, 2], [128, 3, 2]];
      let inC = c, oh = h, ow = w;
      for (const [out, k, s] of convs) {
        layers.push(new Conv2d(inC, out, k, { stride: s, rng, orthogonalGain: gain }), activation(act));
        inC = out;
        oh = Math.floor((oh - k) / s) + 1;
        ow = Math.floor((ow - k) / s) + 1;
      }
      if (oh < 1 || ow < 1) throw new Error(`AppoModel: image [${shape}] is too small for the doom encoder`);
      layers.push(new Flatten(), new Linear(inC * oh * ow, 512, { rng, orthogonalGain: gain }), activation(act));
      features = 512;
    } else {
      this.#hwc = false;
      this.inputShape = [this.obsSize];
      let inF = this.obsSize;
      for (const n of options.mlpLayers ?? [512, 512]) {
        layers.push(new Linear(inF, n, { rng, orthogonalGain: gain }), activation(act));
        inF = n;
      }
      features = inF;
    }
    this.encoder = this.registerModule("encoder", new Sequential(layers));
    this.hiddenSize = options.rnnSize ?? 0;
    this.core = this.hiddenSize > 0 ? this.registerModule("core", new GRU(features, this.hiddenSize, { rng })) : null;
    const coreOut = this.hiddenSize > 0 ? this.hiddenSize : features;
    this.policyHead = this.registerModule(
      "policy",
      new Linear(coreOut, options.numActions, { rng, orthogonalGain: cleanrl ? 0.01 : 1 }),
    );
    this.valueHead = this.registerModule("value", new Linear(coreOut, 1, { rng, orthogonalGain: 1 }));
    this.obsRms = options.normalizeInput ? new AppoRunningMeanStd(this.obsSize) : null;
    this.retRms = options.normalizeReturns ? new AppoRunningMeanStd(1) : null;
  }

  /**
   * Turns `rows` raw observations (row-major, any offset via `subarray`) into the encoder's float input: uint8 →
   * [0, 1] (HWC images transposed to CHW), then normalized by the running mean/std when enabled.
   */
  prepareObs(raw: Uint8Array | Float32Array, rows: number, out?: Float32Array): Tensor {
    const x = this.scaleObs(raw, rows, out);
    this.normalizeObs(x, rows);
    return new Tensor(x, [rows, ...this.inputShape]);
  }

  /** The first half of `prepareObs`: scaling and layout only (what the input statistics are gathered over). */
  scaleObs(raw: Uint8Array | Float32Array, rows: number, out?: Float32Array): Float32Array {
    const size = this.obsSize;
    const x = out ?? new Float32Array(rows * size);
    if (raw instanceof Uint8Array) {
      const [c, h, w] = this.inputShape.length === 3 ? this.inputShape : [1, 1, size];
      imagesToFloat(raw, rows, { channels: c, height: h, width: w, channelsLast: this.#hwc }, x);
    } else x.set(raw.subarray(0, rows * size));
    return x;
  }

  /** The second half of `prepareObs`: `(x - mean) / std` clipped to ±5, in place (nothing without `obsRms`). */
  normalizeObs(x: Float32Array, rows: number): void {
    if (!this.obsRms) return;
    standardize(x, rows, this.obsRms.mean, this.obsRms.invStd(), 5);
  }

  /** Encoder features `[M, F]`. */
  encode(x: Tensor): Tensor {
    return this.encoder.forward(x);
  }

  /**
   * One step for a batch of `B` envs (inference): `h` is `[B, H]` (already reset where episodes began) when the
   * model has a core. Run it under `noGrad`.
   */
  forward(x: Tensor, batch: number, h?: Tensor): AppoModelOutput {
    let f = this.encode(x);
    let hNext: Tensor | undefined;
    if (this.core) {
      if (!h) throw new Error("AppoModel: a model with a GRU core needs the hidden state h");
      hNext = this.core.cell.forward(f, h);
      f = hNext;
    }
    return { logits: this.policyHead.forward(f), values: this.valueHead.forward(f).reshape([batch]), h: hNext };
  }

  /**
   * Trajectories for training: `x` holds `k` trajectories of `L` steps each, trajectory-major (`[k * L, ...]`);
   * `h0` `[k, H]` and `masks` `[L, k]` (0 before a step that begins an episode) drive the core through time.
   * Returns heads' outputs in the same trajectory-major order.
   */
  forwardSequence(x: Tensor, k: number, L: number, h0?: Tensor, masks?: Tensor): AppoModelOutput {
    let f = this.encode(x);
    if (this.core) {
      if (!h0) throw new Error("AppoModel: a model with a GRU core needs h0");
      const F = f.shape[1];
      const seq = permute(f.reshape([k, L, F]), [1, 0, 2]); // [L, k, F]
      const { output } = this.core.forward(seq, h0, { masks });
      f = permute(output, [1, 0, 2]).reshape([k * L, this.hiddenSize]);
    }
    return { logits: this.policyHead.forward(f), values: this.valueHead.forward(f).reshape([k * L]) };
  }

  /** The action distribution of policy logits: a `Categorical`, or a `MultiCategorical` for MultiDiscrete actions. */
  distribution(logits: Tensor): Categorical | MultiCategorical {
    return this.actionNvec.length > 1 ? new MultiCategorical(logits, this.actionNvec) : new Categorical(logits);
  }

  /** Normalized value → return units. */
  denormalizeValue(v: number): number {
    const r = this.retRms;
    return r ? v * Math.sqrt(r.var[0] + 1e-8) + r.mean[0] : v;
  }

  /** Return units → normalized value. */
  normalizeValue(v: number): number {
    const r = this.retRms;
    return r ? (v - r.mean[0]) / Math.sqrt(r.var[0] + 1e-8) : v;
  }
}

/** Int32 words before the float64 statistics (64 bytes: the seqlock word on its own cache line). */
const WEIGHTS_HEADER = 16;

function statsLength(model: AppoModel): number {
  return 2 * (model.obsRms ? model.obsSize : 0) + 1 + 3;
}

/**
 * A shared buffer holding the model's parameters and normalizer statistics, for a learner on another thread to
 * publish weights that inference pulls. Layout: a seqlock word (odd while a write is in progress, `2 * version`
 * after), float64 statistics, then the float32 parameters in `parameters()` order.
 *
 * @example
 * ```ts
 * import { AppoModel, allocateWeights, publishWeights, pullWeights } from "./model.ts";
 * const learnerSide = new AppoModel({ obsShape: [4], obsDtype: "float32", numActions: 2, mlpLayers: [8] });
 * const inferenceSide = new AppoModel({ obsShape: [4], obsDtype: "float32", numActions: 2, mlpLayers: [8], seed: 1 });
 * const weights = allocateWeights(learnerSide);
 * publishWeights(learnerSide, weights, 3);
 * console.assert(pullWeights(inferenceSide, weights, -1) === 3);
 * ```
 */
export function allocateWeights(model: AppoModel): SharedArrayBuffer {
  let floats = 0;
  for (const p of model.parameters()) floats += p.size;
  return new SharedArrayBuffer(4 * WEIGHTS_HEADER + 8 * statsLength(model) + 4 * floats);
}

function weightViews(model: AppoModel, sab: SharedArrayBuffer) {
  const n = statsLength(model);
  return {
    seq: new Int32Array(sab, 0, WEIGHTS_HEADER),
    stats: new Float64Array(sab, 4 * WEIGHTS_HEADER, n),
    params: new Float32Array(sab, 4 * WEIGHTS_HEADER + 8 * n),
  };
}

/** Writes the model's parameters and statistics into `sab` as policy `version`. */
export function publishWeights(model: AppoModel, sab: SharedArrayBuffer, version: number): void {
  const { seq, stats, params } = weightViews(model, sab);
  Atomics.store(seq, 0, 2 * version + 1);
  const ps = model.parameters();
  toBackend(ps, "cpu"); // one readback for all of them when a device backend trains (nothing on the CPU)
  let at = 0;
  for (const p of ps) {
    params.set(p.raw, at);
    at += p.size;
  }
  let k = 0;
  if (model.obsRms) {
    stats.set(model.obsRms.mean, k);
    stats.set(model.obsRms.var, k + model.obsSize);
    k += 2 * model.obsSize;
  }
  stats[k] = model.obsRms?.count ?? 0;
  const r = model.retRms;
  stats[k + 1] = r?.mean[0] ?? 0;
  stats[k + 2] = r?.var[0] ?? 1;
  stats[k + 3] = r?.count ?? 0;
  Atomics.store(seq, 0, 2 * version);
}

/**
 * Copies the published weights into `model` if their version differs from `have`; returns the version now held
 * (`have` when nothing new was published or a write was in progress).
 */
export function pullWeights(model: AppoModel, sab: SharedArrayBuffer, have: number): number {
  const { seq, stats, params } = weightViews(model, sab);
  const s0 = Atomics.load(seq, 0);
  if (s0 % 2 === 1 || s0 / 2 === have) return have;
  const tmp = params.slice();
  const st = stats.slice();
  if (Atomics.load(seq, 0) !== s0) return have; // torn: try again next time
  let at = 0;
  for (const p of model.parameters()) {
    p.data.set(tmp.subarray(at, at + p.size));
    at += p.size;
  }
  let k = 0;
  if (model.obsRms) {
    model.obsRms.mean.set(st.subarray(0, model.obsSize));
    model.obsRms.var.set(st.subarray(model.obsSize, 2 * model.obsSize));
    k = 2 * model.obsSize;
    model.obsRms.count = st[k];
  }
  if (model.retRms) {
    model.retRms.mean[0] = st[k + 1];
    model.retRms.var[0] = st[k + 2];
    model.retRms.count = st[k + 3];
  }
  return s0 / 2;
}

/**
 * Neural-network modules: a `Module` base with explicit parameter/child registration (PyTorch-style dotted names),
 * and the layers the RL algorithms need: Linear, Conv2d, Sequential, Flatten, activations, GRU and LSTM (cells and
 * sequences with episode-reset masks).
 *
 * @module
 */

import { conv2d, linear, slice } from "./autograd.ts";
import type { Activation, Conv2dOptions } from "./autograd.ts";
import { constantInit, orthogonalInit, pytorchDefaultInit, uniformInit } from "./init.ts";
import { add, elu, flatten, mul, relu, sigmoid, stack, sub, tanh } from "./ops.ts";
import { Rng } from "./rng.ts";
import { releaseBuffer, takeBuffer } from "./pool.ts";
import { backend, gradBuffer, gradTarget, record, Tensor, zeroGradLazily, zeros } from "./tensor.ts";

let globalRng = new Rng(0);

/** Reseed the generator used by modules constructed without an explicit `rng`. */
export function manualSeed(seed: number): void {
  globalRng = new Rng(seed);
}

/** Base class: holds named parameters and child modules, in registration order. */
export class Module {
  /** Whether the module is in training mode (affects nothing built-in yet; kept for user layers). */
  training = true;
  #params = new Map<string, Tensor>();
  #children = new Map<string, Module>();

  /** Register a trainable parameter (sets `requiresGrad`). */
  protected registerParameter(name: string, t: Tensor): Tensor {
    t.requiresGrad = true;
    this.#params.set(name, t);
    return t;
  }

  /** Register a child module whose parameters appear as `name.<param>`. */
  protected registerModule<M extends Module>(name: string, m: M): M {
    this.#children.set(name, m);
    return m;
  }

  /** `[name, parameter]` pairs, depth first, with dotted names like PyTorch's `named_parameters()`. */
  namedParameters(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, p] of this.#params) out.push([prefix + n, p]);
    for (const [n, m] of this.#children) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
  }

  /** All parameters. */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Zero every parameter's gradient, keeping the buffers (lazily: see `zeroGradLazily`). */
  zeroGrad(): void {
    for (const p of this.parameters()) zeroGradLazily(p);
  }

  /** Set training mode on this module and its children. */
  train(mode = true): this {
    this.training = mode;
    for (const m of this.#children.values()) m.train(mode);
    return this;
  }

  /** Set evaluation mode. */
  eval(): this {
    return this.train(false);
  }

  /**
   * Copy parameter values from a module with the same structure (DQN target network sync), or with `tau` blend
   * them in: `p = tau · q + (1 − tau) · p` (Polyak averaging).
   */
  copyFrom(other: Module, options: { tau?: number } = {}): void {
    const src = new Map(other.namedParameters());
    const tau = options.tau ?? 1;
    for (const [name, p] of this.namedParameters()) {
      const q = src.get(name);
      if (!q || q.size !== p.size) throw new Error(`copyFrom: no parameter '${name}' of shape [${p.shape}] in source`);
      const pd = p.data, qd = q.data; // host update: each access synchronizes with a device backend
      if (tau === 1) pd.set(qd);
      else for (let i = 0; i < pd.length; i++) pd[i] = tau * qd[i] + (1 - tau) * pd[i];
    }
  }
}

/** A module mapping one tensor to one tensor (usable in `Sequential`). */
export interface Layer extends Module {
  forward(x: Tensor): Tensor;
}

/** Weight/bias init options shared by `Linear` and `Conv2d`. */
export interface InitOptions {
  /** Generator for init (default: the global one, see `manualSeed`). */
  rng?: Rng;
  /** Use orthogonal init with this gain (e.g. `Math.SQRT2`) instead of PyTorch's default. */
  orthogonalGain?: number;
  /** Constant bias (default: 0 with orthogonal init, PyTorch's uniform otherwise). */
  biasInit?: number;
  /** Include a bias (default true). */
  bias?: boolean;
}

function initWeightBias(weight: Tensor, bias: Tensor | null, options: InitOptions): void {
  const rng = options.rng ?? globalRng;
  if (options.orthogonalGain !== undefined) orthogonalInit(weight, { gain: options.orthogonalGain, rng });
  else pytorchDefaultInit(weight, rng);
  if (!bias) return;
  if (options.biasInit !== undefined || options.orthogonalGain !== undefined) constantInit(bias, options.biasInit ?? 0);
  else {
    const bound = 1 / Math.sqrt(weight.size / weight.shape[0]);
    uniformInit(bias, -bound, bound, rng);
  }
}

/**
 * Fully connected layer: `y = x W^T + b`, `W` is `[out, in]`.
 *
 * @example
 * ```ts
 * import { Linear, Rng, zeros } from "./mod.ts";
 * const fc = new Linear(4, 2, { rng: new Rng(1), orthogonalGain: Math.SQRT2 });
 * const y = fc.forward(zeros([8, 4])); // [8, 2]
 * ```
 */
export class Linear extends Module implements Layer {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, options: InitOptions = {}) {
    super();
    this.weight = this.registerParameter("weight", zeros([outFeatures, inFeatures]));
    this.bias = options.bias === false ? null : this.registerParameter("bias", zeros([outFeatures]));
    initWeightBias(this.weight, this.bias, options);
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
  /** `activation(forward(x))` in one op (used by `Sequential`). */
  forwardActivated(x: Tensor, activation: Activation): Tensor {
    return linear(x, this.weight, this.bias, { activation });
  }
}

/** Options for `Conv2d`. */
export interface Conv2dLayerOptions extends InitOptions, Conv2dOptions {}

/** 2-D convolution layer over NCHW input; weight `[out, in, k, k]`. */
export class Conv2d extends Module implements Layer {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly #conv: Conv2dOptions;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: number | [number, number],
    options: Conv2dLayerOptions = {},
  ) {
    super();
    const [kh, kw] = typeof kernelSize === "number" ? [kernelSize, kernelSize] : kernelSize;
    this.weight = this.registerParameter("weight", zeros([outChannels, inChannels, kh, kw]));
    this.bias = options.bias === false ? null : this.registerParameter("bias", zeros([outChannels]));
    this.#conv = { stride: options.stride ?? 1, padding: options.padding ?? 0 };
    initWeightBias(this.weight, this.bias, options);
  }
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, this.#conv);
  }
  /** `activation(forward(x))` in one op (used by `Sequential`). */
  forwardActivated(x: Tensor, activation: Activation): Tensor {
    return conv2d(x, this.weight, this.bias, { ...this.#conv, activation });
  }
}

/** Chain of layers; children are named `0`, `1`, … like PyTorch. */
export class Sequential extends Module implements Layer {
  readonly layers: readonly Layer[];
  constructor(layers: Layer[]) {
    super();
    this.layers = layers;
    layers.forEach((l, i) => this.registerModule(String(i), l));
  }
  /** Runs the layers in order; a Linear/Conv2d followed by ReLU/ELU/Tanh runs as one fused op (same result). */
  forward(x: Tensor): Tensor {
    let y = x;
    const layers = this.layers;
    for (let i = 0; i < layers.length; i++) {
      const l = layers[i];
      const act = i + 1 < layers.length ? fusableActivation(layers[i + 1]) : null;
      if (act && (l.constructor === Linear || l.constructor === Conv2d)) {
        y = (l as Linear | Conv2d).forwardActivated(y, act);
        i++;
      } else y = l.forward(y);
    }
    return y;
  }
}

/** The activation a built-in activation module computes (exact classes only: subclasses may override forward). */
function fusableActivation(m: Layer): Activation | null {
  if (m.constructor === ReLU) return { op: "relu" };
  if (m.constructor === Tanh) return { op: "tanh" };
  if (m.constructor === ELU) return { op: "elu", alpha: (m as ELU).alpha };
  return null;
}

/** `[N, ...] → [N, prod(...)]`. */
export class Flatten extends Module implements Layer {
  forward(x: Tensor): Tensor {
    return flatten(x, 1);
  }
}

/** ReLU activation. */
export class ReLU extends Module implements Layer {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

/** ELU activation. */
export class ELU extends Module implements Layer {
  constructor(readonly alpha = 1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return elu(x, this.alpha);
  }
}

/** Tanh activation. */
export class Tanh extends Module implements Layer {
  forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

/** Options for recurrent layers. */
export interface RecurrentOptions {
  /** Generator for init (default: global). PyTorch init: every weight and bias U(±1/√hidden). */
  rng?: Rng;
}

function initRecurrent(params: Tensor[], hidden: number, rng: Rng): void {
  const k = 1 / Math.sqrt(hidden);
  for (const p of params) uniformInit(p, -k, k, rng);
}

/** Multiply the rows of `h` (`[B, H]`) by a `[B]` mask of 0/1 (0 = episode boundary: reset state). */
function maskRows(h: Tensor, mask: Tensor | undefined): Tensor {
  return mask ? mul(h, mask.reshape([mask.size, 1])) : h;
}

/** GRU cell with PyTorch's gate layout (r, z, n) and parameter names. */
export class GRUCell extends Module {
  readonly weight_ih: Tensor;
  readonly weight_hh: Tensor;
  readonly bias_ih: Tensor;
  readonly bias_hh: Tensor;
  constructor(readonly inputSize: number, readonly hiddenSize: number, options: RecurrentOptions = {}) {
    super();
    const H = hiddenSize;
    this.weight_ih = this.registerParameter("weight_ih", zeros([3 * H, inputSize]));
    this.weight_hh = this.registerParameter("weight_hh", zeros([3 * H, H]));
    this.bias_ih = this.registerParameter("bias_ih", zeros([3 * H]));
    this.bias_hh = this.registerParameter("bias_hh", zeros([3 * H]));
    initRecurrent(this.parameters(), H, options.rng ?? globalRng);
  }

  /** One step given precomputed input projections `gi = x W_ih^T + b_ih` (`[B, 3H]`). */
  stepProjected(gi: Tensor, h: Tensor): Tensor {
    const H = this.hiddenSize;
    const gh = linear(h, this.weight_hh, this.bias_hh);
    const r = sigmoid(add(slice(gi, 1, 0, H), slice(gh, 1, 0, H)));
    const z = sigmoid(add(slice(gi, 1, H, 2 * H), slice(gh, 1, H, 2 * H)));
    const n = tanh(add(slice(gi, 1, 2 * H, 3 * H), mul(r, slice(gh, 1, 2 * H, 3 * H))));
    return add(n, mul(z, sub(h, n))); // (1 - z) * n + z * h
  }

  /** `h' = GRU(x, h)`; `x` `[B, in]`, `h` `[B, H]`. */
  forward(x: Tensor, h: Tensor): Tensor {
    return this.stepProjected(linear(x, this.weight_ih, this.bias_ih), h);
  }
}

/** Result of a recurrent sequence pass. */
export interface SequenceOutput {
  /** Hidden states for every step, `[T, B, H]`. */
  output: Tensor;
  /** Final hidden state `[B, H]`. */
  h: Tensor;
  /** Final cell state `[B, H]` (LSTM only). */
  c?: Tensor;
}

/**
 * GRU over a sequence `[T, B, in]` with optional reset masks `[T, B]`: before step `t`, the state of batch row `b`
 * is multiplied by `masks[t, b]` (0 where an episode ended at `t - 1`), as in Sample Factory / CleanRL.
 */
export class GRU extends Module {
  readonly cell: GRUCell;
  constructor(inputSize: number, readonly hiddenSize: number, options: RecurrentOptions = {}) {
    super();
    this.cell = this.registerModule("cell", new GRUCell(inputSize, hiddenSize, options));
  }

  /**
   * `fused: false` builds the graph step by step from ops (the reference the fused pass is tested against; backends
   * that keep data on a device always do).
   */
  forward(x: Tensor, h0: Tensor, options: { masks?: Tensor; fused?: boolean } = {}): SequenceOutput {
    const [T, B] = x.shape;
    // Input projections for all steps in one GEMM.
    const gi = linear(x, this.cell.weight_ih, this.cell.bias_ih);
    if (options.fused !== false && backend().sync === undefined) {
      const { weight_hh, bias_hh } = this.cell;
      const output = gruSequence(gi.reshape([T, B, 3 * this.hiddenSize]), h0, weight_hh, bias_hh, options.masks);
      return { output, h: slice(output, 0, T - 1, T).reshape([B, this.hiddenSize]) };
    }
    let h = h0;
    const hs: Tensor[] = [];
    for (let t = 0; t < T; t++) {
      h = maskRows(h, options.masks ? slice(options.masks, 0, t, t + 1) : undefined);
      h = this.cell.stepProjected(slice(gi, 0, t, t + 1).reshape([B, 3 * this.hiddenSize]), h);
      hs.push(h);
    }
    return { output: stack(hs, 0), h };
  }
}

/**
 * The GRU recurrence over precomputed input projections `gi` `[T, B, 3H]` as one autograd op: per step one GEMM for
 * `h W_hhᵀ` and two activation passes forward, one GEMM for the state's gradient backward; the weight gradient of
 * all steps is one `[3H, T·B] x [T·B, H]` GEMM at the end, where the step-by-step graph accumulated a rank-B update
 * per step (and built, zeroed and freed a dozen small tensors per step: the Doom learner spent ~60 ms of a 320 ms
 * chunk there). Host-memory backends only (plain loops read the saved gates).
 */
function gruSequence(gi: Tensor, h0: Tensor, weightHh: Tensor, biasHh: Tensor, masks?: Tensor): Tensor {
  const be = backend();
  const [T, B, H3] = gi.shape, H = H3 / 3, BH = B * H;
  if (h0.shape[0] !== B || h0.shape[1] !== H || (masks && masks.size !== T * B)) {
    throw new Error(`GRU: h0 [${h0.shape}] and masks [${masks?.shape ?? ""}] do not match input [${gi.shape}]`);
  }
  const giRaw = gi.raw, wRaw = weightHh.raw, mRaw = masks?.raw;
  const out = new Tensor(new Float32Array(T * BH), [T, B, H]);
  // Saved for backward: each step's masked input state, its r and z gates, n, and the h-side part of n (W_hn h + b_hn).
  const hm = takeBuffer(T * BH, false), rz = takeBuffer(2 * T * BH, false);
  const nn = takeBuffer(T * BH, false), ghn = takeBuffer(T * BH, false);
  const gh = new Float32Array(B * H3);
  let hPrev = h0.raw;
  for (let t = 0; t < T; t++) {
    const o = t * BH, hmT = hm.subarray(o, o + BH), rzT = rz.subarray(2 * o, 2 * o + 2 * BH);
    const nT = nn.subarray(o, o + BH), ghnT = ghn.subarray(o, o + BH), giT = t * B * H3;
    for (let b = 0; b < B; b++) {
      const keep = mRaw ? mRaw[t * B + b] : 1;
      for (let j = 0; j < H; j++) hmT[b * H + j] = hPrev[b * H + j] * keep;
      gh.set(biasHh.raw, b * H3);
    }
    be.gemm(false, true, B, H3, H, 1, hmT, wRaw, 1, gh);
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < 2 * H; j++) rzT[b * 2 * H + j] = giRaw[giT + b * H3 + j] + gh[b * H3 + j];
    }
    be.unary("sigmoid", rzT, rzT, 0, 0);
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < H; j++) {
        const g = gh[b * H3 + 2 * H + j];
        ghnT[b * H + j] = g;
        nT[b * H + j] = giRaw[giT + b * H3 + 2 * H + j] + rzT[b * 2 * H + j] * g;
      }
    }
    be.unary("tanh", nT, nT, 0, 0);
    const hT = out.raw.subarray(o, o + BH);
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < H; j++) {
        const i = b * H + j, z = rzT[b * 2 * H + H + j];
        hT[i] = nT[i] + z * (hmT[i] - nT[i]); // (1 - z) n + z h
      }
    }
    hPrev = hT;
  }
  return record(out, "gru_sequence", [gi, h0, weightHh, biasHh], (gOut) => {
    const dGH = takeBuffer(T * B * H3, false); // d(h W_hhᵀ + b_hh) of every step
    const [dGI, giBeta] = gradTarget(gi);
    const dh = new Float32Array(BH), dhm = new Float32Array(BH);
    for (let t = T - 1; t >= 0; t--) {
      const o = t * BH, r0 = 2 * o, g0 = t * B * H3;
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < H; j++) {
          const i = b * H + j, d = dh[i] + gOut[o + i];
          const r = rz[r0 + b * 2 * H + j], z = rz[r0 + b * 2 * H + H + j], n = nn[o + i];
          const dan = d * (1 - z) * (1 - n * n); // through n = tanh(a_n)
          const dar = dan * ghn[o + i] * r * (1 - r), daz = d * (hm[o + i] - n) * z * (1 - z);
          const k = g0 + b * H3 + j;
          dGH[k] = dar, dGH[k + H] = daz, dGH[k + 2 * H] = dan * r;
          if (giBeta) dGI[k] += dar, dGI[k + H] += daz, dGI[k + 2 * H] += dan;
          else dGI[k] = dar, dGI[k + H] = daz, dGI[k + 2 * H] = dan;
          dhm[i] = d * z;
        }
      }
      be.gemm(false, false, B, H, H3, 1, dGH.subarray(g0, g0 + B * H3), wRaw, 1, dhm);
      for (let b = 0; b < B; b++) {
        const keep = mRaw ? mRaw[t * B + b] : 1;
        for (let j = 0; j < H; j++) dh[b * H + j] = dhm[b * H + j] * keep;
      }
    }
    if (h0.requiresGrad) {
      const g = gradBuffer(h0);
      for (let i = 0; i < BH; i++) g[i] += dh[i];
    }
    if (weightHh.requiresGrad) {
      const [gw, beta] = gradTarget(weightHh);
      be.gemm(true, false, H3, H, T * B, 1, dGH, hm, beta, gw);
    }
    if (biasHh.requiresGrad) be.sumTo(dGH, [T * B, H3], gradBuffer(biasHh), [1, H3], 1);
    releaseBuffer(dGH);
  }, () => {
    for (const b of [hm, rz, nn, ghn]) releaseBuffer(b);
  });
}

/** LSTM cell with PyTorch's gate layout (i, f, g, o) and parameter names. */
export class LSTMCell extends Module {
  readonly weight_ih: Tensor;
  readonly weight_hh: Tensor;
  readonly bias_ih: Tensor;
  readonly bias_hh: Tensor;
  constructor(readonly inputSize: number, readonly hiddenSize: number, options: RecurrentOptions = {}) {
    super();
    const H = hiddenSize;
    this.weight_ih = this.registerParameter("weight_ih", zeros([4 * H, inputSize]));
    this.weight_hh = this.registerParameter("weight_hh", zeros([4 * H, H]));
    this.bias_ih = this.registerParameter("bias_ih", zeros([4 * H]));
    this.bias_hh = this.registerParameter("bias_hh", zeros([4 * H]));
    initRecurrent(this.parameters(), H, options.rng ?? globalRng);
  }

  /** One step from precomputed input projections `[B, 4H]`; returns `[h', c']`. */
  stepProjected(gi: Tensor, h: Tensor, c: Tensor): [Tensor, Tensor] {
    const H = this.hiddenSize;
    const gates = add(gi, linear(h, this.weight_hh, this.bias_hh));
    const i = sigmoid(slice(gates, 1, 0, H));
    const f = sigmoid(slice(gates, 1, H, 2 * H));
    const g = tanh(slice(gates, 1, 2 * H, 3 * H));
    const o = sigmoid(slice(gates, 1, 3 * H, 4 * H));
    const c1 = add(mul(f, c), mul(i, g));
    return [mul(o, tanh(c1)), c1];
  }

  /** `[h', c'] = LSTM(x, (h, c))`. */
  forward(x: Tensor, h: Tensor, c: Tensor): [Tensor, Tensor] {
    return this.stepProjected(linear(x, this.weight_ih, this.bias_ih), h, c);
  }
}

/** LSTM over a sequence `[T, B, in]` with optional reset masks `[T, B]` (applied to both h and c). */
export class LSTM extends Module {
  readonly cell: LSTMCell;
  constructor(inputSize: number, readonly hiddenSize: number, options: RecurrentOptions = {}) {
    super();
    this.cell = this.registerModule("cell", new LSTMCell(inputSize, hiddenSize, options));
  }

  forward(x: Tensor, h0: Tensor, c0: Tensor, options: { masks?: Tensor } = {}): SequenceOutput {
    const [T, B] = x.shape;
    const gi = linear(x, this.cell.weight_ih, this.cell.bias_ih);
    let h = h0, c = c0;
    const hs: Tensor[] = [];
    for (let t = 0; t < T; t++) {
      const m = options.masks ? slice(options.masks, 0, t, t + 1) : undefined;
      [h, c] = this.cell.stepProjected(
        slice(gi, 0, t, t + 1).reshape([B, 4 * this.hiddenSize]),
        maskRows(h, m),
        maskRows(c, m),
      );
      hs.push(h);
    }
    return { output: stack(hs, 0), h, c };
  }
}

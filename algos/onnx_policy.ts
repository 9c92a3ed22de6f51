/**
 * ONNX policies: export our actor-critics to `.onnx` (`exportPolicyOnnx`), and run any `.onnx` actor-critic — ours or
 * one exported from PyTorch — with onnxruntime-web as an alternative actor (`OnnxPolicy`) and evaluator
 * (`evaluateOnnx`).
 *
 * The file convention (what `exportPolicyOnnx` writes and `OnnxPolicy` expects by default): input `obs`
 * `[batch, ...obsShape]` holding raw env observations (uint8 pixels or float32 vectors: scaling, HWC→CHW and input
 * normalization are inside the graph) and, for recurrent models, `h` `[batch, H]`; outputs `logits`
 * `[batch, numActions]`, `value` `[batch]` (in return units) and `h_out` `[batch, H]`. Q-networks output
 * `q_values` `[batch, numActions]` instead of logits and value (greedy or ε-greedy actions). A policy over a
 * MultiDiscrete action space outputs its dimensions' logits side by side (`[batch, Σ nvec]`, Sample Factory's layout)
 * and names `nvec` in the metadata property `arcadia.action_nvec` (a JSON array); `OnnxPolicy` then picks one action
 * per dimension.
 *
 * Runtime: onnxruntime-web's wasm backend (the CPU kernels of onnxruntime compiled to WebAssembly) loads in Deno as
 * is; its WebGPU execution provider is used when asked, or with `"auto"` when a WebGPU adapter that is not a
 * software fallback exists. onnxruntime-web does inference only.
 *
 * @module
 */

import type * as ort from "npm:onnxruntime-web@1.30.0";
import type { Env } from "../envs/mod.ts";
import type { GRU, Linear, Module, Sequential } from "../models/mod.ts";
import { OnnxGraph, type OnnxSignature, type OnnxValue, readOnnxSignature, saveOnnx } from "../models/onnx.ts";
import { argmaxRows, sampleCategorical, TrainRng } from "./_training.ts";
import { type EvaluateOptions, type EvaluateResult, meanStd } from "./evaluate.ts";
import { MlpActorCritic, MlpQNetwork, NatureCnnActorCritic, NatureCnnQNetwork, type ObsBatch } from "./policies.ts";

// ---------------------------------------------------------------------------------------------------------------
// Export

/** The APPO model as `policyToOnnx` sees it (structurally: the fields the graph is built from). */
export interface AppoModelLike extends Module {
  readonly options: { readonly obsShape: readonly number[]; readonly obsDtype: "uint8" | "float32" };
  readonly encoder: Sequential;
  readonly core: GRU | null;
  readonly policyHead: Linear;
  readonly valueHead: Linear;
  readonly obsRms: { readonly mean: Float64Array; readonly var: Float64Array } | null;
  readonly retRms: { readonly mean: Float64Array; readonly var: Float64Array } | null;
  readonly inputShape: readonly number[];
  readonly hiddenSize: number;
  /** Choices per action dimension (`[numActions]` for Discrete actions). */
  readonly actionNvec?: readonly number[];
}

/** Policies `exportPolicyOnnx` knows how to lower. */
export type ExportablePolicy =
  | MlpActorCritic
  | NatureCnnActorCritic
  | MlpQNetwork
  | NatureCnnQNetwork
  | AppoModelLike;

/** Options of `policyToOnnx` / `exportPolicyOnnx`. */
export interface PolicyExportOptions {
  /** Element type of the `obs` input for image policies (default `"uint8"`: raw pixels, 4x less to feed). */
  imageDtype?: "uint8" | "float32";
  /** GRU lowering: the ONNX `GRU` op (default) or primitives. */
  gru?: "op" | "unrolled";
  /** Extra `metadata_props` (the env id, the run name, …). */
  metadata?: Record<string, string>;
}

/** Metadata property naming the choices per dimension of a MultiDiscrete policy (a JSON array). */
const ACTION_NVEC_KEY = "arcadia.action_nvec";

// Conv strides of the encoders (Conv2d keeps them private): Nature CNN 8/4, 4/2, 3/1; Sample Factory's Doom
// encoder 8/4, 4/2, 3/2.
const NATURE_CONVS = [{ stride: 4 }, { stride: 2 }, { stride: 1 }];
const DOOM_CONVS = [{ stride: 4 }, { stride: 2 }, { stride: 2 }];

function isAppoModel(p: ExportablePolicy): p is AppoModelLike {
  return "policyHead" in p && "encoder" in p && "inputShape" in p;
}

/** `[B, ...]` uint8 or float pixels in 0..255 → float32 in [0, 1]. */
function scalePixels(g: OnnxGraph, x: OnnxValue): OnnxValue {
  return g.mul(x.dtype === "float32" ? x : g.cast(x, "float32"), 1 / 255);
}

/**
 * Build the ONNX graph of a policy (see the module doc for the inputs and outputs). Weights are copied: later
 * training does not change the graph.
 *
 * @example
 * ```ts
 * import { MlpActorCritic } from "./policies.ts";
 * import { policyToOnnx } from "./onnx_policy.ts";
 * import { Rng } from "../models/mod.ts";
 * const graph = policyToOnnx(new MlpActorCritic([4], 2, { rng: new Rng(0) }));
 * const bytes = graph.encode();
 * console.assert(bytes.length > 1000);
 * ```
 */
export function policyToOnnx(policy: ExportablePolicy, options: PolicyExportOptions = {}): OnnxGraph {
  const g = new OnnxGraph(policy.constructor.name);
  let logits: OnnxValue, value: OnnxValue;
  if (policy instanceof MlpActorCritic) {
    const obs = g.input("obs", ["batch", ...policy.obsShape]);
    const x = policy.obsShape.length === 1 ? obs : g.flatten(obs, 1);
    logits = g.module(policy.actor, x, { prefix: "actor." });
    value = g.module(policy.critic, x, { prefix: "critic." });
  } else if (policy instanceof NatureCnnActorCritic) {
    const obs = g.input("obs", ["batch", ...policy.obsShape], { dtype: options.imageDtype ?? "uint8" });
    const hidden = g.module(policy.network, scalePixels(g, obs), { prefix: "network.", convs: NATURE_CONVS });
    logits = g.linear(hidden, policy.actorHead.weight, policy.actorHead.bias, "actor.");
    value = g.linear(hidden, policy.criticHead.weight, policy.criticHead.bias, "critic.");
  } else if (policy instanceof MlpQNetwork || policy instanceof NatureCnnQNetwork) {
    return qNetworkToOnnx(g, policy, options);
  } else if (isAppoModel(policy)) {
    return appoToOnnx(g, policy, options);
  } else {
    throw new TypeError(
      `policyToOnnx: no export for ${(policy as object).constructor.name}; build it with OnnxGraph (models/onnx.ts)`,
    );
  }
  g.output(logits, "logits");
  g.output(g.squeeze(value, [1]), "value");
  return g;
}

/** CleanRL's Q-networks: body (MLP or Nature CNN), Q head, and the dueling combination `V + A − mean(A)`. */
function qNetworkToOnnx(g: OnnxGraph, q: MlpQNetwork | NatureCnnQNetwork, options: PolicyExportOptions): OnnxGraph {
  let hidden: OnnxValue;
  if (q instanceof MlpQNetwork) {
    const obs = g.input("obs", ["batch", ...q.obsShape]);
    hidden = g.module(q.body, q.obsShape.length === 1 ? obs : g.flatten(obs, 1), { prefix: "body." });
  } else {
    const obs = g.input("obs", ["batch", ...q.obsShape], { dtype: options.imageDtype ?? "uint8" });
    hidden = g.module(q.network, scalePixels(g, obs), { prefix: "network.", convs: NATURE_CONVS });
  }
  let values = g.linear(hidden, q.head.weight, q.head.bias, "head.");
  if (q.valueHead) {
    const v = g.linear(hidden, q.valueHead.weight, q.valueHead.bias, "value.");
    const meanA = g.node("ReduceMean", [values], {
      attributes: { axes: { ints: [1] }, keepdims: { int: 1 } },
      outputs: [{ shape: ["batch", 1] }],
    })[0];
    values = g.add(v, g.sub(values, meanA));
  }
  g.output(values, "q_values");
  return g;
}

/** The APPO model: its `prepareObs` (scaling, HWC→CHW, input normalization), encoder, GRU step, heads. */
function appoToOnnx(g: OnnxGraph, model: AppoModelLike, options: PolicyExportOptions): OnnxGraph {
  const obsShape = model.options.obsShape;
  const image = model.inputShape.length === 3;
  const dtype = model.options.obsDtype === "uint8" ? "uint8" : "float32";
  const obs = g.input("obs", ["batch", ...obsShape], { dtype });
  let x: OnnxValue;
  if (dtype === "uint8") {
    x = g.cast(obs, "float32");
    // HWC frames are transposed (the model's input shape then differs from the observation shape).
    if (image && obsShape.some((d, i) => d !== model.inputShape[i])) x = g.transpose(x, [0, 3, 1, 2]);
    x = g.mul(x, 1 / 255);
    if (!image) x = g.flatten(x, 1);
  } else {
    // Like prepareObs, float observations are only reinterpreted as the input shape (no transpose).
    x = g.reshape(obs, [-1, ...model.inputShape]);
  }
  if (model.obsRms) {
    // Per value of the input layout, broadcast over the batch.
    const { mean, var: v } = model.obsRms;
    const inv = Float32Array.from(v, (s) => 1 / Math.sqrt(s + 1e-8));
    x = g.mul(
      g.sub(x, g.constant(Float32Array.from(mean), model.inputShape, "obs_mean")),
      g.constant(inv, model.inputShape, "obs_inv_std"),
    );
    x = g.clip(x, -5, 5);
  }
  let f = g.module(model.encoder, x, { prefix: "encoder.", convs: image ? DOOM_CONVS : [] });
  if (model.core) {
    const h = g.input("h", ["batch", model.hiddenSize]);
    f = g.gruCell(model.core.cell, f, h, { prefix: "core.", lowering: options.gru });
  }
  g.output(g.linear(f, model.policyHead.weight, model.policyHead.bias, "policy."), "logits");
  let value = g.squeeze(g.linear(f, model.valueHead.weight, model.valueHead.bias, "value."), [1]);
  if (model.retRms) {
    // The value head predicts normalized returns; the file gives return units (denormalizeValue).
    value = g.add(g.mul(value, Math.sqrt(model.retRms.var[0] + 1e-8)), model.retRms.mean[0]);
  }
  g.output(value, "value");
  if (model.core) g.output(f, "h_out");
  return g;
}

/**
 * Export a policy to an `.onnx` file (written atomically), with `metadata_props` naming the policy class and the
 * observation shape, and for a MultiDiscrete policy its choices per dimension (`arcadia.action_nvec`).
 *
 * @example
 * ```ts
 * import { MlpActorCritic } from "./policies.ts";
 * import { exportPolicyOnnx, OnnxPolicy } from "./onnx_policy.ts";
 * import { Rng } from "../models/mod.ts";
 * const path = await Deno.makeTempFile({ suffix: ".onnx" });
 * await exportPolicyOnnx(new MlpActorCritic([4], 2, { rng: new Rng(0) }), path, { metadata: { env: "CartPole-v1" } });
 * await using policy = await OnnxPolicy.load(path);
 * const { actions } = await policy.act(new Float32Array(4), { deterministic: true });
 * console.assert(actions.length === 1);
 * ```
 */
export async function exportPolicyOnnx(
  policy: ExportablePolicy,
  path: string,
  options: PolicyExportOptions = {},
): Promise<void> {
  const obsShape = isAppoModel(policy) ? policy.options.obsShape : policy.obsShape;
  const nvec = isAppoModel(policy) ? policy.actionNvec : undefined;
  const metadata: Record<string, string> = {
    "arcadia.policy": policy.constructor.name,
    "arcadia.obs_shape": JSON.stringify(obsShape),
    ...(nvec && nvec.length > 1 ? { [ACTION_NVEC_KEY]: JSON.stringify(nvec) } : {}),
    ...options.metadata,
  };
  await saveOnnx(path, policyToOnnx(policy, options), { metadata });
}

// ---------------------------------------------------------------------------------------------------------------
// Inference with onnxruntime-web

/** Tensor names an `OnnxPolicy` reads and writes. */
export interface OnnxPolicyNames {
  /** Observation input (default `"obs"`; a model with a single input uses it whatever its name). */
  obs: string;
  /** Recurrent state input (default `"h"`). */
  h: string;
  /** Action scores output: `"logits"` by default, else `"q_values"` (a Q-network), else the first output. */
  logits: string;
  /** Value output (default `"value"`; optional in the file). */
  value: string;
  /** Next recurrent state output (default `"h_out"`). */
  hOut: string;
}

/** Options of `OnnxPolicy.load`. */
export interface OnnxPolicyOptions {
  /**
   * `"wasm"`, `"webgpu"`, or `"auto"` (default): WebGPU when an adapter exists and is not a software fallback (on
   * lavapipe the wasm backend is ~40x faster), wasm otherwise. Ops the WebGPU provider lacks (GRU) run on wasm.
   */
  executionProvider?: "wasm" | "webgpu" | "auto";
  /**
   * Threads of the wasm backend (default 1: small policies gain nothing from more, and env workers want the
   * cores). onnxruntime-web reads it once, when the first session of the process is made.
   */
  numThreads?: number;
  /** Tensor names when they differ from the convention. */
  names?: Partial<OnnxPolicyNames>;
  /**
   * Choices per dimension of a MultiDiscrete action space whose logits sit side by side, for files that do not name
   * them in `arcadia.action_nvec` (e.g. exported from Sample Factory). Default: the file's, else one categorical.
   */
  actionNvec?: number[];
}

/** Options of `OnnxPolicy.act`. */
export interface OnnxActOptions {
  /** Recurrent state `[B, H]` (default zeros: the start of an episode). Ignored by models without one. */
  h?: Float32Array;
  /** Take the most likely action instead of sampling (default true). */
  deterministic?: boolean;
  /** Generator for sampling (required when `deterministic` is false). */
  rng?: TrainRng;
  /** Q-networks only: ε of the random actions when not deterministic (default 0.05, CleanRL's evaluation ε). */
  epsilon?: number;
}

/** What `OnnxPolicy.act` returns for a batch of `B` observations. */
export interface OnnxActResult {
  /** `[B]` actions; `[B, D]` row-major for a MultiDiscrete policy of `D` dimensions. */
  actions: Int32Array;
  /** `[B, numActions]` logits (Q-values for a Q-network). */
  logits: Float32Array;
  /** `[B]` values, or `null` when the model has no value output. */
  value: Float32Array | null;
  /** `[B, H]` next recurrent state, or `null` for models without one. */
  h: Float32Array | null;
}

type OrtModule = typeof ort;

/** Whether a WebGPU adapter that is not a software fallback exists. */
async function hardwareWebGpu(): Promise<boolean> {
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  if (!gpu) return false;
  try {
    const adapter = await gpu.requestAdapter();
    return adapter !== null && !adapter.info.isFallbackAdapter;
  } catch {
    return false;
  }
}

function describe(dims: readonly (number | string | null)[] | null): string {
  return dims ? `[${dims.map((d) => d ?? "?").join(", ")}]` : "(unknown shape)";
}

/**
 * An ONNX actor-critic run by onnxruntime-web: `act` maps a batch of raw observations (and the recurrent state) to
 * actions, logits, values and the next state. Works with our exports and with PyTorch exports following the names
 * above. Close it (or `await using`) to free the session.
 *
 * @example
 * ```ts
 * import { MlpActorCritic } from "./policies.ts";
 * import { exportPolicyOnnx, OnnxPolicy } from "./onnx_policy.ts";
 * import { TrainRng } from "./_training.ts";
 * import { Rng } from "../models/mod.ts";
 * const path = await Deno.makeTempFile({ suffix: ".onnx" });
 * await exportPolicyOnnx(new MlpActorCritic([4], 2, { rng: new Rng(0) }), path);
 * await using policy = await OnnxPolicy.load(path);
 * const out = await policy.act(new Float32Array(12), { deterministic: false, rng: new TrainRng(1) }); // 3 rows
 * console.assert(out.actions.length === 3 && out.logits.length === 6 && out.value?.length === 3);
 * ```
 */
export class OnnxPolicy {
  /** Shape of one observation. */
  readonly obsShape: readonly number[];
  /** Element type the model's `obs` input takes (observations are converted to it). */
  readonly obsDtype: "float32" | "uint8";
  /** Recurrent state size (0: feed-forward). */
  readonly hiddenSize: number;
  /** Number of discrete actions (from the logits shape; `0` until the first `act` when the file leaves it open). */
  numActions: number;
  /** Choices per action dimension of a MultiDiscrete policy (their sum is `numActions`); null for one categorical. */
  readonly actionNvec: readonly number[] | null;
  /** Whether the action scores are Q-values (output `q_values`): actions are then greedy or ε-greedy. */
  readonly actionValues: boolean;
  /** The execution provider the session runs on. */
  readonly executionProvider: "wasm" | "webgpu";
  /** Inputs, outputs, opset, producer and metadata of the file. */
  readonly signature: OnnxSignature;
  readonly #ort: OrtModule;
  readonly #session: ort.InferenceSession;
  readonly #names: OnnxPolicyNames;
  readonly #hasValue: boolean;
  readonly #obsSize: number;
  #closed = false;

  private constructor(
    runtime: OrtModule,
    session: ort.InferenceSession,
    signature: OnnxSignature,
    names: OnnxPolicyNames,
    provider: "wasm" | "webgpu",
    actionNvec: readonly number[] | null,
  ) {
    this.#ort = runtime;
    this.#session = session;
    this.signature = signature;
    this.#names = names;
    this.executionProvider = provider;
    const obs = signature.inputs.find((v) => v.name === names.obs)!;
    this.obsShape = obs.shape!.slice(1) as number[];
    this.#obsSize = this.obsShape.reduce((a, b) => a * b, 1);
    this.obsDtype = obs.dtype === "uint8" ? "uint8" : "float32";
    const h = signature.inputs.find((v) => v.name === names.h);
    this.hiddenSize = typeof h?.shape?.[1] === "number" ? h.shape[1] : 0;
    const logits = signature.outputs.find((v) => v.name === names.logits)!;
    this.numActions = typeof logits.shape?.[1] === "number" ? logits.shape[1] : 0;
    this.#hasValue = signature.outputs.some((v) => v.name === names.value);
    this.actionValues = names.logits === "q_values";
    this.actionNvec = actionNvec;
  }

  /**
   * Load an `.onnx` policy from a file. Throws when the file is missing, is not ONNX, or lacks the inputs and
   * outputs the convention needs (the message lists what the file has).
   */
  static async load(path: string | URL, options: OnnxPolicyOptions = {}): Promise<OnnxPolicy> {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (err) {
      throw new Error(`OnnxPolicy.load: cannot read '${path}' (${(err as Error).message})`, { cause: err });
    }
    try {
      return await OnnxPolicy.fromBytes(bytes, options);
    } catch (err) {
      throw new Error(`OnnxPolicy.load: '${path}': ${(err as Error).message}`, { cause: err });
    }
  }

  /** `load` for an encoded model already in memory (e.g. `policyToOnnx(p).encode()`). */
  static async fromBytes(bytes: Uint8Array, options: OnnxPolicyOptions = {}): Promise<OnnxPolicy> {
    const signature = readOnnxSignature(bytes);
    const names = resolveNames(signature, options.names ?? {});
    const nvec = resolveNvec(signature, names, options.actionNvec);
    const want = options.executionProvider ?? "auto";
    const provider = want === "auto" ? ((await hardwareWebGpu()) ? "webgpu" : "wasm") : want;
    // Imported on first use (~60 ms, not paid by modules and workers that never run an ONNX policy). The wasm
    // backend resolves to onnxruntime-web's Node entry, which finds its .wasm beside itself; the WebGPU provider
    // lives in the browser bundle.
    const runtime: OrtModule = provider === "webgpu"
      ? await import("npm:onnxruntime-web@1.30.0/webgpu")
      : await import("npm:onnxruntime-web@1.30.0");
    runtime.env.wasm.numThreads = options.numThreads ?? 1;
    runtime.env.logLevel = "error";
    let session: ort.InferenceSession;
    try {
      session = await runtime.InferenceSession.create(bytes, { executionProviders: [provider] });
    } catch (err) {
      throw new Error(`onnxruntime-web (${provider}) could not load the model: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return new OnnxPolicy(runtime, session, signature, names, provider, nvec);
  }

  /** Zeros `[batch, H]`: the recurrent state at the start of an episode. */
  initialState(batch: number): Float32Array {
    return new Float32Array(batch * this.hiddenSize);
  }

  /**
   * Run the model on `B` observations (`[B, ...obsShape]` row-major, uint8 or float32) and pick actions: greedy by
   * default; with `deterministic: false`, sampled from the logits, or ε-greedy for a Q-network (as `act` of our
   * policies).
   */
  async act(obs: ObsBatch, options: OnnxActOptions = {}): Promise<OnnxActResult> {
    if (this.#closed) throw new Error("OnnxPolicy.act: the policy is closed");
    const batch = obs.length / this.#obsSize;
    if (!Number.isInteger(batch) || batch < 1) {
      throw new RangeError(
        `OnnxPolicy.act: ${obs.length} observation values are not a whole batch of [${this.obsShape}] ` +
          `(${this.#obsSize} values each)`,
      );
    }
    const T = this.#ort.Tensor;
    const data = this.obsDtype === "uint8"
      ? (obs instanceof Uint8Array ? obs : Uint8Array.from(obs))
      : (obs instanceof Float32Array ? obs : Float32Array.from(obs));
    const feeds: Record<string, ort.Tensor> = {
      [this.#names.obs]: new T(this.obsDtype, data, [batch, ...this.obsShape]),
    };
    if (this.hiddenSize > 0) {
      const h = options.h ?? this.initialState(batch);
      if (h.length !== batch * this.hiddenSize) {
        throw new RangeError(
          `OnnxPolicy.act: h has ${h.length} values, expected ${batch} x ${this.hiddenSize} (batch x hidden size)`,
        );
      }
      feeds[this.#names.h] = new T("float32", h, [batch, this.hiddenSize]);
    }
    const out = await this.#session.run(feeds);
    const logitsT = out[this.#names.logits];
    const logits = logitsT.data as Float32Array;
    this.numActions ||= logitsT.dims[1] as number;
    const rng = options.rng;
    if (!(options.deterministic ?? true) && !rng) {
      throw new Error("OnnxPolicy.act: pass options.rng to sample actions (or deterministic: true)");
    }
    const nvec = this.actionNvec;
    const actions = new Int32Array(batch * (nvec?.length ?? 1));
    if (nvec) {
      const width = nvec.reduce((a, b) => a + b, 0);
      if (logits.length !== batch * width) {
        throw new RangeError(
          `OnnxPolicy.act: the model gives ${
            logits.length / batch
          } logits per row, actionNvec [${nvec}] needs ${width}`,
        );
      }
      multiDiscreteActions(logits, nvec, options.deterministic ?? true ? undefined : rng, actions);
    } else if (options.deterministic ?? true) argmaxRows(logits, this.numActions, actions);
    else if (!this.actionValues) sampleCategorical(logits, this.numActions, rng!, actions);
    else {
      argmaxRows(logits, this.numActions, actions);
      const epsilon = options.epsilon ?? 0.05;
      for (let i = 0; i < batch; i++) if (rng!.uniform() < epsilon) actions[i] = rng!.int(this.numActions);
    }
    return {
      actions,
      logits,
      value: this.#hasValue ? (out[this.#names.value].data as Float32Array) : null,
      h: this.hiddenSize > 0 ? (out[this.#names.hOut].data as Float32Array) : null,
    };
  }

  /** Release the session (idempotent). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#session.release();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** `actionNvec` from the options, else the file's metadata; checked against a fixed logits width. */
function resolveNvec(sig: OnnxSignature, names: OnnxPolicyNames, given?: number[]): number[] | null {
  const stored = sig.metadata[ACTION_NVEC_KEY];
  let nvec: unknown = given;
  if (nvec === undefined && stored !== undefined) {
    try {
      nvec = JSON.parse(stored);
    } catch {
      nvec = stored;
    }
  }
  if (nvec === undefined) return null;
  if (!Array.isArray(nvec) || nvec.length === 0 || nvec.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new Error(`actionNvec must be a non-empty list of positive integers, got ${JSON.stringify(nvec)}`);
  }
  if (names.logits === "q_values") throw new Error("actionNvec applies to policy logits, not to Q-values");
  const width = sig.outputs.find((v) => v.name === names.logits)?.shape?.[1];
  const total = nvec.reduce((a: number, b: number) => a + b, 0);
  if (typeof width === "number" && width !== total) {
    throw new Error(`actionNvec [${nvec}] sums to ${total}, the '${names.logits}' output has ${width} columns`);
  }
  return nvec.length > 1 ? nvec : null;
}

/** One action per dimension and row, over each dimension's slice of the logits: greedy, or sampled with `rng`. */
function multiDiscreteActions(
  logits: Float32Array,
  nvec: readonly number[],
  rng: TrainRng | undefined,
  out: Int32Array,
) {
  const width = nvec.reduce((a, b) => a + b, 0), D = nvec.length, rows = logits.length / width;
  for (let r = 0; r < rows; r++) {
    for (let d = 0, o = r * width; d < D; o += nvec[d++]) {
      const slice = logits.subarray(o, o + nvec[d]), one = out.subarray(r * D + d, r * D + d + 1);
      if (rng) sampleCategorical(slice, nvec[d], rng, one);
      else argmaxRows(slice, nvec[d], one);
    }
  }
}

function resolveNames(sig: OnnxSignature, given: Partial<OnnxPolicyNames>): OnnxPolicyNames {
  const inputs = sig.inputs.map((v) => v.name), outputs = sig.outputs.map((v) => v.name);
  const has = (list: string[], n: string) => list.includes(n);
  const names: OnnxPolicyNames = {
    obs: given.obs ?? (has(inputs, "obs") || inputs.length !== 1 ? "obs" : inputs[0]),
    h: given.h ?? "h",
    logits: given.logits ?? (has(outputs, "logits") ? "logits" : has(outputs, "q_values") ? "q_values" : outputs[0]),
    value: given.value ?? "value",
    hOut: given.hOut ?? "h_out",
  };
  const listing = `inputs ${sig.inputs.map((v) => `${v.name} ${describe(v.shape)}`).join(", ")}; outputs ${
    sig.outputs.map((v) => `${v.name} ${describe(v.shape)}`).join(", ")
  }`;
  const obs = sig.inputs.find((v) => v.name === names.obs);
  if (!obs) throw new Error(`the model has no observation input '${names.obs}' (${listing}); pass options.names`);
  if (!obs.shape || obs.shape.length < 2 || obs.shape.slice(1).some((d) => typeof d !== "number")) {
    throw new Error(`input '${obs.name}' must be [batch, ...fixed dims], got ${describe(obs.shape)}`);
  }
  if (obs.dtype !== "float32" && obs.dtype !== "uint8") {
    throw new Error(`input '${obs.name}' is ${obs.dtype}; OnnxPolicy feeds float32 or uint8 observations`);
  }
  if (!has(outputs, names.logits)) throw new Error(`the model has no logits output '${names.logits}' (${listing})`);
  const extra = inputs.filter((n) => n !== names.obs && n !== names.h);
  if (extra.length) throw new Error(`the model has inputs OnnxPolicy does not feed: ${extra.join(", ")} (${listing})`);
  if (has(inputs, names.h) !== has(outputs, names.hOut)) {
    throw new Error(`a recurrent model needs both the input '${names.h}' and the output '${names.hOut}' (${listing})`);
  }
  const h = sig.inputs.find((v) => v.name === names.h);
  if (h && typeof h.shape?.[1] !== "number") {
    throw new Error(`input '${h.name}' must be [batch, H] with a fixed H, got ${describe(h.shape)}`);
  }
  return names;
}

/**
 * `evaluate` for an `OnnxPolicy`: play `episodes` full episodes on `env`, carrying the recurrent state through each
 * episode (zeros at its start).
 *
 * @example
 * ```ts
 * import { MlpActorCritic } from "./policies.ts";
 * import { evaluateOnnx, exportPolicyOnnx, OnnxPolicy } from "./onnx_policy.ts";
 * import { make } from "../envs/mod.ts";
 * import { Rng } from "../models/mod.ts";
 * const path = await Deno.makeTempFile({ suffix: ".onnx" });
 * await exportPolicyOnnx(new MlpActorCritic([4], 2, { rng: new Rng(0) }), path);
 * await using policy = await OnnxPolicy.load(path);
 * using env = make("CartPole-v1");
 * const { returns } = await evaluateOnnx(policy, env, { episodes: 2, deterministic: true, seed: 0 });
 * console.assert(returns.length === 2);
 * ```
 */
export async function evaluateOnnx(
  policy: OnnxPolicy,
  env: Env<unknown, unknown>,
  options: EvaluateOptions,
): Promise<EvaluateResult> {
  const rng = new TrainRng(options.seed ?? 0);
  const returns: number[] = [], lengths: number[] = [];
  const limit = options.maxEpisodeSteps ?? Infinity;
  for (let ep = 0; ep < options.episodes; ep++) {
    let [obs] = env.reset(ep === 0 && options.seed !== undefined ? { seed: options.seed } : {});
    let h: Float32Array | undefined = undefined;
    let total = 0, length = 0;
    for (;;) {
      const out = await policy.act(obs as ObsBatch, { h, deterministic: options.deterministic, rng });
      h = out.h ?? undefined;
      const [next, reward, terminated, truncated] = env.step(policy.actionNvec ? out.actions : out.actions[0]);
      total += reward;
      length++;
      obs = next;
      if (terminated || truncated || length >= limit) break;
    }
    returns.push(total);
    lengths.push(length);
  }
  const { mean, std } = meanStd(returns);
  return { returns, lengths, mean, std };
}

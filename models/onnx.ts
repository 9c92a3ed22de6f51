/**
 * ONNX export: `OnnxGraph` builds an ONNX graph (opset 17) from our nn modules and a few primitives, and encodes it
 * as an `.onnx` file (hand-written protobuf, no dependency); `exportOnnx` does it in one call for a single-input
 * layer such as a `Sequential`; `readOnnxSignature` reads any `.onnx` file's inputs and outputs back.
 *
 * Lowerings: `Linear` → `Gemm` (rank 2) or `MatMul` + `Add`; `Conv2d` → `Conv`; `ReLU`/`ELU`/`Tanh` → `Relu`/`Elu`/
 * `Tanh`; `Flatten` → `Flatten`; `GRUCell` → ONNX `GRU` with `linear_before_reset=1` (PyTorch's gate arithmetic; the
 * gates are reordered from PyTorch's r,z,n to ONNX's z,r,h) or, with `gru: "unrolled"`, `Gemm`/`Split`/`Sigmoid`/
 * `Tanh` primitives for runtimes without a `GRU` kernel. Weights are copied when added, so the file is a snapshot.
 *
 * `Conv2d` keeps its stride and padding private: pass them through `ModuleLoweringOptions.convs` (in the order the
 * convolutions appear) unless the layer exposes public `stride`/`padding` fields.
 *
 * @module
 */

import { writeFileAtomic } from "./checkpoint.ts";
import { Conv2d, ELU, Flatten, type GRUCell, Linear, type Module, ReLU, Sequential, Tanh } from "./nn.ts";
import { type Tensor, toBackend } from "./tensor.ts";
import { decodeMessage, protoBytesList, protoInt, type ProtoMessage, protoString, ProtoWriter } from "./_onnx_proto.ts";

/** A dimension: a size, a symbolic name (`"batch"`: dynamic), or `null` when unknown. */
export type OnnxDim = number | string | null;

/** Element types the exporter writes. */
export type OnnxDType = "float32" | "uint8" | "int32" | "int64";

/** A value in the graph: its name, element type and (possibly partly symbolic) shape, `null` when unknown. */
export interface OnnxValue {
  readonly name: string;
  readonly dtype: OnnxDType;
  readonly shape: readonly OnnxDim[] | null;
}

/** A node attribute, tagged by ONNX attribute type. */
export type OnnxAttribute =
  | { float: number }
  | { int: number }
  | { string: string }
  | { floats: readonly number[] }
  | { ints: readonly number[] };

/** ONNX `TensorProto.DataType` codes. */
const DTYPE_CODE: Record<OnnxDType, number> = { float32: 1, uint8: 2, int32: 6, int64: 7 };
const CODE_DTYPE: Record<number, string> = {
  1: "float32",
  2: "uint8",
  3: "int8",
  5: "int16",
  6: "int32",
  7: "int64",
  9: "bool",
  10: "float16",
  11: "float64",
};

/** The opset the lowerings are written against (ONNX IR version 8 goes with it). */
export const ONNX_OPSET = 17;
const IR_VERSION = 8;

interface NodeSpec {
  opType: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attributes: [string, OnnxAttribute][];
}

interface InitializerSpec {
  name: string;
  dtype: OnnxDType;
  dims: number[];
  raw: Uint8Array;
}

/** Convolution geometry for `Conv2d` layers (their own fields are private). */
export interface ConvGeometry2d {
  /** Stride, one number or `[sh, sw]` (default 1). */
  stride?: number | [number, number];
  /** Zero padding, one number or `[ph, pw]` (default 0). */
  padding?: number | [number, number];
}

/** Options of `OnnxGraph.module`. */
export interface ModuleLoweringOptions {
  /** Prefix of the initializer names (PyTorch-style dotted names follow it: `actor.0.weight`). */
  prefix?: string;
  /** Geometry of the `Conv2d` layers met, in order (consumed as they are lowered). */
  convs?: ConvGeometry2d[];
  /** How `GRUCell`s are lowered (default `"op"`: the ONNX `GRU` operator). */
  gru?: "op" | "unrolled";
}

/** Options of `OnnxGraph.encode`. */
export interface OnnxEncodeOptions {
  /** `producer_name` (default `"arcadia"`). */
  producer?: string;
  /** Model documentation string. */
  docString?: string;
  /** `metadata_props` key/value pairs (e.g. the env id, the action count). */
  metadata?: Record<string, string>;
}

function pair(v: number | [number, number] | undefined, fallback: number): [number, number] {
  if (v === undefined) return [fallback, fallback];
  return typeof v === "number" ? [v, v] : v;
}

function rawBytes(data: Float32Array | Int32Array | BigInt64Array | Uint8Array): Uint8Array {
  // A copy: the file must hold the weights as they are now, not as training leaves them.
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
}

/**
 * An ONNX graph under construction. Values are named uniquely as they are made; every op helper returns the output
 * value with its shape inferred where it can be.
 *
 * @example
 * ```ts
 * import { Linear, ReLU, Rng, Sequential } from "./mod.ts";
 * import { OnnxGraph } from "./onnx.ts";
 * const net = new Sequential([new Linear(4, 8, { rng: new Rng(0) }), new ReLU(), new Linear(8, 2, { rng: new Rng(1) })]);
 * const g = new OnnxGraph("mlp");
 * const x = g.input("obs", ["batch", 4]);
 * g.output(g.module(net, x), "logits");
 * const bytes = g.encode({ metadata: { env: "CartPole-v1" } });
 * console.assert(bytes.length > 0);
 * ```
 */
export class OnnxGraph {
  readonly #nodes: NodeSpec[] = [];
  readonly #initializers: InitializerSpec[] = [];
  readonly #inputs: OnnxValue[] = [];
  readonly #outputs: OnnxValue[] = [];
  readonly #names = new Set<string>();
  readonly #tensorNames = new Map<Tensor, OnnxValue>();
  readonly #counters = new Map<string, number>();

  constructor(readonly name = "arcadia") {}

  /** A name not used yet, derived from `hint`. */
  freshName(hint: string): string {
    let name = hint;
    while (this.#names.has(name)) {
      const n = (this.#counters.get(hint) ?? 0) + 1;
      this.#counters.set(hint, n);
      name = `${hint}_${n}`;
    }
    this.#names.add(name);
    return name;
  }

  /** Declare a graph input; string dims are dynamic (e.g. `"batch"`). */
  input(name: string, shape: readonly OnnxDim[], options: { dtype?: OnnxDType } = {}): OnnxValue {
    if (this.#names.has(name)) throw new Error(`OnnxGraph: the name '${name}' is already used`);
    this.#names.add(name);
    const v: OnnxValue = { name, dtype: options.dtype ?? "float32", shape: [...shape] };
    this.#inputs.push(v);
    return v;
  }

  /** Declare `value` a graph output named `name` (an `Identity` renames it when needed). */
  output(value: OnnxValue, name = value.name): OnnxValue {
    let v = value;
    if (name !== value.name || this.#inputs.includes(value)) {
      if (this.#names.has(name)) throw new Error(`OnnxGraph: the output name '${name}' is already used`);
      this.#names.add(name);
      this.#nodes.push({
        opType: "Identity",
        name: this.freshName("Identity"),
        inputs: [value.name],
        outputs: [name],
        attributes: [],
      });
      v = { ...value, name };
    }
    this.#outputs.push(v);
    return v;
  }

  /** A constant (an initializer). A tensor already added (shared weights) is returned again, not copied twice. */
  constant(
    data: Tensor | Float32Array | Int32Array | BigInt64Array | Uint8Array,
    dims?: readonly number[],
    hint = "const",
  ): OnnxValue {
    if (!ArrayBuffer.isView(data)) {
      const known = this.#tensorNames.get(data);
      if (known) return known;
      const v = this.constant(data.data, dims ?? data.shape, hint);
      this.#tensorNames.set(data, v);
      return v;
    }
    const dtype: OnnxDType = data instanceof Float32Array
      ? "float32"
      : data instanceof Int32Array
      ? "int32"
      : data instanceof BigInt64Array
      ? "int64"
      : "uint8";
    const shape = dims ? [...dims] : [data.length];
    if (shape.reduce((a, b) => a * b, 1) !== data.length) {
      throw new RangeError(`OnnxGraph.constant: ${data.length} values do not fill shape [${shape}]`);
    }
    const name = this.freshName(hint);
    this.#initializers.push({ name, dtype, dims: shape, raw: rawBytes(data) });
    return { name, dtype, shape };
  }

  /** A float32 scalar constant (broadcasts against any tensor). */
  scalar(value: number, hint = "scalar"): OnnxValue {
    return this.constant(new Float32Array([value]), [], hint);
  }

  /** An int64 vector constant (shapes, axes). */
  ints(values: readonly number[], hint = "ints"): OnnxValue {
    return this.constant(BigInt64Array.from(values.map(BigInt)), [values.length], hint);
  }

  /**
   * Append a node with any op type; returns its outputs (one per `outputs` entry: shapes as given, `null` when not).
   * An empty input name skips an optional input.
   */
  node(
    opType: string,
    inputs: readonly (OnnxValue | "")[],
    options: {
      attributes?: Record<string, OnnxAttribute>;
      outputs?: { hint?: string; dtype?: OnnxDType; shape?: readonly OnnxDim[] | null }[];
    } = {},
  ): OnnxValue[] {
    const specs = options.outputs ?? [{}];
    const firstDtype = inputs.find((v): v is OnnxValue => v !== "")?.dtype ?? "float32";
    const outs = specs.map((s): OnnxValue => ({
      name: this.freshName(s.hint ?? opType.toLowerCase()),
      dtype: s.dtype ?? firstDtype,
      shape: s.shape === undefined || s.shape === null ? null : [...s.shape],
    }));
    this.#nodes.push({
      opType,
      name: this.freshName(opType),
      inputs: inputs.map((v) => (v === "" ? "" : v.name)),
      outputs: outs.map((o) => o.name),
      attributes: Object.entries(options.attributes ?? {}),
    });
    return outs;
  }

  /** A node with one output of the given shape (default: the first input's). */
  #unary(opType: string, x: OnnxValue, attributes?: Record<string, OnnxAttribute>, shape = x.shape): OnnxValue {
    return this.node(opType, [x], { attributes, outputs: [{ shape }] })[0];
  }

  /** `max(x, 0)`. */
  relu(x: OnnxValue): OnnxValue {
    return this.#unary("Relu", x);
  }

  /** ELU with `alpha`. */
  elu(x: OnnxValue, alpha = 1): OnnxValue {
    return this.#unary("Elu", x, { alpha: { float: alpha } });
  }

  /** `tanh(x)`. */
  tanh(x: OnnxValue): OnnxValue {
    return this.#unary("Tanh", x);
  }

  /** `1 / (1 + e^-x)`. */
  sigmoid(x: OnnxValue): OnnxValue {
    return this.#unary("Sigmoid", x);
  }

  /** Softmax along `axis` (default the last). */
  softmax(x: OnnxValue, axis = -1): OnnxValue {
    return this.#unary("Softmax", x, { axis: { int: axis } });
  }

  /** Elementwise binary op with numpy broadcasting; a number becomes a float32 scalar constant. */
  #binary(opType: string, a: OnnxValue, b: OnnxValue | number): OnnxValue {
    const bv = typeof b === "number" ? this.scalar(b) : b;
    return this.node(opType, [a, bv], { outputs: [{ shape: broadcastShape(a.shape, bv.shape) }] })[0];
  }

  /** `a + b`. */
  add(a: OnnxValue, b: OnnxValue | number): OnnxValue {
    return this.#binary("Add", a, b);
  }

  /** `a - b`. */
  sub(a: OnnxValue, b: OnnxValue | number): OnnxValue {
    return this.#binary("Sub", a, b);
  }

  /** `a * b`. */
  mul(a: OnnxValue, b: OnnxValue | number): OnnxValue {
    return this.#binary("Mul", a, b);
  }

  /** Clamp to `[min, max]`. */
  clip(x: OnnxValue, min: number, max: number): OnnxValue {
    return this.node("Clip", [x, this.scalar(min, "min"), this.scalar(max, "max")], { outputs: [{ shape: x.shape }] })[
      0
    ];
  }

  /** Convert the element type. */
  cast(x: OnnxValue, dtype: OnnxDType): OnnxValue {
    return this.node("Cast", [x], {
      attributes: { to: { int: DTYPE_CODE[dtype] } },
      outputs: [{ dtype, shape: x.shape }],
    })[
      0
    ];
  }

  /** Permute axes. */
  transpose(x: OnnxValue, perm: readonly number[]): OnnxValue {
    const shape = x.shape ? perm.map((p) => x.shape![p]) : null;
    return this.#unary("Transpose", x, { perm: { ints: perm } }, shape);
  }

  /** To 2-D: `[prod(dims before axis), prod(dims from axis)]` (ONNX `Flatten`). */
  flatten(x: OnnxValue, axis = 1): OnnxValue {
    let shape: OnnxDim[] | null = null;
    if (x.shape) {
      const before = x.shape.slice(0, axis), after = x.shape.slice(axis);
      shape = [before.length === 1 ? before[0] : product(before), product(after)];
    }
    return this.#unary("Flatten", x, { axis: { int: axis } }, shape);
  }

  /** Reshape to `shape` (`-1` infers one dim, `0` copies the input's dim). */
  reshape(x: OnnxValue, shape: readonly number[]): OnnxValue {
    const out = shape.map((d, i): OnnxDim => (d === 0 ? x.shape?.[i] ?? null : d === -1 ? null : d));
    // `[-1, ...rest]` over `[batch, ...same size]` keeps the symbolic batch dim.
    const rest = x.shape ? product(x.shape.slice(1)) : null;
    if (shape[0] === -1 && typeof rest === "number" && rest === product(out.slice(1))) out[0] = x.shape![0];
    return this.node("Reshape", [x, this.ints(shape, "shape")], { outputs: [{ shape: out }] })[0];
  }

  /** Remove the size-1 `axes`. */
  squeeze(x: OnnxValue, axes: readonly number[]): OnnxValue {
    const rank = x.shape?.length ?? 0;
    const drop = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
    const shape = x.shape ? x.shape.filter((_, i) => !drop.has(i)) : null;
    return this.node("Squeeze", [x, this.ints(axes, "axes")], { outputs: [{ shape }] })[0];
  }

  /** Insert size-1 `axes`. */
  unsqueeze(x: OnnxValue, axes: readonly number[]): OnnxValue {
    let shape: OnnxDim[] | null = null;
    if (x.shape) {
      shape = [...x.shape];
      for (const a of [...axes].sort((p, q) => p - q)) shape.splice(a, 0, 1);
    }
    return this.node("Unsqueeze", [x, this.ints(axes, "axes")], { outputs: [{ shape }] })[0];
  }

  /** `x W^T + b` for `W` `[out, in]`: `Gemm` on 2-D input, `MatMul` (by a transposed copy) + `Add` otherwise. */
  linear(x: OnnxValue, weight: Tensor, bias: Tensor | null, prefix = ""): OnnxValue {
    const [out, inF] = weight.shape;
    const last = x.shape?.at(-1);
    if (typeof last === "number" && last !== inF) {
      throw new RangeError(`OnnxGraph.linear: input '${x.name}' has ${last} features, the weight expects ${inF}`);
    }
    const shape = x.shape ? [...x.shape.slice(0, -1), out] : null;
    if (x.shape?.length === 2) {
      const inputs = [x, this.constant(weight, undefined, `${prefix}weight`)];
      if (bias) inputs.push(this.constant(bias, undefined, `${prefix}bias`));
      return this.node("Gemm", inputs, { attributes: { transB: { int: 1 } }, outputs: [{ shape }] })[0];
    }
    const wt = new Float32Array(out * inF);
    for (let o = 0; o < out; o++) for (let i = 0; i < inF; i++) wt[i * out + o] = weight.data[o * inF + i];
    const y = this.node("MatMul", [x, this.constant(wt, [inF, out], `${prefix}weight_t`)], { outputs: [{ shape }] })[0];
    return bias ? this.add(y, this.constant(bias, undefined, `${prefix}bias`)) : y;
  }

  /** 2-D convolution over NCHW input, weight `[out, in, kh, kw]`. */
  conv2d(x: OnnxValue, weight: Tensor, bias: Tensor | null, geometry: ConvGeometry2d = {}, prefix = ""): OnnxValue {
    const [outC, inC, kh, kw] = weight.shape;
    const [sh, sw] = pair(geometry.stride, 1), [ph, pw] = pair(geometry.padding, 0);
    let shape: OnnxDim[] | null = null;
    if (x.shape) {
      if (x.shape.length !== 4) throw new RangeError(`OnnxGraph.conv2d: input '${x.name}' is not [N, C, H, W]`);
      if (typeof x.shape[1] === "number" && x.shape[1] !== inC) {
        throw new RangeError(
          `OnnxGraph.conv2d: input '${x.name}' has ${x.shape[1]} channels, the weight expects ${inC}`,
        );
      }
      const out = (n: OnnxDim, k: number, s: number, p: number) =>
        typeof n === "number" ? Math.floor((n + 2 * p - k) / s) + 1 : null;
      shape = [x.shape[0], outC, out(x.shape[2], kh, sh, ph), out(x.shape[3], kw, sw, pw)];
      if (shape.some((d) => typeof d === "number" && d < 1)) {
        throw new RangeError(`OnnxGraph.conv2d: input [${x.shape}] is smaller than the ${kh}x${kw} kernel`);
      }
    }
    const inputs = [x, this.constant(weight, undefined, `${prefix}weight`)];
    if (bias) inputs.push(this.constant(bias, undefined, `${prefix}bias`));
    return this.node("Conv", inputs, {
      attributes: {
        kernel_shape: { ints: [kh, kw] },
        strides: { ints: [sh, sw] },
        pads: { ints: [ph, pw, ph, pw] },
        dilations: { ints: [1, 1] },
        group: { int: 1 },
      },
      outputs: [{ shape }],
    })[0];
  }

  /**
   * One GRU step `h' = GRU(x, h)` with PyTorch semantics (`x` `[B, in]`, `h` `[B, H]`), as the ONNX `GRU` op
   * (`linear_before_reset=1`) or, with `lowering: "unrolled"`, as primitives.
   */
  gruCell(
    cell: GRUCell,
    x: OnnxValue,
    h: OnnxValue,
    options: { prefix?: string; lowering?: "op" | "unrolled" } = {},
  ): OnnxValue {
    const H = cell.hiddenSize, prefix = options.prefix ?? "";
    const shape = h.shape ?? (x.shape ? [x.shape[0], H] : null);
    if (options.lowering === "unrolled") {
      const gi = this.linear(x, cell.weight_ih, cell.bias_ih, `${prefix}weight_ih_`);
      const gh = this.linear(h, cell.weight_hh, cell.bias_hh, `${prefix}weight_hh_`);
      const part = { shape: x.shape ? [x.shape[0], H] : null };
      const split = { attributes: { axis: { int: 1 } }, outputs: [part, part, part] };
      const [ir, iz, iN] = this.node("Split", [gi], split);
      const [hr, hz, hn] = this.node("Split", [gh], split);
      const r = this.sigmoid(this.add(ir, hr));
      const z = this.sigmoid(this.add(iz, hz));
      const n = this.tanh(this.add(iN, this.mul(r, hn)));
      return this.add(n, this.mul(z, this.sub(h, n))); // (1 - z) * n + z * h
    }
    // PyTorch stacks gates r, z, n; ONNX wants z, r, h.
    const reorder = (t: Tensor, cols: number) => {
      const out = new Float32Array(3 * H * cols);
      const block = H * cols;
      out.set(t.data.subarray(block, 2 * block), 0);
      out.set(t.data.subarray(0, block), block);
      out.set(t.data.subarray(2 * block, 3 * block), 2 * block);
      return out;
    };
    const w = this.constant(reorder(cell.weight_ih, cell.inputSize), [1, 3 * H, cell.inputSize], `${prefix}W`);
    const r = this.constant(reorder(cell.weight_hh, H), [1, 3 * H, H], `${prefix}R`);
    const bias = new Float32Array(6 * H);
    bias.set(reorder(cell.bias_ih, 1), 0);
    bias.set(reorder(cell.bias_hh, 1), 3 * H);
    const b = this.constant(bias, [1, 6 * H], `${prefix}B`);
    const [, yh] = this.node("GRU", [this.unsqueeze(x, [0]), w, r, b, "", this.unsqueeze(h, [0])], {
      attributes: { hidden_size: { int: H }, linear_before_reset: { int: 1 } },
      outputs: [{ hint: "gru_y" }, { hint: "gru_h", shape: shape ? [1, ...shape] : null }],
    });
    return this.squeeze(yh, [0]);
  }

  /**
   * Lower a module applied to `x`: `Sequential` (its layers in order), `Linear`, `Conv2d`, `Flatten`, `ReLU`, `ELU`,
   * `Tanh`. Other classes (including subclasses, whose `forward` may differ) throw: build their nodes with the op
   * helpers instead.
   */
  module(m: Module, x: OnnxValue, options: ModuleLoweringOptions = {}): OnnxValue {
    const prefix = options.prefix ?? "";
    const convs = options.convs ? [...options.convs] : undefined;
    return this.#lower(m, x, prefix, { ...options, convs });
  }

  #lower(m: Module, x: OnnxValue, prefix: string, options: ModuleLoweringOptions): OnnxValue {
    switch (m.constructor) {
      case Sequential: {
        let y = x;
        (m as Sequential).layers.forEach((l, i) => (y = this.#lower(l, y, `${prefix}${i}.`, options)));
        return y;
      }
      case Linear: {
        const l = m as Linear;
        return this.linear(x, l.weight, l.bias, prefix);
      }
      case Conv2d: {
        const c = m as Conv2d & ConvGeometry2d;
        const given = options.convs?.shift();
        const own = "stride" in c || "padding" in c ? { stride: c.stride, padding: c.padding } : undefined;
        if (!own && !given) {
          throw new Error(
            `OnnxGraph.module: Conv2d '${prefix.slice(0, -1) || "(root)"}' keeps its stride/padding private; ` +
              "pass them in options.convs (one entry per Conv2d, in order)",
          );
        }
        return this.conv2d(x, c.weight, c.bias, own ?? given, prefix);
      }
      case Flatten:
        return this.flatten(x, 1);
      case ReLU:
        return this.relu(x);
      case ELU:
        return this.elu(x, (m as ELU).alpha);
      case Tanh:
        return this.tanh(x);
      default:
        throw new Error(
          `OnnxGraph.module: no ONNX lowering for ${m.constructor.name} at '${prefix.slice(0, -1) || "(root)"}'; ` +
            "build its nodes with the OnnxGraph op helpers (linear, conv2d, gruCell, node, …)",
        );
    }
  }

  /** Encode the graph as an ONNX `ModelProto`. Needs at least one output. */
  encode(options: OnnxEncodeOptions = {}): Uint8Array {
    if (this.#outputs.length === 0) throw new Error("OnnxGraph.encode: the graph has no outputs; call output() first");
    const w = new ProtoWriter();
    w.varint(1, IR_VERSION);
    w.string(2, options.producer ?? "arcadia");
    w.string(3, "0.1.0");
    if (options.docString) w.string(6, options.docString);
    w.message(7, (g) => this.#writeGraph(g));
    w.message(8, (o) => o.string(1, "").varint(2, ONNX_OPSET));
    for (const [k, v] of Object.entries(options.metadata ?? {})) w.message(14, (e) => e.string(1, k).string(2, v));
    return w.finish();
  }

  #writeGraph(g: ProtoWriter): void {
    for (const n of this.#nodes) {
      g.message(1, (w) => {
        for (const i of n.inputs) w.string(1, i);
        for (const o of n.outputs) w.string(2, o);
        w.string(3, n.name);
        w.string(4, n.opType);
        for (const [name, a] of n.attributes) w.message(5, (aw) => writeAttribute(aw, name, a));
      });
    }
    g.string(2, this.name);
    for (const t of this.#initializers) {
      g.message(5, (w) => {
        w.packedVarints(1, t.dims);
        w.varint(2, DTYPE_CODE[t.dtype]);
        w.string(8, t.name);
        w.bytes(9, t.raw);
      });
    }
    for (const v of this.#inputs) g.message(11, (w) => writeValueInfo(w, v));
    for (const v of this.#outputs) g.message(12, (w) => writeValueInfo(w, v));
  }
}

function product(dims: readonly OnnxDim[]): OnnxDim {
  let p = 1;
  for (const d of dims) {
    if (typeof d !== "number") return null;
    p *= d;
  }
  return p;
}

function broadcastShape(a: readonly OnnxDim[] | null, b: readonly OnnxDim[] | null): OnnxDim[] | null {
  if (!a || !b) return null;
  const n = Math.max(a.length, b.length);
  const out: OnnxDim[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1, y = b[b.length - n + i] ?? 1;
    out.push(x === 1 ? y : y === 1 ? x : x === y ? x : null);
  }
  return out;
}

function writeAttribute(w: ProtoWriter, name: string, a: OnnxAttribute): void {
  // AttributeProto: name=1, f=2, i=3, s=4, floats=7, ints=8, type=20 (FLOAT=1, INT=2, STRING=3, FLOATS=6, INTS=7).
  w.string(1, name);
  if ("float" in a) w.float(2, a.float).varint(20, 1);
  else if ("int" in a) w.varint(3, a.int).varint(20, 2);
  else if ("string" in a) w.string(4, a.string).varint(20, 3);
  else if ("floats" in a) w.packedFloats(7, a.floats).varint(20, 6);
  else w.packedVarints(8, a.ints).varint(20, 7);
}

function writeValueInfo(w: ProtoWriter, v: OnnxValue): void {
  // ValueInfoProto{name=1, type=2} → TypeProto{tensor_type=1} → Tensor{elem_type=1, shape=2} → Dimension{value=1|param=2}.
  w.string(1, v.name);
  w.message(2, (t) =>
    t.message(1, (tt) => {
      tt.varint(1, DTYPE_CODE[v.dtype]);
      if (v.shape) {
        tt.message(2, (s) => {
          for (const d of v.shape!) {
            s.message(1, (dim) => {
              if (typeof d === "number") dim.varint(1, d);
              else if (typeof d === "string") dim.string(2, d);
            });
          }
        });
      }
    }));
}

/** Options of `exportOnnx`. */
export interface ExportOnnxOptions extends ModuleLoweringOptions, OnnxEncodeOptions {
  /** Shape of one input sample, without the batch dimension (which is dynamic, named `batch`). */
  inputShape: readonly number[];
  /** Name of the graph input (default `"input"`). */
  inputName?: string;
  /** Name of the graph output (default `"output"`). */
  outputName?: string;
}

/**
 * Export a single-input, single-output module (a `Sequential` of built-in layers, a `Linear`, …) to an `.onnx`
 * file with a dynamic batch dimension, written atomically. Returns the encoded bytes.
 *
 * @example
 * ```ts
 * import { Linear, Rng, Sequential, Tanh } from "./mod.ts";
 * import { exportOnnx, readOnnxSignature } from "./onnx.ts";
 * const net = new Sequential([new Linear(4, 16, { rng: new Rng(0) }), new Tanh(), new Linear(16, 2, { rng: new Rng(1) })]);
 * const path = await Deno.makeTempFile({ suffix: ".onnx" });
 * await exportOnnx(net, path, { inputShape: [4] });
 * const { inputs, outputs } = readOnnxSignature(await Deno.readFile(path));
 * console.assert(inputs[0].shape?.[0] === "batch" && outputs[0].shape?.[1] === 2);
 * ```
 */
export async function exportOnnx(module: Module, path: string, options: ExportOnnxOptions): Promise<Uint8Array> {
  toBackend(module, "cpu"); // weights trained on a device: one readback for all of them
  const g = new OnnxGraph(module.constructor.name);
  const x = g.input(options.inputName ?? "input", ["batch", ...options.inputShape]);
  g.output(g.module(module, x, options), options.outputName ?? "output");
  const bytes = g.encode(options);
  await writeFileAtomic(path, bytes);
  return bytes;
}

/** Write encoded ONNX bytes (or a graph, encoded with `options`) to `path` atomically. */
export async function saveOnnx(
  path: string,
  model: OnnxGraph | Uint8Array,
  options?: OnnxEncodeOptions,
): Promise<void> {
  await writeFileAtomic(path, model instanceof OnnxGraph ? model.encode(options) : model);
}

/** A graph input or output as declared in a file. */
export interface OnnxValueInfo {
  /** Tensor name. */
  name: string;
  /** Element type (`"float32"`, `"uint8"`, …; `"type<N>"` for codes not listed). */
  dtype: string;
  /** Dimensions (numbers, symbolic names, `null` for unnamed unknown ones), or `null` when the file has none. */
  shape: OnnxDim[] | null;
}

/** What `readOnnxSignature` reports. */
export interface OnnxSignature {
  /** The graph's runtime inputs (initializers that are also listed as inputs are left out). */
  inputs: OnnxValueInfo[];
  /** The graph outputs. */
  outputs: OnnxValueInfo[];
  /** Version of the default-domain opset. */
  opset: number;
  /** `producer_name` (`"pytorch"`, `"arcadia"`, …). */
  producer: string;
  /** `metadata_props`. */
  metadata: Record<string, string>;
}

/**
 * Read the inputs, outputs, opset and metadata of an ONNX file (any producer), without a runtime. Throws when the
 * bytes are not an ONNX model.
 *
 * @example
 * ```ts
 * import { OnnxGraph, readOnnxSignature } from "./onnx.ts";
 * const g = new OnnxGraph();
 * g.output(g.relu(g.input("x", ["batch", 3])), "y");
 * const sig = readOnnxSignature(g.encode());
 * console.assert(sig.inputs[0].name === "x" && sig.outputs[0].name === "y" && sig.opset === 17);
 * ```
 */
export function readOnnxSignature(bytes: Uint8Array): OnnxSignature {
  let model: ProtoMessage, graph: ProtoMessage;
  try {
    model = decodeMessage(bytes);
    const g = protoBytesList(model, 7)[0];
    if (!g || protoInt(model, 1) === 0) throw new Error("no graph or IR version");
    graph = decodeMessage(g);
  } catch (err) {
    throw new Error(`not an ONNX model (${(err as Error).message})`, { cause: err });
  }
  let opset = 0;
  for (const o of protoBytesList(model, 8)) {
    const m = decodeMessage(o);
    if (protoString(m, 1) === "" || protoString(m, 1) === "ai.onnx") opset = protoInt(m, 2);
  }
  const metadata: Record<string, string> = {};
  for (const e of protoBytesList(model, 14)) {
    const m = decodeMessage(e);
    metadata[protoString(m, 1)] = protoString(m, 2);
  }
  const initNames = new Set(protoBytesList(graph, 5).map((t) => protoString(decodeMessage(t), 8)));
  const infos = (field: number) => protoBytesList(graph, field).map(readValueInfo);
  return {
    inputs: infos(11).filter((v) => !initNames.has(v.name)),
    outputs: infos(12),
    opset,
    producer: protoString(model, 2),
    metadata,
  };
}

function readValueInfo(bytes: Uint8Array): OnnxValueInfo {
  const v = decodeMessage(bytes);
  const name = protoString(v, 1);
  const type = protoBytesList(v, 2)[0];
  const tensor = type ? protoBytesList(decodeMessage(type), 1)[0] : undefined;
  if (!tensor) return { name, dtype: "unknown", shape: null };
  const t = decodeMessage(tensor);
  const code = protoInt(t, 1);
  const shapeBytes = protoBytesList(t, 2)[0];
  const shape = shapeBytes
    ? protoBytesList(decodeMessage(shapeBytes), 1).map((d): OnnxDim => {
      const dim = decodeMessage(d);
      if (dim.has(1)) return protoInt(dim, 1);
      return dim.has(2) ? protoString(dim, 2) : null;
    })
    : null;
  return { name, dtype: CODE_DTYPE[code] ?? `type${code}`, shape };
}

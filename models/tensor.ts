/**
 * `Tensor`: a dense float32 array with a shape, plus the reverse-mode autograd engine (graph recording, topological
 * backward, `noGrad`, NaN/Inf checking) and the explicit backend registry.
 *
 * Tensors are always contiguous; `reshape` returns a view that shares `data`. Differentiable operations live in
 * `autograd.ts` (primitives) and `ops.ts` (compositions).
 *
 * Host synchronization: a device backend (WebGPU) keeps a tensor's values on the device and records kernels instead
 * of running them, so the host `Float32Array` may be stale. Library code hands the storage to kernels through
 * `Tensor.raw` (no synchronization); every host access of values goes through `data`, `item()`, `toArray()` or
 * `syncHost()`, which ask the device backend to flush its queue and read back only the arrays asked for. On the CPU
 * backend that is one null check.
 *
 * @module
 */

import type { Backend } from "./primitives.ts";
import type { Rng } from "./rng.ts";
import { shapeSize } from "./primitives.ts";
import { cpuBackend } from "./backends/cpu.ts";
import { autoBackend, startWebGpu, webgpuBackend } from "./backends/webgpu.ts";
import { releaseBuffer, takeBuffer } from "./pool.ts";

type SyncFn = NonNullable<Backend["sync"]>;

// ---------------------------------------------------------------------------------------------------------------
// Backend registry

/** Backend names accepted by `useBackend`. `"auto"` picks WebGPU on a real (non-fallback) adapter, else `"cpu"`. */
export type BackendName = "cpu" | "webgpu" | "auto";

/** Explicit registry (no directory scanning, so importing by URL works). */
const BACKENDS: Record<Exclude<BackendName, "auto">, Backend | null> = {
  cpu: cpuBackend,
  webgpu: webgpuBackend,
};

let current: Backend = cpuBackend;
/** The device backend's host synchronization, once one has been selected (it keeps device state after a switch). */
let hostSync: SyncFn | null = null;
/** The CPU backend guarded by `hostSync`, used after a device backend has been active. */
let guardedCpu: Backend | null = null;

/**
 * `be` with every array argument synchronized to the host first (and handed to the host): after a device backend
 * has run, its outputs may live only on the device, and host kernels read raw storage.
 */
function hostGuarded(be: Backend, sync: SyncFn): Backend {
  // `sync` too, so library code takes the backend paths rather than its host shortcuts over raw storage.
  const out: Record<string, unknown> = { name: be.name, sync };
  for (const [key, fn] of Object.entries(be)) {
    if (typeof fn !== "function" || key === "sync") continue;
    out[key] = (...args: unknown[]) => {
      for (const a of args) {
        if (a instanceof Float32Array) sync(a, true);
        else if (Array.isArray(a)) { for (const x of a) if (x instanceof Float32Array) sync(x, true); }
      }
      return fn.apply(be, args);
    };
  }
  return out as unknown as Backend;
}

/**
 * Select the backend used by all subsequent operations.
 *
 * @example
 * ```ts
 * import { useBackend } from "./tensor.ts";
 * useBackend("cpu");
 * ```
 */
export function useBackend(name: BackendName): Backend {
  if (name === "auto") {
    current = autoBackend(BACKENDS.cpu!); // logs its choice
    if (current.sync) hostSync = current.sync;
    else if (hostSync !== null) current = guardedCpu ??= hostGuarded(cpuBackend, hostSync);
    return current;
  }
  const backend = BACKENDS[name];
  if (!backend) throw new Error(`backend '${name}' is not available in this build; use "cpu" or "auto"`);
  if (backend === webgpuBackend) startWebGpu(); // no adapter: fails here, naming how to install one
  if (backend.sync) hostSync = backend.sync;
  if (hostSync !== null && !backend.sync) {
    // Host kernels after a device backend: synchronize their arguments (only in processes that used a device).
    current = backend === cpuBackend
      ? (guardedCpu ??= hostGuarded(cpuBackend, hostSync))
      : hostGuarded(backend, hostSync);
    return current;
  }
  current = backend;
  return current;
}

/**
 * Make the storage of `arrays` current on the host: one flush and one readback on a device backend, nothing on the
 * CPU. With `write`, the host takes them over (the device re-uploads them on next use).
 *
 * @example
 * ```ts
 * import { syncHost, tensor } from "./tensor.ts";
 * const t = tensor([1, 2]);
 * syncHost([t.raw]);
 * ```
 */
export function syncHost(arrays: readonly Float32Array[], write = false): void {
  if (hostSync !== null && arrays.length > 0) hostSync(arrays, write);
}

/**
 * Move tensors (or a module's parameters) to backend `name` in one transfer: to `"cpu"`, one readback of every value
 * that lives only on the device; to `"webgpu"`, one upload of every host value (one submit). The values stay where
 * they were too, and operations keep running on the backend `useBackend` selected: this is for handing weights between
 * a GPU learner and CPU actors without a transfer per tensor.
 *
 * @example
 * ```ts
 * import { Linear, toBackend } from "./mod.ts";
 * const net = new Linear(4, 2);
 * toBackend(net, "cpu"); // host copies current: publish net.parameters() to actors
 * ```
 */
export function toBackend(tensors: readonly Tensor[] | { parameters(): Tensor[] }, name: "cpu" | "webgpu"): void {
  const list = "parameters" in tensors ? tensors.parameters() : tensors;
  const arrays = list.map((t) => t.raw);
  if (name === "cpu") {
    syncHost(arrays);
    return;
  }
  const be = BACKENDS[name];
  if (!be?.prefetch) throw new Error(`toBackend: backend '${name}' is not available in this build`);
  if (be === webgpuBackend) startWebGpu();
  hostSync ??= be.sync ?? null;
  be.prefetch(arrays);
}

/** Register (or replace) a backend implementation under `name`. */
export function registerBackend(name: Exclude<BackendName, "auto">, backend: Backend): void {
  BACKENDS[name] = backend;
}

/** The backend operations currently run on. */
export function backend(): Backend {
  return current;
}

// ---------------------------------------------------------------------------------------------------------------
// Global modes

let gradEnabled = true;
let nanCheck = readNanCheckEnv();

function readNanCheckEnv(): boolean {
  try {
    return Deno.env.get("ARCADIA_NAN_CHECK") === "1";
  } catch {
    return false;
  }
}

/**
 * Run `fn` without recording the autograd graph (inference, target networks, optimizer updates).
 *
 * @example
 * ```ts
 * import { noGrad, tensor } from "./tensor.ts";
 * const y = noGrad(() => tensor([1, 2], { requiresGrad: true }).reshape([2, 1]));
 * console.log(y.requiresGrad); // false
 * ```
 */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Whether operations currently record the graph. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/**
 * Turn the NaN/Inf check on or off: when on, every op's output (and every gradient) is scanned and the first
 * non-finite value raises an error naming the op. Defaults to `ARCADIA_NAN_CHECK=1`.
 */
export function setNanCheck(enabled: boolean): void {
  nanCheck = enabled;
}

/** Whether the NaN/Inf check is on. */
export function isNanCheckEnabled(): boolean {
  return nanCheck;
}

/** `a`, made current on the host for reading. */
function hostRead(a: Float32Array): Float32Array {
  if (hostSync !== null) hostSync(a, false);
  return a;
}

function checkFinite(data: Float32Array, op: string, what: string, shape: readonly number[]): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v - v !== 0) {
      throw new Error(
        `NaN/Inf check: op '${op}' produced ${v} in its ${what} (shape [${shape.join(",")}], flat index ${i})`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Tensor

/** A node of the autograd graph: the op that made a tensor and how to push its gradient to the inputs. */
export interface GradNode {
  /** Op name, used in error messages. */
  op: string;
  /** Inputs that may need gradients. */
  inputs: Tensor[];
  /** Accumulate input gradients given the output gradient `gy` (same layout as the output; raw storage). */
  backward(gy: Float32Array): void;
  /** Give back scratch buffers saved for backward; called once the graph is freed. */
  release?: () => void;
}

/** Options for creating a tensor. */
export interface TensorOptions {
  /** Track gradients for this tensor (a leaf parameter). */
  requiresGrad?: boolean;
}

let wrapping = false;

/**
 * A tensor over storage the library manages (a view, a gradient buffer, a kernel's output) whose newest values may be
 * on a device: unlike `new Tensor`, it does not hand the array to the host.
 *
 * @example
 * ```ts
 * import { tensor, wrapStorage } from "./tensor.ts";
 * const x = tensor([1, 2, 3, 4]);
 * const view = wrapStorage(x.raw, [2, 2]); // shares storage, no host synchronization
 * ```
 */
export function wrapStorage(raw: Float32Array, shape: readonly number[]): Tensor {
  wrapping = true;
  try {
    return new Tensor(raw, shape);
  } finally {
    wrapping = false;
  }
}

/** Sets a tensor's stale-gradient flag and returns the old one (assigned by `Tensor`'s static block). */
let markStale: (t: Tensor, stale: boolean) => boolean;

/** A dense, contiguous float32 tensor. */
export class Tensor {
  /**
   * Row-major element storage (shared by reshape views) without host synchronization: what kernels and backend
   * primitives take. On a device backend its host contents may be stale; read and write values through `data`.
   */
  readonly raw: Float32Array;
  /** Sizes of each dimension. */
  readonly shape: readonly number[];
  /** Whether gradients flow to this tensor. */
  requiresGrad: boolean;
  #grad: Tensor | null = null;
  /** Whether `zeroGrad` cleared `#grad` lazily: its contents are to be read as zeros (see `zeroGradLazily`). */
  #gradStale = false;
  /** Accumulated gradient (same shape), set by `backward()` on leaves that require grad. */
  get grad(): Tensor | null {
    if (this.#gradStale) {
      this.#gradStale = false;
      current.fill(this.#grad!.raw, 0);
    }
    return this.#grad;
  }
  set grad(g: Tensor | null) {
    this.#gradStale = false;
    this.#grad = g;
  }
  /** `zeroGradLazily` and `gradTarget`'s access to the stale flag. */
  static {
    markStale = (t, stale) => {
      if (t.#grad === null) return false;
      const was = t.#gradStale;
      t.#gradStale = stale;
      return was;
    };
  }
  /** The op that produced this tensor (null for leaves and for tensors made under `noGrad`). */
  node: GradNode | null = null;

  constructor(data: Float32Array, shape: readonly number[], options: TensorOptions = {}) {
    const n = shapeSize(shape);
    if (data.length !== n) {
      throw new Error(`Tensor: data has ${data.length} elements but shape [${shape.join(",")}] needs ${n}`);
    }
    this.raw = data;
    this.shape = Object.freeze([...shape]);
    this.requiresGrad = options.requiresGrad ?? false;
    // An array handed in from outside may have been written on the host since a device last saw it (a reused
    // observation buffer): the host owns it now. Library code wrapping its own storage skips this (`wrapStorage`).
    if (hostSync !== null && !wrapping) hostSync(data, true);
  }

  /**
   * The values on the host, synchronized first when a device backend holds newer ones. Writing through the returned
   * array is allowed: the host takes the array over, and a device backend re-uploads it on next use.
   */
  get data(): Float32Array {
    if (hostSync !== null) hostSync(this.raw, true);
    return this.raw;
  }

  /** Number of elements. */
  get size(): number {
    return this.raw.length;
  }

  /** Number of dimensions. */
  get ndim(): number {
    return this.shape.length;
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.raw.length !== 1) throw new Error(`item: tensor has shape [${this.shape.join(",")}], not one element`);
    if (hostSync !== null) hostSync(this.raw, false);
    return this.raw[0];
  }

  /** A copy of the values as a plain array (flat). */
  toArray(): number[] {
    if (hostSync !== null) hostSync(this.raw, false);
    return Array.from(this.raw);
  }

  /** A tensor sharing this data, cut off from the graph (stop-gradient). */
  detach(): Tensor {
    return wrapStorage(this.raw, this.shape);
  }

  /** A deep copy (not part of the graph), made by the current backend. */
  clone(): Tensor {
    const n = this.raw.length;
    const out = new Float32Array(n);
    current.copyStrided(this.raw, 0, [1], [n], out, 0, [1], false);
    return wrapStorage(out, this.shape);
  }

  /** View with a new shape (one dim may be -1); differentiable, shares `data`. */
  reshape(shape: readonly number[]): Tensor {
    const out = wrapStorage(this.raw, resolveShape(shape, this.raw.length, this.shape));
    return record(out, "reshape", [this], (gy) => {
      const s = [gy.length];
      const gx = gradBuffer(this);
      current.binary("add", gx, s, gy, s, gx, s);
    });
  }

  /** Run reverse-mode autodiff from this tensor (a scalar unless `grad` is given). */
  backward(options: BackwardOptions = {}): void {
    runBackward(this, options.grad, options);
  }

  /** Debug string with shape and the first values. */
  toString(): string {
    if (hostSync !== null) hostSync(this.raw, false);
    const head = Array.from(this.raw.subarray(0, 8)).map((v) => +v.toPrecision(5));
    return `Tensor([${this.shape.join(",")}], [${head.join(", ")}${this.raw.length > 8 ? ", …" : ""}])`;
  }
}

/** Options for `backward`. */
export interface BackwardOptions {
  /** Gradient of the output (default: 1 for a one-element output). */
  grad?: Tensor;
  /** Keep the graph (allows a second backward through the same graph). */
  retainGraph?: boolean;
}

function resolveShape(shape: readonly number[], n: number, from: readonly number[]): number[] {
  const out = [...shape];
  const neg = out.indexOf(-1);
  if (neg >= 0) {
    const rest = shapeSize(out.filter((_, i) => i !== neg));
    out[neg] = rest === 0 ? 0 : n / rest;
  }
  if (shapeSize(out) !== n || out.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`reshape: cannot reshape [${from.join(",")}] to [${shape.join(",")}]`);
  }
  return out;
}

/**
 * Attach a graph node to `out` if grad mode is on and any input requires grad; runs the NaN check. Used by every
 * differentiable op.
 */
export function record(
  out: Tensor,
  op: string,
  inputs: Tensor[],
  backward: (gy: Float32Array) => void,
  release?: () => void,
): Tensor {
  if (nanCheck) checkFinite(hostRead(out.raw), op, "output", out.shape); // a debugging mode: syncs every op
  let any = false;
  if (gradEnabled) { for (const t of inputs) if (t.requiresGrad) any = true; }
  if (!any) {
    release?.(); // no graph: saved buffers are dead now
    return out;
  }
  out.requiresGrad = true;
  out.node = { op, inputs: inputs.filter((t) => t.requiresGrad), backward, release };
  return out;
}

/**
 * Zero `t.grad` the way `zeroGrad` means it, without a pass over memory yet: the buffer is kept and marked stale. The
 * next reader of `t.grad` gets it zeroed; a backward op that overwrites it whole (`gradTarget`) skips the zeroing,
 * like PyTorch's `zero_grad(set_to_none=True)` followed by a first gradient write (but keeping the buffer).
 */
export function zeroGradLazily(t: Tensor): void {
  markStale(t, true);
}

/**
 * Where a backward op writes `t`'s gradient with a GEMM-style `beta`: `[buffer, 0]` when nothing has been accumulated
 * yet (a fresh or lazily zeroed buffer: the caller must then write every element, as `beta = 0` does), else
 * `[buffer, 1]` to add into. Saves the zero fill and the read of the old contents for weight gradients.
 */
export function gradTarget(t: Tensor): readonly [Float32Array, 0 | 1] {
  if (!t.requiresGrad) return [new Float32Array(t.raw.length), 0];
  if (markStale(t, false)) return [t.grad!.raw, 0];
  if (t.grad === null) {
    // Non-leaf gradients are consumed within one backward pass, so they can come from the pool (unzeroed: beta 0).
    t.grad = wrapStorage(t.node ? takeBuffer(t.raw.length, false) : new Float32Array(t.raw.length), t.shape);
    return [t.grad.raw, 0];
  }
  return [t.grad.raw, 1];
}

/**
 * The gradient accumulator of `t` (allocated zeroed on first use); ops' backward functions add into it.
 * Returns a throwaway buffer for tensors that do not require grad, so callers can skip the check.
 */
export function gradBuffer(t: Tensor): Float32Array {
  if (!t.requiresGrad) return new Float32Array(t.raw.length);
  if (t.grad === null) {
    // Non-leaf gradients are consumed within one backward pass, so they can come from the pool.
    t.grad = wrapStorage(t.node ? zeroedBuffer(t.raw.length) : new Float32Array(t.raw.length), t.shape);
  }
  return t.grad.raw;
}

function zeroOnBackend(b: Float32Array): void {
  current.fill(b, 0);
}

/**
 * A zeroed scratch buffer from the pool; a recycled one is zeroed by the current backend (where it may live). A device
 * backend zeroes fresh ones too: cheaper than uploading host zeros.
 *
 * @example
 * ```ts
 * import { zeroedBuffer } from "./tensor.ts";
 * import { releaseBuffer } from "./pool.ts";
 * const scratch = zeroedBuffer(4096);
 * releaseBuffer(scratch);
 * ```
 */
export function zeroedBuffer(n: number): Float32Array {
  if (current.sync === undefined) return takeBuffer(n, true, zeroOnBackend);
  const b = takeBuffer(n, false);
  current.fill(b, 0);
  return b;
}

const ONE = new Float32Array([1]);

/** Placed on non-leaf tensors once their graph has been consumed by `backward()`. */
const FREED: GradNode = {
  op: "freed",
  inputs: [],
  backward() {
    throw new Error(
      "backward: trying to backward through a graph a second time (its buffers were freed); " +
        "pass { retainGraph: true } to the first backward(), or sum the losses and call backward() once",
    );
  },
};

function runBackward(root: Tensor, grad: Tensor | undefined, options: BackwardOptions): void {
  if (!root.requiresGrad) {
    throw new Error("backward: tensor does not require grad (no input had requiresGrad, or it was made in noGrad)");
  }
  if (!grad && root.raw.length !== 1) {
    throw new Error(`backward: output has shape [${root.shape.join(",")}]; pass a gradient or reduce to a scalar`);
  }
  // Iterative post-order DFS gives a topological order without recursion limits.
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const inputs = top[0].node?.inputs ?? [];
    if (top[1] < inputs.length) {
      const next = inputs[top[1]++];
      if (!seen.has(next)) {
        seen.add(next);
        stack.push([next, 0]);
      }
    } else {
      order.push(top[0]);
      stack.pop();
    }
  }
  const g = gradBuffer(root);
  // Seeded by the backend: on a device backend the gradient buffers live there.
  if (grad) {
    if (grad.raw.length !== g.length) {
      throw new Error(`backward: gradient shape [${grad.shape.join(",")}] != output [${root.shape.join(",")}]`);
    }
    current.binary("add", g, [g.length], grad.raw, [g.length], g, [g.length]);
  } else current.binary("add", g, [1], ONE, [1], g, [1]);
  for (let i = order.length - 1; i >= 0; i--) {
    const t = order[i];
    const node = t.node;
    if (!node || t.grad === null) continue;
    if (node === FREED) node.backward(t.grad.raw);
    node.backward(t.grad.raw);
    if (nanCheck) {
      for (const x of node.inputs) if (x.grad) checkFinite(hostRead(x.grad.raw), node.op, "input gradient", x.shape);
    }
    releaseBuffer(t.grad.raw);
    t.grad = null; // non-leaf gradients are consumed, not kept (PyTorch semantics)
    if (!options.retainGraph) {
      node.release?.();
      t.node = FREED;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Constructors

type Nested = number | Nested[];

function flatten(value: Nested, shape: number[], depth: number, out: number[]): void {
  if (typeof value === "number") {
    if (depth !== shape.length) throw new Error("tensor: ragged nested array");
    out.push(value);
    return;
  }
  if (depth === shape.length) shape.push(value.length);
  else if (shape[depth] !== value.length) throw new Error("tensor: ragged nested array");
  for (const v of value) flatten(v, shape, depth + 1, out);
}

/** Options for `tensor`. */
export interface CreateOptions extends TensorOptions {
  /** Shape for flat data (default: inferred from nesting, or `[length]`). */
  shape?: readonly number[];
}

/**
 * Make a tensor from a number, nested arrays or a `Float32Array` (which is used without copying).
 *
 * @example
 * ```ts
 * import { tensor } from "./tensor.ts";
 * const x = tensor([[1, 2, 3], [4, 5, 6]]);
 * console.log(x.shape); // [2, 3]
 * const w = tensor(new Float32Array(6), { shape: [3, 2], requiresGrad: true });
 * ```
 */
export function tensor(value: Nested | Float32Array, options: CreateOptions = {}): Tensor {
  if (value instanceof Float32Array) return new Tensor(value, options.shape ?? [value.length], options);
  const shape: number[] = [];
  const flat: number[] = [];
  flatten(value, shape, 0, flat);
  return new Tensor(Float32Array.from(flat), options.shape ?? shape, options);
}

/** A tensor filled with `value`. */
export function full(shape: readonly number[], value: number, options: TensorOptions = {}): Tensor {
  return new Tensor(new Float32Array(shapeSize(shape)).fill(value), shape, options);
}

/** A tensor of zeros. */
export function zeros(shape: readonly number[], options: TensorOptions = {}): Tensor {
  return new Tensor(new Float32Array(shapeSize(shape)), shape, options);
}

/** A tensor of ones. */
export function ones(shape: readonly number[], options: TensorOptions = {}): Tensor {
  return full(shape, 1, options);
}

/** A scalar (shape `[]`) tensor. */
export function scalar(value: number): Tensor {
  return new Tensor(new Float32Array([value]), []);
}

/**
 * Standard-normal samples from a seeded generator.
 *
 * @example
 * ```ts
 * import { randn, Rng } from "./mod.ts";
 * const noise = randn([2, 3], new Rng(0));
 * ```
 */
export function randn(shape: readonly number[], rng: Rng, options: TensorOptions = {}): Tensor {
  const t = zeros(shape, options);
  const d = t.raw; // fresh: host-only
  for (let i = 0; i < d.length; i++) d[i] = rng.normal();
  return t;
}

/** Uniform samples in `[lo, hi)` (default `[0, 1)`) from a seeded generator. */
export function rand(
  shape: readonly number[],
  rng: Rng,
  options: TensorOptions & { lo?: number; hi?: number } = {},
): Tensor {
  const t = zeros(shape, options);
  const lo = options.lo ?? 0, hi = options.hi ?? 1;
  const d = t.raw; // fresh: host-only
  for (let i = 0; i < d.length; i++) d[i] = rng.range(lo, hi);
  return t;
}

/** `[start, start + 1, …, end − 1]` (or with `step`) as a 1-D tensor. */
export function arange(start: number, end: number, step = 1): Tensor {
  const n = Math.max(0, Math.ceil((end - start) / step));
  return new Tensor(Float32Array.from({ length: n }, (_, i) => start + i * step), [n]);
}

/**
 * Float tensor from bytes (e.g. uint8 frames in a shared buffer), scaled: `out[i] = bytes[i] * scale`.
 *
 * @example
 * ```ts
 * import { fromBytes } from "./tensor.ts";
 * const frames = new Uint8Array(2 * 4 * 84 * 84);
 * const obs = fromBytes(frames, [2, 4, 84, 84], { scale: 1 / 255 });
 * ```
 */
export function fromBytes(bytes: Uint8Array, shape: readonly number[], options: { scale?: number } = {}): Tensor {
  const n = shapeSize(shape);
  if (bytes.length !== n) throw new Error(`fromBytes: ${bytes.length} bytes for shape [${shape.join(",")}] (${n})`);
  const out = new Float32Array(n);
  const s = options.scale ?? 1;
  for (let i = 0; i < n; i++) out[i] = bytes[i] * s;
  return new Tensor(out, shape);
}

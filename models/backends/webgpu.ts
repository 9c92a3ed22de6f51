/**
 * The WebGPU backend: every primitive of `primitives.ts` as WGSL compute shaders (`webgpu/kernels.ts`).
 *
 * The `Backend` interface is synchronous and works on host `Float32Array`s, while WebGPU readback is asynchronous.
 * So the device lives in a Worker (`webgpu/_worker.ts`) and each primitive call is one program sent there: inputs are
 * copied into a shared arena, the worker uploads them, encodes the dispatches into one compute pass, submits once,
 * reads every output back with one wait, and the main thread blocks in `Atomics.wait` until the results are in the
 * arena. The worker pools GPU buffers by size class and caches pipelines, so a steady-state call allocates no GPU
 * buffers and compiles no shaders. Because outputs must be on the host when a call returns, a call costs at least one
 * readback (~11 ms in Deno 2.9, see `bench/webgpu_bench.ts`); keeping tensors device-resident across calls needs the
 * interface change described in the report (lazy host views + an explicit sync point).
 *
 * GEMM has two kernels: shared-memory tiles for real GPUs, register blocking (4×4 per thread, no barriers) for CPU
 * adapters such as Mesa's lavapipe, chosen by `isFallbackAdapter` unless `setWebGpuGemmKernel` overrides it.
 *
 * @example
 * ```ts
 * import { useBackend } from "../tensor.ts";
 * useBackend("webgpu"); // throws with an install hint when no adapter is available
 * useBackend("cpu");
 * ```
 *
 * @module
 */

import type { Backend, BinaryOp, ConvGeometry, IndexArray, ReduceOp, UnaryOp } from "../primitives.ts";
import { broadcastStrides, contiguousStrides, shapeSize } from "../primitives.ts";
import {
  type BufSpec,
  CTRL,
  type ExecMessage,
  type InitMessage,
  STAT,
  STAT_COUNT,
  STATUS,
  type StepSpec,
} from "./webgpu/_protocol.ts";
import * as K from "./webgpu/kernels.ts";
import { Worker } from "node:worker_threads";

/** What the device worker found. */
export interface WebGpuInfo {
  /** Adapter description, e.g. `"llvmpipe (LLVM 15.0.6, 256 bits)"`. */
  description: string;
  /** Vendor id or name as reported by the adapter. */
  vendor: string;
  /** Architecture string (often empty). */
  architecture: string;
  /** True for software/CPU adapters (lavapipe): `"auto"` then prefers the CPU backend. */
  isFallbackAdapter: boolean;
  /** Largest storage buffer a kernel can bind, in bytes. */
  maxStorageBufferBindingSize: number;
  /** Largest buffer, in bytes. */
  maxBufferSize: number;
}

/** Counters since the device started (submits and readbacks are what a training step pays for). */
export interface WebGpuStats {
  /** Backend primitive calls. */
  calls: number;
  /** `queue.submit` calls. */
  submits: number;
  /** Readback waits (several buffers mapped together count once). */
  readbacks: number;
  /** Compute dispatches. */
  dispatches: number;
  /** GPU buffers created (a warm pool creates none). */
  bufferAllocs: number;
  /** Compute pipelines compiled (a warm cache compiles none). */
  pipelineCompiles: number;
  /** Bytes uploaded with `writeBuffer`. */
  uploadBytes: number;
  /** Bytes read back. */
  readbackBytes: number;
}

/** GEMM kernel selection: `"auto"` picks `"blocked"` on fallback (CPU) adapters and `"tiled"` otherwise. */
export type GemmKernel = "auto" | "tiled" | "blocked";

/** Install hint used in every "no adapter" error. */
export const WEBGPU_INSTALL_HINT =
  "install a Vulkan driver: `apt-get install -y mesa-vulkan-drivers` gives the lavapipe CPU adapter (slow, fine for " +
  "tests), or install your GPU's driver (NVIDIA, AMD or Intel with Vulkan support)";

interface Runtime {
  worker: Worker;
  ctrl: Int32Array;
  stats: Float64Array;
  msg: Uint8Array;
  arena: SharedArrayBuffer;
  arenaSent: boolean;
  info: WebGpuInfo;
  sent: Set<string>;
  calls: number;
}

let rt: Runtime | null = null;
let startError: Error | null = null;
let gemmKernel: GemmKernel = "auto";
const WAIT_MS = 300_000; // a dispatch on lavapipe can take seconds; a hung device should still fail loudly

function readMessage(r: { ctrl: Int32Array; msg: Uint8Array }): { kind?: string; detail?: string } {
  const n = Atomics.load(r.ctrl, CTRL.msgLength);
  try {
    return JSON.parse(new TextDecoder().decode(r.msg.slice(0, n)));
  } catch {
    return { detail: "unreadable message from the WebGPU worker" };
  }
}

/**
 * Start the device worker (blocking, a few hundred ms) and return the adapter description; later calls return the
 * same device. Throws an error naming how to get an adapter when there is none.
 *
 * @example
 * ```ts
 * import { startWebGpu } from "./webgpu.ts";
 * console.log(startWebGpu().description); // "llvmpipe (LLVM 15.0.6, 256 bits)"
 * ```
 */
export function startWebGpu(): WebGpuInfo {
  if (rt) return rt.info;
  if (startError) throw startError;
  const ctrl = new Int32Array(new SharedArrayBuffer(8));
  const stats = new Float64Array(new SharedArrayBuffer(8 * STAT_COUNT));
  const msg = new Uint8Array(new SharedArrayBuffer(64 * 1024));
  let worker: Worker;
  try {
    worker = new Worker(new URL("./webgpu/_worker.ts", import.meta.url));
  } catch (e) {
    startError = new Error(`backend "webgpu": cannot start the WebGPU worker (${(e as Error).message})`, { cause: e });
    throw startError;
  }
  const init: InitMessage = {
    type: "init",
    ctrl: ctrl.buffer as SharedArrayBuffer,
    stats: stats.buffer as SharedArrayBuffer,
    msg: msg.buffer as SharedArrayBuffer,
  };
  worker.postMessage(init);
  const waited = Atomics.wait(ctrl, CTRL.status, STATUS.pending, 60_000);
  worker.unref(); // the device must not keep the process alive
  const status = Atomics.load(ctrl, CTRL.status);
  if (waited === "timed-out" || status !== STATUS.ok) {
    worker.terminate();
    const m = status === STATUS.error
      ? readMessage({ ctrl, msg })
      : { detail: "no answer from the WebGPU worker in 60 s" };
    startError = new Error(`backend "webgpu": no WebGPU adapter (${m.detail}); ${WEBGPU_INSTALL_HINT}`);
    throw startError;
  }
  const info = readMessage({ ctrl, msg }) as unknown as WebGpuInfo;
  rt = {
    worker,
    ctrl,
    stats,
    msg,
    arena: new SharedArrayBuffer(1 << 20),
    arenaSent: false,
    info,
    sent: new Set(),
    calls: 0,
  };
  return info;
}

/** The adapter in use, or null when the device has not been started. */
export function webgpuInfo(): WebGpuInfo | null {
  return rt?.info ?? null;
}

/**
 * Counters since the device started; diff two snapshots to count a training step's submits and readbacks.
 *
 * @example
 * ```ts
 * import { webgpuBackend, webgpuStats } from "./webgpu.ts";
 * const before = webgpuStats();
 * const x = new Float32Array([1, -2]);
 * webgpuBackend.unary("relu", x, x, 0, 0);
 * console.log(webgpuStats().readbacks - before.readbacks); // 1
 * ```
 */
export function webgpuStats(): WebGpuStats {
  const s = rt?.stats;
  const get = (i: number) => (s ? s[i] : 0);
  return {
    calls: rt?.calls ?? 0,
    submits: get(STAT.submits),
    readbacks: get(STAT.readbacks),
    dispatches: get(STAT.dispatches),
    bufferAllocs: get(STAT.bufferAllocs),
    pipelineCompiles: get(STAT.pipelineCompiles),
    uploadBytes: get(STAT.uploadBytes),
    readbackBytes: get(STAT.readbackBytes),
  };
}

/**
 * Override the GEMM kernel choice (tests run both on one adapter); returns the previous setting.
 *
 * @example
 * ```ts
 * import { setWebGpuGemmKernel } from "./webgpu.ts";
 * const prev = setWebGpuGemmKernel("tiled");
 * setWebGpuGemmKernel(prev);
 * ```
 */
export function setWebGpuGemmKernel(kind: GemmKernel): GemmKernel {
  const prev = gemmKernel;
  gemmKernel = kind;
  return prev;
}

/** The GEMM kernel `"auto"` resolves to on the current adapter (starts the device). */
export function resolvedGemmKernel(): "tiled" | "blocked" {
  if (gemmKernel !== "auto") return gemmKernel;
  return startWebGpu().isFallbackAdapter ? "blocked" : "tiled";
}

/** Stop the device worker (the next call starts a fresh one). */
export function stopWebGpu(): void {
  rt?.worker.terminate();
  rt = null;
}

/**
 * The backend `"auto"` resolves to: WebGPU on a real (non-fallback) adapter, else `cpu`. Logs the choice once.
 *
 * @example
 * ```ts
 * import { autoBackend } from "./webgpu.ts";
 * import { cpuBackend } from "./cpu.ts";
 * const be = autoBackend(cpuBackend); // cpu on lavapipe or without any adapter
 * ```
 */
export function autoBackend(cpu: Backend): Backend {
  let choice: Backend = cpu, why: string;
  try {
    const info = startWebGpu();
    if (info.isFallbackAdapter) {
      why = `WebGPU adapter '${info.description}' is a fallback (software) adapter`;
      stopWebGpu();
    } else {
      choice = webgpuBackend;
      why = `WebGPU adapter '${info.description}'`;
    }
  } catch (e) {
    why = (e as Error).message.replace(/^backend "webgpu": /, "").split(";")[0];
  }
  if (!autoLogged) console.info(`arcadia: backend "auto" -> "${choice.name}" (${why})`);
  autoLogged = true;
  return choice;
}
let autoLogged = false;

// ---------------------------------------------------------------------------------------------------------------
// Programs: the buffers and dispatches of one primitive call

const ALIGN = 256;

interface HostIo {
  arr: Float32Array | Int32Array;
  lo: number;
  len: number;
  off: number;
}

class Program {
  readonly bufs: BufSpec[] = [];
  readonly steps: StepSpec[] = [];
  readonly ins: HostIo[] = [];
  readonly outs: HostIo[] = [];
  readonly #sources: (() => string)[] = [];
  #arenaBytes = 0;
  constructor(readonly op: string, readonly info: WebGpuInfo) {}

  #check(len: number, what: string): void {
    const bytes = len * 4, limit = this.info.maxStorageBufferBindingSize;
    if (bytes > limit) {
      throw new Error(
        `webgpu ${this.op}: ${what} needs ${fmtBytes(bytes)}, over this adapter's maxStorageBufferBindingSize of ` +
          `${fmtBytes(limit)} (${this.info.description}); use a smaller batch or the cpu backend`,
      );
    }
  }

  #slot(len: number): number {
    const off = this.#arenaBytes;
    this.#arenaBytes += Math.ceil((len * 4) / ALIGN) * ALIGN;
    return off;
  }

  /** Upload `arr[lo, lo + len)`; returns the buffer index. */
  input(arr: Float32Array | Int32Array, lo: number, len: number, what: string): number {
    this.#check(len, what);
    const off = this.#slot(len);
    this.ins.push({ arr, lo, len, off });
    this.bufs.push({ bytes: Math.max(4, len * 4), upload: off, zero: false, readback: -1 });
    return this.bufs.length - 1;
  }

  /** A result read back into `arr[lo, lo + len)`; `load` uploads the old contents first (accumulation). */
  output(arr: Float32Array, lo: number, len: number, load: boolean, what: string): number {
    this.#check(len, what);
    const off = this.#slot(len);
    if (load) this.ins.push({ arr, lo, len, off });
    this.outs.push({ arr, lo, len, off });
    this.bufs.push({ bytes: Math.max(4, len * 4), upload: load ? off : -1, zero: !load, readback: off });
    return this.bufs.length - 1;
  }

  step(key: string, source: () => string, params: number[], reads: number[], writes: number[], groups: number[]) {
    const p = new Uint32Array(64);
    p.set(params);
    this.steps.push({ key, params: p, reads, writes, groups: [groups[0], groups[1] ?? 1, groups[2] ?? 1] });
    this.#sources.push(source);
  }

  run(): void {
    const r = rt!;
    r.calls++;
    if (r.arena.byteLength < this.#arenaBytes) {
      r.arena = new SharedArrayBuffer(Math.max(this.#arenaBytes, r.arena.byteLength * 2));
      r.arenaSent = false;
    }
    const arena = r.arena;
    for (const io of this.ins) {
      const view = io.arr instanceof Int32Array
        ? new Int32Array(arena, io.off, io.len)
        : new Float32Array(arena, io.off, io.len);
      view.set(io.arr.subarray(io.lo, io.lo + io.len) as never);
    }
    this.steps.forEach((s, i) => {
      if (r.sent.has(s.key)) return;
      s.source = this.#sources[i]();
      r.sent.add(s.key);
    });
    const msg: ExecMessage = { type: "exec", bufs: this.bufs, steps: this.steps };
    if (!r.arenaSent) {
      msg.arena = arena;
      r.arenaSent = true;
    }
    Atomics.store(r.ctrl, CTRL.status, STATUS.pending);
    r.worker.postMessage(msg);
    const waited = Atomics.wait(r.ctrl, CTRL.status, STATUS.pending, WAIT_MS);
    const status = Atomics.load(r.ctrl, CTRL.status);
    if (waited === "timed-out" || status !== STATUS.ok) {
      const m = status === STATUS.error ? readMessage(r) : { detail: `no answer in ${WAIT_MS / 1000} s` };
      // A failed program may have left sources unsent; resend them next time.
      for (const s of this.steps) if (s.source !== undefined) r.sent.delete(s.key);
      throw new Error(`webgpu ${this.op}: ${m.detail}`);
    }
    for (const io of this.outs) {
      io.arr.set(new Float32Array(arena, io.off, io.len), io.lo);
    }
  }
}

function fmtBytes(b: number): string {
  return b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MiB` : `${b} bytes`;
}

function fmtShape(s: readonly number[]): string {
  return `[${s.join(",")}]`;
}

function f32bits(v: number): number {
  return new Uint32Array(new Float32Array([v]).buffer)[0];
}

/** Workgroup grid for `n` threads of the elementwise kernels (2-D past 65,535 workgroups). */
function grid(n: number): number[] {
  const g = Math.ceil(n / K.WG);
  if (g <= 65535) return [g, 1];
  const y = Math.ceil(g / 65535);
  return [Math.ceil(g / y), y];
}

function program(op: string): Program {
  return new Program(op, startWebGpu());
}

/**
 * Drop size-1 dims and merge neighbours that are contiguous in every stride list, so most strided ops fit in
 * `MAX_RANK` dims.
 */
function collapse(shape: readonly number[], strides: number[][]): { shape: number[]; strides: number[][] } {
  const keep = shape.map((d, i) => [d, i] as const).filter(([d]) => d !== 1);
  let outShape: number[] = [];
  let outStrides: number[][] = strides.map(() => []);
  for (const [d, i] of keep) {
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((s, k) => outStrides[k][last] === s[i] * d)) {
      outShape[last] *= d;
      strides.forEach((s, k) => (outStrides[k][last] = s[i]));
    } else {
      outShape.push(d);
      strides.forEach((s, k) => outStrides[k].push(s[i]));
    }
  }
  if (outShape.length === 0) {
    outShape = [1];
    outStrides = strides.map(() => [0]);
  }
  return { shape: outShape, strides: outStrides };
}

function padTo(v: number[], n: number): number[] {
  const out = new Array<number>(n).fill(0);
  v.forEach((x, i) => (out[i] = x));
  return out;
}

function rankCheck(op: string, rank: number, shape: readonly number[]): void {
  if (rank > K.MAX_RANK) {
    throw new Error(`webgpu ${op}: shape ${fmtShape(shape)} has ${rank} non-mergeable dims (max ${K.MAX_RANK})`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Primitives

function unary(op: UnaryOp, x: Float32Array, out: Float32Array, p0: number, p1: number): void {
  const n = x.length;
  if (n === 0) return;
  const p = program(op);
  const ix = p.input(x, 0, n, `input [${n}]`);
  const io = p.output(out, 0, n, false, `output [${n}]`);
  p.step(`unary:${op}`, () => K.unarySource(op), [n, f32bits(p0), f32bits(p1)], [ix], [io], grid(n));
  p.run();
}

function unaryGrad(
  op: UnaryOp,
  x: Float32Array,
  y: Float32Array,
  gy: Float32Array,
  gx: Float32Array,
  p0: number,
  p1: number,
): void {
  const n = x.length;
  if (n === 0) return;
  const p = program(`${op} backward`);
  const what = `[${n}]`;
  const bx = p.input(x, 0, n, what), by = p.input(y, 0, n, what), bg = p.input(gy, 0, n, what);
  const bo = p.output(gx, 0, n, true, what);
  p.step(`unaryGrad:${op}`, () => K.unaryGradSource(op), [n, f32bits(p0), f32bits(p1)], [bx, by, bg], [bo], grid(n));
  p.run();
}

function broadcastParams(op: string, outShape: readonly number[], shapes: (readonly number[])[]): number[] {
  const c = collapse(outShape, [...shapes.map((s) => broadcastStrides(s, outShape)), contiguousStrides(outShape)]);
  rankCheck(op, c.shape.length, outShape);
  const r = c.shape.length;
  const params = [shapeSize(outShape), r, ...padTo(c.shape, 6)];
  for (let k = 0; k < 3; k++) params.push(...padTo(c.strides[k] && k < shapes.length ? c.strides[k] : [], 6));
  return params;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function binary(
  op: BinaryOp,
  a: Float32Array,
  aShape: readonly number[],
  b: Float32Array,
  bShape: readonly number[],
  out: Float32Array,
  outShape: readonly number[],
): void {
  const n = shapeSize(outShape);
  if (n === 0) return;
  const p = program(op);
  const ba = p.input(a, 0, shapeSize(aShape), `operand ${fmtShape(aShape)}`);
  const bb = p.input(b, 0, shapeSize(bShape), `operand ${fmtShape(bShape)}`);
  const bo = p.output(out, 0, n, false, `output ${fmtShape(outShape)}`);
  const same = sameShape(aShape, outShape) && sameShape(bShape, outShape);
  const params = same ? [n] : broadcastParams(op, outShape, [aShape, bShape]);
  p.step(`binary:${op}:${same}`, () => K.binarySource(op, same), params, [ba, bb], [bo], grid(n));
  p.run();
}

function where(
  cond: Float32Array,
  condShape: readonly number[],
  a: Float32Array,
  aShape: readonly number[],
  b: Float32Array,
  bShape: readonly number[],
  out: Float32Array,
  outShape: readonly number[],
): void {
  const n = shapeSize(outShape);
  if (n === 0) return;
  const p = program("where");
  const ba = p.input(a, 0, shapeSize(aShape), `operand ${fmtShape(aShape)}`);
  const bb = p.input(b, 0, shapeSize(bShape), `operand ${fmtShape(bShape)}`);
  const bc = p.input(cond, 0, shapeSize(condShape), `condition ${fmtShape(condShape)}`);
  const bo = p.output(out, 0, n, false, `output ${fmtShape(outShape)}`);
  p.step(
    "where",
    K.whereSource,
    broadcastParams("where", outShape, [aShape, bShape, condShape]),
    [ba, bb, bc],
    [bo],
    grid(n),
  );
  p.run();
}

function sumTo(
  x: Float32Array,
  xShape: readonly number[],
  out: Float32Array,
  outShape: readonly number[],
  alpha: number,
): void {
  const nx = shapeSize(xShape), nOut = shapeSize(outShape);
  if (nx === 0 || nOut === 0) return;
  const xs = contiguousStrides(xShape);
  const os = broadcastStrides(outShape, xShape); // 0 on reduced dims
  const keptShape: number[] = [], keptStrides: number[] = [], redShape: number[] = [], redStrides: number[] = [];
  xShape.forEach((d, i) => {
    if (d === 1) return;
    if (os[i] === 0) {
      redShape.push(d);
      redStrides.push(xs[i]);
    } else {
      keptShape.push(d);
      keptStrides.push(xs[i]);
    }
  });
  const kc = collapse(keptShape, [keptStrides]), rc = collapse(redShape, [redStrides]);
  rankCheck("sumTo", Math.max(kc.shape.length, rc.shape.length), xShape);
  const p = program("sumTo");
  const bx = p.input(x, 0, nx, `input ${fmtShape(xShape)}`);
  const bo = p.output(out, 0, nOut, true, `output ${fmtShape(outShape)}`);
  const params = [nOut, shapeSize(redShape), kc.shape.length, rc.shape.length, f32bits(alpha), 0, 0, 0];
  params.push(...padTo(kc.shape, 6), ...padTo(kc.strides[0], 6), ...padTo(rc.shape, 6), ...padTo(rc.strides[0], 6));
  p.step("sumTo", K.sumToSource, params, [bx], [bo], grid(nOut));
  p.run();
}

function reduce(op: ReduceOp, x: Float32Array, outer: number, n: number, inner: number, out: Float32Array): void {
  const m = outer * inner;
  if (m === 0) return;
  const p = program(op);
  const bx = p.input(x, 0, outer * n * inner, `input [${outer},${n},${inner}]`);
  const bo = p.output(out, 0, m, false, `output [${outer},${inner}]`);
  p.step(`reduce:${op}`, () => K.reduceSource(op), [m, n, inner], [bx], [bo], grid(m));
  p.run();
}

function gemm(
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  b: Float32Array,
  beta: number,
  c: Float32Array,
  lda = transA ? m : k,
  ldb = transB ? k : n,
  ldc = n,
): void {
  if (m === 0 || n === 0) return;
  const kind = resolvedGemmKernel();
  const p = program("gemm");
  const aRows = transA ? k : m, aCols = transA ? m : k;
  const bRows = transB ? n : k, bCols = transB ? k : n;
  const ba = k === 0 ? p.input(a, 0, 1, "A") : p.input(a, 0, (aRows - 1) * lda + aCols, `A [${aRows},${aCols}]`);
  const bb = k === 0 ? p.input(b, 0, 1, "B") : p.input(b, 0, (bRows - 1) * ldb + bCols, `B [${bRows},${bCols}]`);
  const cLen = (m - 1) * ldc + n;
  // C's old contents matter when beta != 0, and when ldc leaves gaps that the readback must not clobber.
  const bc = p.output(c, 0, cLen, beta !== 0 || ldc !== n, `C [${m},${n}]`);
  const tile = kind === "tiled" ? 64 : 32;
  const groups = [Math.ceil(n / tile), Math.ceil(m / tile)];
  if (groups[0] > 65535 || groups[1] > 65535) throw new Error(`webgpu gemm: ${m}x${n} output is too large to dispatch`);
  const vecA = kind === "blocked" && lda % 4 === 0, vecB = kind === "blocked" && ldb % 4 === 0;
  const source = kind === "tiled"
    ? () => K.gemmTiledSource(transA, transB)
    : () => K.gemmBlockedSource(transA, transB, vecA, vecB);
  const params = [m, n, k, lda, ldb, ldc, f32bits(alpha), beta === 0 ? 0 : f32bits(beta)];
  p.step(`gemm:${kind}:${transA}:${transB}:${vecA}:${vecB}`, source, params, [ba, bb], [bc], groups);
  p.run();
}

function convParams(total: number, g: ConvGeometry): number[] {
  const P = g.outH * g.outW;
  return [
    total,
    g.batch * P,
    P,
    g.channels,
    g.height,
    g.width,
    g.kernelH,
    g.kernelW,
    g.strideH,
    g.strideW,
    g.padH,
    g.padW,
    g.outH,
    g.outW,
  ];
}

function im2col(x: Float32Array, g: ConvGeometry, col: Float32Array): void {
  const rows = g.channels * g.kernelH * g.kernelW, cols = g.batch * g.outH * g.outW;
  const total = rows * cols;
  if (total === 0) return;
  const p = program("im2col");
  const xShape = [g.batch, g.channels, g.height, g.width];
  const bx = p.input(x, 0, shapeSize(xShape), `input ${fmtShape(xShape)}`);
  const bc = p.output(col, 0, total, false, `im2col columns [${rows},${cols}] (C*kh*kw, N*outH*outW)`);
  p.step("im2col", K.im2colSource, convParams(total, g), [bx], [bc], grid(total));
  p.run();
}

function col2im(col: Float32Array, g: ConvGeometry, dx: Float32Array): void {
  const rows = g.channels * g.kernelH * g.kernelW, cols = g.batch * g.outH * g.outW;
  const xShape = [g.batch, g.channels, g.height, g.width];
  const total = shapeSize(xShape);
  if (total === 0 || rows * cols === 0) return;
  const p = program("col2im");
  const bc = p.input(col, 0, rows * cols, `im2col columns [${rows},${cols}]`);
  const bx = p.output(dx, 0, total, true, `input gradient ${fmtShape(xShape)}`);
  p.step("col2im", K.col2imSource, convParams(total, g), [bc], [bx], grid(total));
  p.run();
}

/** `[lo, hi]` element range touched by `offset + Σ i·stride` over `shape`. */
function span(offset: number, strides: readonly number[], shape: readonly number[]): [number, number] {
  let lo = offset, hi = offset;
  shape.forEach((d, i) => {
    const e = (d - 1) * strides[i];
    if (e < 0) lo += e;
    else hi += e;
  });
  return [lo, hi];
}

/** Whether distinct indices map to distinct destinations (sorted-stride test). */
function injective(shape: readonly number[], strides: readonly number[]): boolean {
  const dims = shape.map((d, i) => [d, Math.abs(strides[i])]).filter(([d]) => d > 1).sort((p, q) => p[1] - q[1]);
  let reach = 0; // largest offset reachable with the smaller-stride dims
  for (const [d, s] of dims) {
    if (s <= reach) return false;
    reach += (d - 1) * s;
  }
  return true;
}

function copyStrided(
  src: Float32Array,
  srcOffset: number,
  srcStrides: readonly number[],
  shape: readonly number[],
  dst: Float32Array,
  dstOffset: number,
  dstStrides: readonly number[],
  accumulate: boolean,
): void {
  const n = shapeSize(shape);
  if (n === 0) return;
  const c = collapse(shape, [[...srcStrides], [...dstStrides]]);
  rankCheck("copyStrided", c.shape.length, shape);
  const [sLo, sHi] = span(srcOffset, c.strides[0], c.shape);
  const [dLo, dHi] = span(dstOffset, c.strides[1], c.shape);
  const inj = injective(c.shape, c.strides[1]);
  const dense = inj && dHi - dLo + 1 === n;
  const p = program("copyStrided");
  const bs = p.input(src, sLo, sHi - sLo + 1, `source of a strided copy over ${fmtShape(shape)}`);
  const bd = p.output(
    dst,
    dLo,
    dHi - dLo + 1,
    accumulate || !dense,
    `destination of a strided copy over ${fmtShape(shape)}`,
  );
  const mode = !accumulate ? "copy" : inj ? "add" : "atomic";
  const params = [n, c.shape.length, srcOffset - sLo, dstOffset - dLo];
  params.push(...padTo(c.shape, 6), ...padTo(c.strides[0], 6), ...padTo(c.strides[1], 6));
  // Negative strides/offsets travel as i32 bits.
  const bits = Array.from(new Uint32Array(Int32Array.from(params).buffer));
  p.step(`copyStrided:${mode}`, () => K.copyStridedSource(mode), bits, [bs], [bd], grid(n));
  p.run();
}

/** Validate indices on the host (they live there) with the CPU backend's message, as i32. */
function indices(index: IndexArray, len: number, n: number, op: string): Int32Array {
  const out = new Int32Array(len);
  for (let i = 0; i < len; i++) {
    const v = index[i];
    if (!(v >= 0 && v < n) || v !== Math.floor(v)) {
      throw new RangeError(`${op}: index ${v} out of range for an axis of size ${n}`);
    }
    out[i] = v;
  }
  return out;
}

function gather(
  x: Float32Array,
  outer: number,
  n: number,
  inner: number,
  index: IndexArray,
  m: number,
  out: Float32Array,
): void {
  const total = outer * m * inner;
  if (total === 0) return;
  const idx = indices(index, total, n, "gather");
  const p = program("gather");
  const bx = p.input(x, 0, outer * n * inner, `input [${outer},${n},${inner}]`);
  const bi = p.input(idx, 0, total, `index [${outer},${m},${inner}]`);
  const bo = p.output(out, 0, total, false, `output [${outer},${m},${inner}]`);
  p.step("gather", K.gatherSource, [total, m, n, inner], [bx, bi], [bo], grid(total));
  p.run();
}

function scatterAdd(
  g: Float32Array,
  outer: number,
  n: number,
  inner: number,
  index: IndexArray,
  m: number,
  gx: Float32Array,
): void {
  const total = outer * n * inner, len = outer * m * inner;
  if (total === 0 || len === 0) return;
  const idx = indices(index, len, n, "gather");
  const p = program("scatterAdd");
  const bg = p.input(g, 0, len, `gradient [${outer},${m},${inner}]`);
  const bi = p.input(idx, 0, len, `index [${outer},${m},${inner}]`);
  const bo = p.output(gx, 0, total, true, `input gradient [${outer},${n},${inner}]`);
  p.step("scatterAdd", K.scatterAddSource, [total, m, n, inner], [bg, bi], [bo], grid(total));
  p.run();
}

function logSoftmax(x: Float32Array, outer: number, n: number, inner: number, out: Float32Array): void {
  const rows = outer * inner, len = outer * n * inner;
  if (len === 0) return;
  const p = program("logSoftmax");
  const bx = p.input(x, 0, len, `input [${outer},${n},${inner}]`);
  const bo = p.output(out, 0, len, false, `output [${outer},${n},${inner}]`);
  p.step("logSoftmax", K.logSoftmaxSource, [rows, n, inner], [bx], [bo], grid(rows));
  p.run();
}

function logSoftmaxGrad(
  y: Float32Array,
  gy: Float32Array,
  outer: number,
  n: number,
  inner: number,
  gx: Float32Array,
): void {
  const rows = outer * inner, len = outer * n * inner;
  if (len === 0) return;
  const p = program("logSoftmax backward");
  const what = `[${outer},${n},${inner}]`;
  const by = p.input(y, 0, len, what), bg = p.input(gy, 0, len, what);
  const bo = p.output(gx, 0, len, true, what);
  p.step("logSoftmaxGrad", K.logSoftmaxGradSource, [rows, n, inner], [by, bg], [bo], grid(rows));
  p.run();
}

/**
 * The WebGPU backend instance (registered as `"webgpu"`). The device starts on first use; `useBackend("webgpu")`
 * starts it eagerly so a missing adapter fails at selection time.
 *
 * @example
 * ```ts
 * import { webgpuBackend } from "./webgpu.ts";
 * const c = new Float32Array(4);
 * webgpuBackend.gemm(false, false, 2, 2, 1, 1, new Float32Array([1, 2]), new Float32Array([3, 4]), 0, c);
 * console.log(c); // [3, 4, 6, 8]
 * ```
 */
export const webgpuBackend: Backend = {
  name: "webgpu",
  unary,
  unaryGrad,
  binary,
  where,
  sumTo,
  reduce,
  gemm,
  im2col,
  col2im,
  copyStrided,
  gather,
  scatterAdd,
  logSoftmax,
  logSoftmaxGrad,
};

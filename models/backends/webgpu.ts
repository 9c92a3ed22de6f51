/**
 * The WebGPU backend: every primitive of `primitives.ts` as WGSL compute shaders (`webgpu/kernels.ts`).
 *
 * Execution is deferred and tensors are device-resident. The `Backend` interface stays synchronous over host
 * `Float32Array`s, but those arrays are only names here: every host region (a whole non-shared `ArrayBuffer`, so
 * `subarray` views share it, or one view of a `SharedArrayBuffer`) maps to a device buffer plus two flags, "host copy
 * current" and "device copy current". A primitive call uploads the inputs the device lacks (a snapshot taken at call
 * time), marks its outputs device-only, and appends its dispatches to a batch; nothing runs yet. The batch goes to
 * the device worker (`webgpu/_worker.ts`) as one compute pass and one submit only when the host needs values:
 * `Tensor.data`/`item()`/`toArray()` call `sync`, which reads back, with one wait, just the arrays asked for. So a
 * training step (forward, backward, gradient clipping and the optimizer update, all primitives) costs one submit and
 * one readback (the loss), and weights, gradients and optimizer state never leave the device.
 *
 * Ownership: an array no kernel has written is a host input (observations, targets, a minibatch buffer that host code
 * refills in place without telling anyone), so each call that reads it uploads a fresh snapshot. Once a kernel writes
 * an array (activations, gradients, weights after their first update, optimizer state), or `prefetch` moves it
 * (`toBackend(…, "webgpu")`; do that once for an inference-only model, whose weights no kernel writes), the device
 * owns it until the host takes it back through `Tensor.data`; its next device use then uploads it into a fresh buffer
 * (uploads land before the batch's pass, so earlier steps of the batch keep reading the old one).
 *
 * Why this shape: WebGPU readback is asynchronous and each wait costs ~11.7 ms in Deno 2.9 (`bench/webgpu_bench.ts`),
 * whatever the work, so the cost model is "waits per step". The device lives in a Worker because the main thread must
 * block (`Atomics.wait`) until a readback lands in the shared arena. Device buffers of host arrays the garbage
 * collector took return to the worker's size-class pool with the next batch (a `FinalizationRegistry`, so only when
 * the event loop turns: a loop that never awaits keeps them, and a warning says so past 4 GiB), scratch buffers
 * recycled by `pool.ts` keep theirs, and pipelines are cached by kernel key, so a steady-state step allocates no GPU
 * buffers and compiles no shaders. WebGPU forbids binding one buffer read-only and writable in one dispatch: in-place
 * unary and accumulating binary calls bind the output once; other aliasing reads a device copy.
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
  /** Backend primitive calls recorded. */
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
  /** Generation of this worker (device state recorded under another one is gone). */
  gen: number;
  nextId: number;
}
let generation = 0;

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
    gen: ++generation,
    nextId: 0,
  };
  batch = emptyBatch();
  pendingFrees = [];
  idBytes.clear();
  heldBytes = 0;
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
 * webgpuBackend.unary("relu", x, x, 0, 0); // recorded
 * webgpuBackend.sync!(x, false); // one submit, one readback
 * console.log(webgpuStats().readbacks - before.readbacks, x); // 1 [1, 0]
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
  batch = emptyBatch();
  pendingFrees = [];
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
// Device-resident arrays and the recorded batch

/**
 * Device state of one host region: a whole non-shared `ArrayBuffer` (so `subarray` views share it), or one view of
 * a `SharedArrayBuffer` (those are host-owned frames and slots, often views into a much larger buffer).
 */
interface Entry {
  /** Device buffer id, or -1 before the first use. */
  id: number;
  /** Region size in bytes. */
  bytes: number;
  /** The host copy holds the current values. */
  host: boolean;
  /** The device copy holds the current values. */
  device: boolean;
  /**
   * The device owns the values: a kernel wrote them (or `prefetch` moved them). Until then the array is a host input
   * that host code may refill in place without telling anyone (a reused observation or minibatch buffer), so every
   * call that reads it uploads a fresh snapshot, as a per-call backend would.
   */
  owned: boolean;
  /** Runtime generation the id belongs to (a restarted worker has none of the old buffers). */
  gen: number;
}

interface Region {
  key: object;
  buffer: ArrayBufferLike;
  /** Byte offset of the region in `buffer`. */
  start: number;
  bytes: number;
}

const entries = new WeakMap<object, Entry>();
/** Device buffers of host arrays the garbage collector took, returned to the pool with the next batch. */
let pendingFrees: number[] = [];
const finalizer = new FinalizationRegistry<Entry>((e) => {
  if (rt && e.gen === rt.gen && e.id >= 0) pendingFrees.push(e.id);
});

function regionOf(arr: Float32Array | Int32Array): Region {
  if (arr.buffer instanceof SharedArrayBuffer) {
    return { key: arr, buffer: arr.buffer, start: arr.byteOffset, bytes: arr.byteLength };
  }
  return { key: arr.buffer, buffer: arr.buffer, start: 0, bytes: arr.buffer.byteLength };
}

function entryOf(reg: Region, create: boolean): Entry | null {
  let e = entries.get(reg.key) ?? null;
  if (e && e.gen !== rt!.gen) e = null; // buffers of a stopped worker are gone: the host copy is all there is
  if (!e && create) {
    e = { id: -1, bytes: reg.bytes, host: true, device: false, owned: false, gen: rt!.gen };
    entries.set(reg.key, e);
    finalizer.register(reg.key, e);
  }
  return e;
}

/** Work recorded since the last flush: it runs as one compute pass and one submit. */
interface Batch {
  allocs: number[];
  uploads: number[];
  steps: StepSpec[];
  params: Uint32Array;
  frees: number[];
  arenaBytes: number;
  calls: number;
  ops: Set<string>;
}

function emptyBatch(): Batch {
  return {
    allocs: [],
    uploads: [],
    steps: [],
    params: batchParams,
    frees: [],
    arenaBytes: 0,
    calls: 0,
    ops: new Set(),
  };
}
let batchParams = new Uint32Array(64 * 256);
let batch: Batch = emptyBatch();
/** Flush without a readback past these sizes, so a long loop that never reads values keeps bounded memory. */
const MAX_BATCH_STEPS = 16384;
const MAX_BATCH_ARENA = 256 << 20;

function arenaSlot(bytes: number): number {
  const r = rt!;
  const off = batch.arenaBytes;
  batch.arenaBytes += Math.ceil(bytes / ALIGN) * ALIGN;
  if (r.arena.byteLength < batch.arenaBytes) {
    const grown = new SharedArrayBuffer(Math.max(batch.arenaBytes, r.arena.byteLength * 2));
    new Uint8Array(grown).set(new Uint8Array(r.arena, 0, off));
    r.arena = grown;
    r.arenaSent = false;
  }
  return off;
}

/** Bytes of every live device buffer id, to warn when dropped tensors' buffers pile up. */
const idBytes = new Map<number, number>();
let heldBytes = 0;
let heldWarned = false;
const HELD_WARN_BYTES = 4 * 1024 ** 3;

function newId(bytes: number): number {
  const id = rt!.nextId++;
  const b = Math.max(4, bytes);
  batch.allocs.push(id, b);
  idBytes.set(id, b);
  heldBytes += b;
  if (heldBytes > HELD_WARN_BYTES && !heldWarned) {
    heldWarned = true;
    console.warn(
      `arcadia webgpu: ${fmtBytes(heldBytes)} of device buffers are held; buffers of dropped tensors return to the ` +
        "pool only when the event loop turns (FinalizationRegistry): await between training steps " +
        "(e.g. `await new Promise((r) => setTimeout(r, 0))`)",
    );
  }
  return id;
}

/** Copy the host region into a fresh device buffer (uploads land before the batch's pass: see `ExecMessage`). */
function upload(e: Entry, reg: Region): void {
  if (e.id >= 0) batch.frees.push(e.id);
  e.id = newId(reg.bytes);
  if (reg.bytes > 0) {
    const off = arenaSlot(reg.bytes);
    new Uint8Array(rt!.arena, off, reg.bytes).set(new Uint8Array(reg.buffer, reg.start, reg.bytes));
    batch.uploads.push(e.id, off, reg.bytes);
  }
  e.device = true;
}

/** Send the batch (if any) and read back `reads` into their host regions: one submit, at most one readback wait. */
function flush(reads: [Entry, Region][]): void {
  const r = rt;
  if (!r) return;
  const frees = pendingFrees.length > 0 ? batch.frees.concat(pendingFrees) : batch.frees;
  pendingFrees = [];
  if (batch.steps.length === 0 && batch.uploads.length === 0 && reads.length === 0) {
    batch.frees = frees; // nothing to run: keep them for the next batch
    return;
  }
  for (const id of frees) {
    heldBytes -= idBytes.get(id) ?? 0;
    idBytes.delete(id);
  }
  const readbacks: number[] = [];
  for (const [e, reg] of reads) readbacks.push(e.id, arenaSlot(reg.bytes), reg.bytes);
  const b = batch;
  batch = emptyBatch();
  const msg: ExecMessage = {
    type: "exec",
    allocs: b.allocs,
    uploads: b.uploads,
    params: b.params.slice(0, b.steps.length * 64),
    steps: b.steps,
    readbacks,
    frees,
  };
  if (!r.arenaSent) {
    msg.arena = r.arena;
    r.arenaSent = true;
  }
  Atomics.store(r.ctrl, CTRL.status, STATUS.pending);
  r.worker.postMessage(msg);
  const waited = Atomics.wait(r.ctrl, CTRL.status, STATUS.pending, WAIT_MS);
  const status = Atomics.load(r.ctrl, CTRL.status);
  if (waited === "timed-out" || status !== STATUS.ok) {
    const m = status === STATUS.error ? readMessage(r) : { detail: `no answer in ${WAIT_MS / 1000} s` };
    // A failed batch may have left sources uncompiled; resend them next time.
    for (const s of b.steps) if (s.source !== undefined) r.sent.delete(s.key);
    throw new Error(`webgpu (batch of ${b.calls} calls: ${[...b.ops].join(", ")}): ${m.detail}`);
  }
  for (let i = 0; i < reads.length; i++) {
    const [e, reg] = reads[i];
    if (reg.bytes > 0) {
      new Uint8Array(reg.buffer, reg.start, reg.bytes).set(new Uint8Array(r.arena, readbacks[3 * i + 1], reg.bytes));
    }
    e.host = true;
  }
}

function syncOne(arr: Float32Array, write: boolean): void {
  // Called on every host access of a tensor: look up without building a Region.
  const e = entries.get(arr.buffer instanceof SharedArrayBuffer ? arr : arr.buffer);
  if (!e || e.gen !== rt!.gen) return;
  if (!e.host) flush([[e, regionOf(arr)]]);
  if (write) {
    // The host takes it over: a host input again, uploaded (to a fresh buffer) by each call that reads it.
    e.device = false;
    e.owned = false;
  }
}

/**
 * Make `arrays` current on the host: flushes the recorded work in one submit and reads back, with one wait, only the
 * arrays whose newest values are on the device. With `write` the host takes them over (see `Backend.sync`).
 */
function sync(arrays: Float32Array | readonly Float32Array[], write: boolean): void {
  if (!rt) return;
  if (arrays instanceof Float32Array) {
    syncOne(arrays, write);
    return;
  }
  const reads: [Entry, Region][] = [];
  const seen = new Set<Entry>();
  for (const a of arrays) {
    const reg = regionOf(a);
    const e = entryOf(reg, false);
    if (e && !e.host && !seen.has(e)) {
      seen.add(e);
      reads.push([e, reg]);
    }
  }
  if (reads.length > 0) flush(reads);
  if (write) { for (const a of arrays) syncOne(a, true); }
}

/** Upload the host values of `arrays` that the device lacks, in one submit. */
function prefetch(arrays: readonly Float32Array[]): void {
  startWebGpu();
  for (const a of arrays) {
    const reg = regionOf(a);
    const e = entryOf(reg, true)!;
    if (!e.device || !e.owned) upload(e, reg);
    e.owned = true;
  }
  flush([]);
}

/**
 * Send everything recorded so far to the device (one submit) without reading anything back.
 *
 * @example
 * ```ts
 * import { flushWebGpu } from "./webgpu.ts";
 * flushWebGpu(); // no-op when nothing is recorded
 * ```
 */
export function flushWebGpu(): void {
  if (rt) flush([]);
}

// ---------------------------------------------------------------------------------------------------------------
// Calls: the buffers and dispatches of one primitive call, recorded into the batch

const ALIGN = 256;

/** A buffer a call binds: an array range it reads or writes, or a device-only temporary. */
interface Slot {
  arr: Float32Array | Int32Array | null;
  lo: number;
  len: number;
  write: boolean;
  load: boolean;
  what: string;
  /** Resolved at `run`: device buffer id and the element index of `arr[lo]` in it. */
  id: number;
  base: number;
}

interface StepDraft {
  build: (base: number[]) => { key: string; source: () => string; params: number[] };
  reads: number[];
  writes: number[];
  groups: number[];
  offsets: boolean;
}

function copyParams(n: number, srcOff: number, dstOff: number): number[] {
  return [n, 1, srcOff, dstOff, n, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
}

class Call {
  readonly slots: Slot[] = [];
  readonly #steps: StepDraft[] = [];
  readonly #info: WebGpuInfo;
  constructor(readonly op: string) {
    this.#info = startWebGpu();
  }

  #check(bytes: number, what: string): void {
    const limit = this.#info.maxStorageBufferBindingSize;
    if (bytes > limit) {
      throw new Error(
        `webgpu ${this.op}: ${what} needs ${fmtBytes(bytes)}, over this adapter's maxStorageBufferBindingSize of ` +
          `${fmtBytes(limit)} (${this.#info.description}); use a smaller batch or the cpu backend`,
      );
    }
  }

  #slot(arr: Float32Array | Int32Array | null, lo: number, len: number, write: boolean, load: boolean, what: string) {
    this.#check(arr ? regionOf(arr).bytes : len * 4, what);
    this.slots.push({ arr, lo, len, write, load, what, id: -1, base: 0 });
    return this.slots.length - 1;
  }

  /** Read `arr[lo, lo + len)`; returns the slot index. */
  input(arr: Float32Array | Int32Array, lo: number, len: number, what: string): number {
    return this.#slot(arr, lo, len, false, false, what);
  }

  /** Write `arr[lo, lo + len)`; `load`: the kernel reads the old contents too (accumulation). */
  output(arr: Float32Array, lo: number, len: number, load: boolean, what: string): number {
    return this.#slot(arr, lo, len, true, load, what);
  }

  /** A device-only scratch buffer of `len` floats, freed with the batch. */
  temp(len: number, what: string): number {
    return this.#slot(null, 0, len, true, false, what);
  }

  /** A kernel indexing its buffers from 0 (slots that do not start a device buffer are staged through a copy). */
  step(key: string, source: () => string, params: number[], reads: number[], writes: number[], groups: number[]) {
    this.#steps.push({ build: () => ({ key, source, params }), reads, writes, groups, offsets: false });
  }

  /** A kernel that takes element offsets of its buffers as parameters: `build` gets `base[slot]`. */
  stepWithOffsets(build: StepDraft["build"], reads: number[], writes: number[], groups: number[]) {
    this.#steps.push({ build, reads, writes, groups, offsets: true });
  }

  #resolve(s: Slot): void {
    if (!s.arr) {
      s.id = newId(s.len * 4);
      batch.frees.push(s.id);
      s.base = 0;
      return;
    }
    const reg = regionOf(s.arr);
    const e = entryOf(reg, true)!;
    const base = (s.arr.byteOffset - reg.start) / 4 + s.lo;
    if (!e.device || !e.owned) {
      const whole = base === 0 && s.len * 4 === reg.bytes;
      if (!s.write || s.load || !whole) upload(e, reg);
      else {
        // Fully overwritten: a fresh buffer, no upload.
        if (e.id >= 0) batch.frees.push(e.id);
        e.id = newId(reg.bytes);
        e.device = true;
      }
    }
    if (s.write) {
      e.host = false;
      e.owned = true;
    }
    s.id = e.id;
    s.base = base;
  }

  #emit(key: string, source: () => string, params: number[], binds: number[], reads: number, groups: number[]): void {
    const r = rt!;
    const i = batch.steps.length;
    if ((i + 1) * 64 > batch.params.length) {
      const grown = new Uint32Array(batch.params.length * 2);
      grown.set(batch.params);
      batch.params = batchParams = grown;
    }
    batch.params.fill(0, i * 64, (i + 1) * 64);
    for (let k = 0; k < params.length; k++) batch.params[i * 64 + k] = params[k] >>> 0;
    const step: StepSpec = { key, binds, reads, groups: [groups[0], groups[1] ?? 1, groups[2] ?? 1] };
    if (!r.sent.has(key)) {
      step.source = source();
      r.sent.add(key);
    }
    batch.steps.push(step);
  }

  /** Copy `len` floats between device buffers (staging). */
  #copy(src: number, srcOff: number, dst: number, dstOff: number, len: number): void {
    this.#emit(
      "copyStrided:copy",
      () => K.copyStridedSource("copy"),
      copyParams(len, srcOff, dstOff),
      [src, dst],
      1,
      grid(len),
    );
  }

  #stage(s: Slot, copyIn: boolean): [number, number] {
    const id = newId(s.len * 4);
    batch.frees.push(id);
    if (copyIn) this.#copy(s.id, s.base, id, 0, s.len);
    return [id, 0];
  }

  run(): void {
    // Reads first: a kernel that overwrites an array it also reads must see the uploaded values.
    for (const s of this.slots) if (!s.write) this.#resolve(s);
    for (const s of this.slots) if (s.write) this.#resolve(s);
    for (const st of this.#steps) {
      const ids: number[] = this.slots.map((s) => s.id), base = this.slots.map((s) => s.base);
      const writeIds = new Set(st.writes.map((w) => ids[w]));
      const after: [number, number][] = []; // staged writes to copy back: [slot, temp id]
      for (const rd of st.reads) {
        // A buffer bound read-only and writable in one dispatch fails validation: read a copy.
        if (writeIds.has(ids[rd]) || (!st.offsets && base[rd] !== 0)) {
          [ids[rd], base[rd]] = this.#stage(this.slots[rd], true);
        }
      }
      for (const w of st.writes) {
        if (!st.offsets && base[w] !== 0) {
          const s = this.slots[w];
          [ids[w], base[w]] = this.#stage(s, s.load);
          after.push([w, ids[w]]);
        }
      }
      const { key, source, params } = st.build(base);
      this.#emit(
        key,
        source,
        params,
        [...st.reads.map((k) => ids[k]), ...st.writes.map((k) => ids[k])],
        st.reads.length,
        st.groups,
      );
      for (const [w, tmp] of after) {
        const s = this.slots[w];
        this.#copy(tmp, 0, s.id, s.base, s.len);
      }
    }
    rt!.calls++;
    batch.calls++;
    batch.ops.add(this.op);
    if (batch.steps.length >= MAX_BATCH_STEPS || batch.arenaBytes >= MAX_BATCH_ARENA) flush([]);
  }
}

/** Whether the host copy of `arr` is current (false only when the device computed newer values). */
function hostCurrent(arr: Float32Array | Int32Array): boolean {
  if (!rt) return true;
  const e = entryOf(regionOf(arr), false);
  return !e || e.host;
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

function program(op: string): Call {
  return new Call(op);
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
  const params = [n, f32bits(p0), f32bits(p1)];
  if (sameView(x, out)) {
    // In place (activations applied to a layer's fresh output): one read-write binding, no staging copy.
    const io = p.output(out, 0, n, true, `input/output [${n}]`);
    p.step(`unary:${op}:inplace`, () => K.unarySource(op, true), params, [], [io], grid(n));
  } else {
    const ix = p.input(x, 0, n, `input [${n}]`);
    const io = p.output(out, 0, n, false, `output [${n}]`);
    p.step(`unary:${op}`, () => K.unarySource(op), params, [ix], [io], grid(n));
  }
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

/** Whether two arrays are the same elements of the same memory. */
function sameView(a: Float32Array, b: Float32Array): boolean {
  return a.buffer === b.buffer && a.byteOffset === b.byteOffset && a.length === b.length;
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
  const same = sameShape(aShape, outShape) && sameShape(bShape, outShape);
  const inA = same && sameView(a, out), inB = same && sameView(b, out);
  if (inA !== inB) {
    // Accumulation in place (`gx = gx + gy`): bind `out` once, read-write.
    const other = inA ? b : a;
    const bx = p.input(other, 0, n, `operand ${fmtShape(outShape)}`);
    const bo = p.output(out, 0, n, true, `input/output ${fmtShape(outShape)}`);
    const which = inA ? "a" : "b";
    p.step(`binary:${op}:inplace:${which}`, () => K.binarySource(op, true, which), [n], [bx], [bo], grid(n));
    p.run();
    return;
  }
  const ba = p.input(a, 0, shapeSize(aShape), `operand ${fmtShape(aShape)}`);
  const bb = p.input(b, 0, shapeSize(bShape), `operand ${fmtShape(bShape)}`);
  const bo = p.output(out, 0, n, false, `output ${fmtShape(outShape)}`);
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
  p.stepWithOffsets(
    (base) => {
      // vec4 loads need the operand's leading dimension and offset in whole vec4s.
      const vecA = kind === "blocked" && lda % 4 === 0 && base[ba] % 4 === 0;
      const vecB = kind === "blocked" && ldb % 4 === 0 && base[bb] % 4 === 0;
      return {
        key: `gemm:${kind}:${transA}:${transB}:${vecA}:${vecB}`,
        source: kind === "tiled"
          ? () => K.gemmTiledSource(transA, transB)
          : () => K.gemmBlockedSource(transA, transB, vecA, vecB),
        params: [m, n, k, lda, ldb, ldc, f32bits(alpha), beta === 0 ? 0 : f32bits(beta), base[ba], base[bb], base[bc]],
      };
    },
    [ba, bb],
    [bc],
    groups,
  );
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
  p.stepWithOffsets(
    (base) => {
      const params = [n, c.shape.length, base[bs] + srcOffset - sLo, base[bd] + dstOffset - dLo];
      params.push(...padTo(c.shape, 6), ...padTo(c.strides[0], 6), ...padTo(c.strides[1], 6));
      // Negative strides travel as i32 bits (`>>> 0` when packed).
      return { key: `copyStrided:${mode}`, source: () => K.copyStridedSource(mode), params };
    },
    [bs],
    [bd],
    grid(n),
  );
  p.run();
}

/**
 * Check host indices with the CPU backend's message; returns whether the kernel reads them as floats. Indices that
 * the device computed (argmax) are valid by construction and stay there unchecked.
 */
function checkIndices(index: IndexArray, len: number, n: number, op: string): boolean {
  if (index instanceof Float32Array && !hostCurrent(index)) return true;
  for (let i = 0; i < len; i++) {
    const v = index[i];
    if (!(v >= 0 && v < n) || v !== Math.floor(v)) {
      throw new RangeError(`${op}: index ${v} out of range for an axis of size ${n}`);
    }
  }
  return index instanceof Float32Array;
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
  const f = checkIndices(index, total, n, "gather");
  const p = program("gather");
  const bx = p.input(x, 0, outer * n * inner, `input [${outer},${n},${inner}]`);
  const bi = p.input(index, 0, total, `index [${outer},${m},${inner}]`);
  const bo = p.output(out, 0, total, false, `output [${outer},${m},${inner}]`);
  p.step(`gather:${f}`, () => K.gatherSource(f), [total, m, n, inner], [bx, bi], [bo], grid(total));
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
  const f = checkIndices(index, len, n, "gather");
  const p = program("scatterAdd");
  const bg = p.input(g, 0, len, `gradient [${outer},${m},${inner}]`);
  const bi = p.input(index, 0, len, `index [${outer},${m},${inner}]`);
  const bo = p.output(gx, 0, total, true, `input gradient [${outer},${n},${inner}]`);
  p.step(`scatterAdd:${f}`, () => K.scatterAddSource(f), [total, m, n, inner], [bg, bi], [bo], grid(total));
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

function fill(out: Float32Array, value: number): void {
  const n = out.length;
  if (n === 0) return;
  const p = program("fill");
  const bo = p.output(out, 0, n, false, `output [${n}]`);
  p.step("fill", K.fillSource, [n, f32bits(value)], [], [bo], grid(n));
  p.run();
}

function adamStep(
  x: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  beta1: number,
  beta2: number,
  stepSize: number,
  bc2Sqrt: number,
  eps: number,
  weightDecay: number,
): void {
  const n = x.length;
  if (n === 0) return;
  const p = program("adamStep");
  const what = `parameter [${n}]`;
  const bg = p.input(g, 0, n, what);
  const bx = p.output(x, 0, n, true, what), bm = p.output(m, 0, n, true, what), bv = p.output(v, 0, n, true, what);
  const params = [n, f32bits(1 - beta1), f32bits(beta2), f32bits(stepSize), f32bits(1 / bc2Sqrt), f32bits(eps)];
  params.push(f32bits(weightDecay), f32bits(1 - beta2));
  p.step("adam", K.adamSource, params, [bg], [bx, bm, bv], grid(n));
  p.run();
}

function rmspropStep(
  x: Float32Array,
  g: Float32Array,
  squareAvg: Float32Array,
  gradAvg: Float32Array | null,
  momentumBuf: Float32Array | null,
  lr: number,
  alpha: number,
  eps: number,
  weightDecay: number,
  momentum: number,
): void {
  const n = x.length;
  if (n === 0) return;
  const p = program("rmspropStep");
  const what = `parameter [${n}]`;
  const bg = p.input(g, 0, n, what);
  const writes = [p.output(x, 0, n, true, what), p.output(squareAvg, 0, n, true, what)];
  if (gradAvg) writes.push(p.output(gradAvg, 0, n, true, what));
  if (momentumBuf) writes.push(p.output(momentumBuf, 0, n, true, what));
  const c = gradAvg !== null, mo = momentumBuf !== null;
  const params = [n, f32bits(lr), f32bits(alpha), f32bits(eps), f32bits(weightDecay), f32bits(momentum)];
  params.push(f32bits(1 - alpha));
  p.step(`rmsprop:${c}:${mo}`, () => K.rmspropSource(c, mo), params, [bg], writes, grid(n));
  p.run();
}

function sgdStep(
  x: Float32Array,
  g: Float32Array,
  momentumBuf: Float32Array | null,
  lr: number,
  momentum: number,
  dampening: number,
  weightDecay: number,
  nesterov: boolean,
  first: boolean,
): void {
  const n = x.length;
  if (n === 0) return;
  const p = program("sgdStep");
  const what = `parameter [${n}]`;
  const bg = p.input(g, 0, n, what);
  const writes = [p.output(x, 0, n, true, what)];
  if (momentumBuf) writes.push(p.output(momentumBuf, 0, n, true, what));
  const mo = momentumBuf !== null;
  const params = [n, f32bits(lr), f32bits(momentum), f32bits(1 - dampening), f32bits(weightDecay), first ? 1 : 0];
  p.step(`sgd:${mo}:${nesterov}`, () => K.sgdSource(mo, nesterov), params, [bg], writes, grid(n));
  p.run();
}

/** Workgroups of the sum-of-squares pass over `n` values (each thread sums ≥ 16 values, at most 64 groups). */
function sumSquaresGroups(n: number): number {
  return Math.max(1, Math.min(64, Math.ceil(n / (K.WG * 16))));
}

function clipGradNorm(grads: readonly Float32Array[], maxNorm: number, norm: Float32Array): void {
  if (norm.length < 1) throw new Error("clipGradNorm: norm needs one element");
  const list = grads.filter((g) => g.length > 0);
  const p = program("clipGradNorm");
  const slots = list.map((g) => p.output(g, 0, g.length, true, `gradient [${g.length}]`));
  const total = list.reduce((s, g) => s + sumSquaresGroups(g.length), 0);
  const partial = p.temp(Math.max(1, total), "partial sums of squares");
  const coef = p.temp(1, "clipping coefficient");
  const bn = p.output(norm, 0, 1, false, "norm");
  let off = 0;
  list.forEach((g, i) => {
    const G = sumSquaresGroups(g.length);
    p.step("sumSquares", K.sumSquaresSource, [g.length, G, off], [slots[i]], [partial], [G]);
    off += G;
  });
  if (total === 0) p.step("fill", K.fillSource, [1, 0], [], [partial], [1]);
  p.step("clipCoef", K.clipCoefSource, [Math.max(1, total), f32bits(maxNorm)], [partial], [bn, coef], [1]);
  list.forEach((g, i) => p.step("scaleBy", K.scaleBySource, [g.length], [coef], [slots[i]], grid(g.length)));
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
 * webgpuBackend.sync!(c, false); // the call was recorded: read the result back
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
  fill,
  adamStep,
  rmspropStep,
  sgdStep,
  clipGradNorm,
  sync,
  prefetch,
};

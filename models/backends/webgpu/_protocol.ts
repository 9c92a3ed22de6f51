/**
 * Messages and shared-memory layout between the main thread (`../webgpu.ts`) and the device worker (`_worker.ts`).
 *
 * @module
 */

/** Slots of the control `Int32Array`. */
export const CTRL = { status: 0, msgLength: 1 } as const;

/** Values of `CTRL.status`. */
export const STATUS = { pending: 0, ok: 1, error: 2 } as const;

/** Slots of the shared statistics `Float64Array` (counters since the worker started). */
export const STAT = {
  submits: 0,
  readbacks: 1,
  dispatches: 2,
  bufferAllocs: 3,
  pipelineCompiles: 4,
  uploadBytes: 5,
  readbackBytes: 6,
} as const;

/** Number of statistics slots. */
export const STAT_COUNT = 7;

/** Start the device. */
export interface InitMessage {
  type: "init";
  ctrl: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  msg: SharedArrayBuffer;
}

/** One compute dispatch. */
export interface StepSpec {
  /** Pipeline cache key. */
  key: string;
  /** WGSL, sent only the first time a key is used. */
  source?: string;
  /** Buffer ids bound read-only at bindings 1.., then read-write ones after them. */
  binds: number[];
  /** How many of `binds` are read-only. */
  reads: number;
  /** Workgroup counts. */
  groups: [number, number, number];
}

/**
 * A batch of recorded work, run as one compute pass and one submit. Device buffers are named by ids the main thread
 * hands out; each upload goes to a freshly allocated id (uploads land before the pass, so reusing an id that earlier
 * steps of the batch read would change what they see).
 */
export interface ExecMessage {
  type: "exec";
  /** A new arena when the main thread had to grow it. */
  arena?: SharedArrayBuffer;
  /** `[id, bytes]` pairs to allocate before anything else. */
  allocs: number[];
  /** `[id, arenaByteOffset, bytes]` triples written before the pass. */
  uploads: number[];
  /** 64 u32 parameters per step, bound read-only at binding 0 (256-byte slots). */
  params: Uint32Array;
  steps: StepSpec[];
  /** `[id, arenaByteOffset, bytes]` triples copied back into the arena after the pass (one wait for all). */
  readbacks: number[];
  /** Ids returned to the pool after the submit. */
  frees: number[];
}

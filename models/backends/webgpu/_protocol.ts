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

/** One GPU buffer of a program. */
export interface BufSpec {
  /** Bytes used (the pooled buffer may be larger). */
  bytes: number;
  /** Arena byte offset to upload from, or -1. */
  upload: number;
  /** Zero-fill when not uploaded. */
  zero: boolean;
  /** Arena byte offset to read the result back into, or -1. */
  readback: number;
}

/** One compute dispatch. */
export interface StepSpec {
  /** Pipeline cache key. */
  key: string;
  /** WGSL, sent only the first time a key is used. */
  source?: string;
  /** Up to 64 u32 parameters, bound read-only at binding 0. */
  params: Uint32Array;
  /** Buffer indices bound read-only at bindings 1.. */
  reads: number[];
  /** Buffer indices bound read-write after the read-only ones. */
  writes: number[];
  /** Workgroup counts. */
  groups: [number, number, number];
}

/** Run steps in one compute pass, one submit, and read back the marked buffers with one wait. */
export interface ExecMessage {
  type: "exec";
  /** A new arena when the main thread had to grow it. */
  arena?: SharedArrayBuffer;
  bufs: BufSpec[];
  steps: StepSpec[];
}

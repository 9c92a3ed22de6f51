/**
 * The control block shared by `WorkerVectorEnv` and its Workers, and the setup messages.
 *
 * Per step nothing is posted: the main thread writes a command and bumps the worker's sequence counter (the worker
 * sleeps in `Atomics.wait` on it); each worker, when done, decrements one shared `pending` counter, and the last one
 * wakes the main thread. Errors inside the loop are written as JSON into the worker's error area, so the main thread
 * can read them synchronously (also while it blocks in `close()`). postMessage is used only during setup.
 *
 * @module
 */

import type { EnvPhase } from "./_block.ts";
import type { SpaceDescription, VectorShape } from "./_layout.ts";

/** Int32 index of the counter of workers still busy with the current command. */
export const PENDING = 0;
/** Int32 slots per worker (64 bytes, so workers' slots do not share a cache line). */
export const SLOT = 16;
/** Offsets inside a worker's slot: command sequence number, command, error flag, error length, last finished sequence number. */
export const SEQ = 0, CMD = 1, STATUS = 2, ERR_LEN = 3, DONE = 4;
/** Commands. */
export const STEP = 1, RESET = 2, CLOSE = 3;
/** Bytes of each worker's error area. */
export const ERR_BYTES = 16384;

/** Views of the control buffer. */
export interface Control {
  buffer: SharedArrayBuffer;
  ints: Int32Array;
  /** `[0]`: the seed of the next reset, NaN for none. */
  seed: Float64Array;
  /** One error area per worker. */
  errors: Uint8Array[];
}

/** Int32 index of worker `w`'s slot. */
export function slot(w: number): number {
  return SLOT * (w + 1);
}

/** Allocates the control buffer for `numWorkers` workers. */
export function allocateControl(numWorkers: number): Control {
  const intsBytes = 4 * slot(numWorkers);
  return viewControl(new SharedArrayBuffer(intsBytes + 8 + numWorkers * ERR_BYTES), numWorkers);
}

/** Views of a control buffer made by `allocateControl(numWorkers)`. */
export function viewControl(buffer: SharedArrayBuffer, numWorkers: number): Control {
  const intsBytes = 4 * slot(numWorkers);
  const errors: Uint8Array[] = [];
  for (let w = 0; w < numWorkers; w++) errors.push(new Uint8Array(buffer, intsBytes + 8 + w * ERR_BYTES, ERR_BYTES));
  return {
    buffer,
    ints: new Int32Array(buffer, 0, intsBytes / 4),
    seed: new Float64Array(buffer, intsBytes, 1),
    errors,
  };
}

/** An env error as it crosses threads through the error area. */
export interface ErrorRecord {
  index: number;
  phase: EnvPhase;
  name: string;
  message: string;
  stack?: string;
}

/** Writes `record` into `area` as JSON, shortening the stack and then the message to fit; returns the byte count. */
export function writeErrorRecord(area: Uint8Array, record: ErrorRecord): number {
  const encoder = new TextEncoder();
  let text = JSON.stringify(record);
  if (encoder.encode(text).length > area.length) {
    text = JSON.stringify({ ...record, stack: undefined, message: record.message.slice(0, area.length / 8) });
  }
  return encoder.encodeInto(text, area).written;
}

/** Reads what `writeErrorRecord` wrote. */
export function readErrorRecord(area: Uint8Array, length: number): ErrorRecord {
  try {
    return JSON.parse(new TextDecoder().decode(area.slice(0, length)));
  } catch {
    return { index: -1, phase: "step", name: "Error", message: "(unreadable error record)" };
  }
}

/** Rebuilds the original error (name, message, stack) on this side; it becomes the `cause` of the reported one. */
export function errorFromRecord(record: ErrorRecord): Error {
  const error = record.name === "RangeError"
    ? new RangeError(record.message)
    : record.name === "TypeError"
    ? new TypeError(record.message)
    : new Error(record.message);
  error.name = record.name;
  if (record.stack) error.stack = record.stack;
  return error;
}

/** What the env description the Worker builds its envs from looks like. */
export interface InitMessage {
  type: "init";
  /** Registered env id for `make`. */
  id: string;
  kwargs?: Record<string, unknown>;
  maxEpisodeSteps?: number;
  /** Module URLs imported before `make`, so that their `register` calls run in the Worker. */
  envModules: string[];
  /** Global index of the worker's first env and number of envs. */
  start: number;
  count: number;
}

/** Sent after `init` succeeded: the first env's spaces. */
export interface SpacesMessage {
  type: "spaces";
  observation: SpaceDescription;
  action: SpaceDescription;
}

/** The buffers and where the worker's slot is. */
export interface BuffersMessage {
  type: "buffers";
  data: SharedArrayBuffer;
  control: SharedArrayBuffer;
  shape: VectorShape;
  worker: number;
  numWorkers: number;
}

/** Setup failed: `error` is the original (structured-cloned) error, `index` the env, -1 if none. */
export interface ErrorMessage {
  type: "error";
  index: number;
  phase: "import" | "make";
  error: unknown;
}

/** Messages the main thread sends. */
export type ToWorker = InitMessage | BuffersMessage | { type: "abort" };
/** Messages a worker sends. */
export type FromWorker = SpacesMessage | ErrorMessage | { type: "ready" } | { type: "closed" };

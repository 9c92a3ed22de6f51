/**
 * safetensors read/write and model + optimizer checkpoints.
 *
 * Format: 8-byte little-endian header length `N`, `N` bytes of JSON (`{name: {dtype, shape, data_offsets}}` plus an
 * optional `__metadata__` string map, padded with spaces to 8 bytes), then the raw little-endian tensor bytes.
 * Files are written atomically: temp file in the same directory, fsync, rename.
 *
 * @module
 */

import type { Module } from "./nn.ts";
import type { Optimizer, OptimizerState } from "./optim.ts";
import { syncHost } from "./tensor.ts";

/** Element types supported here. */
export type DType = "F64" | "F32" | "I64" | "I32" | "U8";

/** Typed array matching each dtype (`I64` values are `BigInt64Array`). */
export type DTypeArray = Float64Array | Float32Array | BigInt64Array | Int32Array | Uint8Array;

/** One named array in a safetensors file. */
export interface SafeTensor {
  dtype: DType;
  shape: number[];
  data: DTypeArray;
}

const BYTES: Record<DType, number> = { F64: 8, F32: 4, I64: 8, I32: 4, U8: 1 };

function dtypeOf(data: DTypeArray): DType {
  if (data instanceof Float64Array) return "F64";
  if (data instanceof Float32Array) return "F32";
  if (data instanceof BigInt64Array) return "I64";
  if (data instanceof Int32Array) return "I32";
  return "U8";
}

/** Build a `SafeTensor` from an array and shape (dtype inferred from the array type). */
export function safeTensor(data: DTypeArray, shape: number[]): SafeTensor {
  return { dtype: dtypeOf(data), shape, data };
}

/** The header of a safetensors file (8-byte length + padded JSON) and the tensor order and data size behind it. */
function layoutSafetensors(
  tensors: Record<string, SafeTensor>,
  metadata?: Record<string, string>,
): { head: Uint8Array; names: string[]; dataBytes: number } {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length || dtypeOf(t.data) !== t.dtype) {
      throw new Error(
        `safetensors: '${name}' has ${t.data.length} ${dtypeOf(t.data)} values for ${t.dtype} [${t.shape}]`,
      );
    }
    const bytes = n * BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const head = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  return { head, names, dataBytes: offset };
}

/** The bytes of a typed array, little-endian on the hosts we support (x86, ARM). */
function bytesOf(d: DTypeArray): Uint8Array {
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** Serialize tensors (sorted by name, like the reference implementation) and string metadata. */
export function encodeSafetensors(tensors: Record<string, SafeTensor>, metadata?: Record<string, string>): Uint8Array {
  const { head, names, dataBytes } = layoutSafetensors(tensors, metadata);
  const out = new Uint8Array(head.length + dataBytes);
  out.set(head);
  let pos = head.length;
  for (const name of names) {
    const b = bytesOf(tensors[name].data);
    out.set(b, pos);
    pos += b.length;
  }
  return out;
}

/** Parsed safetensors content. */
export interface SafetensorsFile {
  tensors: Record<string, SafeTensor>;
  metadata: Record<string, string>;
}

interface HeaderEntry {
  name: string;
  dtype: DType;
  shape: number[];
  start: number;
  end: number;
}

/** Checks the JSON header against `dataBytes` of data; throws describing the first malformed entry. */
function parseHeader(
  json: Uint8Array,
  dataBytes: number,
): { entries: HeaderEntry[]; metadata: Record<string, string> } {
  const header = JSON.parse(new TextDecoder().decode(json));
  const entries: HeaderEntry[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const { dtype, shape, data_offsets: [start, end] } = info as {
      dtype: string;
      shape: number[];
      data_offsets: [number, number];
    };
    if (!(dtype in BYTES)) {
      throw new Error(`safetensors: '${name}' has unsupported dtype ${dtype} (F64, F32, I64, I32, U8)`);
    }
    const dt = dtype as DType;
    const count = shape.reduce((a, b) => a * b, 1);
    if (end - start !== count * BYTES[dt] || end > dataBytes) {
      throw new Error(`safetensors: '${name}' offsets [${start}, ${end}] do not fit ${dt} [${shape}]`);
    }
    entries.push({ name, dtype: dt, shape, start, end });
  }
  return { entries, metadata: (header.__metadata__ as Record<string, string>) ?? {} };
}

function typedArray(dtype: DType, buf: ArrayBuffer): DTypeArray {
  return dtype === "F64"
    ? new Float64Array(buf)
    : dtype === "F32"
    ? new Float32Array(buf)
    : dtype === "I64"
    ? new BigInt64Array(buf)
    : dtype === "I32"
    ? new Int32Array(buf)
    : new Uint8Array(buf);
}

/** Parse safetensors bytes; throws describing the first malformed entry. */
export function decodeSafetensors(bytes: Uint8Array): SafetensorsFile {
  if (bytes.length < 8) throw new Error("safetensors: file shorter than its 8-byte header length");
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + n > bytes.length) throw new Error(`safetensors: header length ${n} exceeds file size ${bytes.length}`);
  const base = 8 + n;
  const { entries, metadata } = parseHeader(bytes.subarray(8, base), bytes.length - base);
  const tensors: Record<string, SafeTensor> = {};
  for (const { name, dtype, shape, start, end } of entries) {
    // Copy so the arrays are aligned and independent of the file buffer.
    tensors[name] = { dtype, shape, data: typedArray(dtype, bytes.slice(base + start, base + end).buffer) };
  }
  return { tensors, metadata };
}

/**
 * Write a file atomically: `write` fills a temp file beside `path`, which is then fsynced and renamed over the
 * target, so a crash leaves either the old file or the new one, never a torn one.
 */
async function writeAtomic(path: string, write: (file: Deno.FsFile) => Promise<void>): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    using file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    await write(file);
    await file.sync();
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  await Deno.rename(tmp, path);
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}

/** Write `bytes` to `path` atomically: temp file beside it, fsync, rename over the target. */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  await writeAtomic(path, (file) => writeAll(file, bytes));
}

/**
 * Save tensors to a safetensors file (atomically).
 *
 * @example
 * ```ts
 * import { loadSafetensors, safeTensor, saveSafetensors } from "./checkpoint.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await saveSafetensors(path, { w: safeTensor(new Float32Array([1, 2]), [2]) }, { metadata: { step: "10" } });
 * const { tensors, metadata } = await loadSafetensors(path);
 * ```
 */
export async function saveSafetensors(
  path: string,
  tensors: Record<string, SafeTensor>,
  options: { metadata?: Record<string, string> } = {},
): Promise<void> {
  // Streamed tensor by tensor: a file of gigabytes (a replay buffer) is never assembled in memory.
  const { head, names } = layoutSafetensors(tensors, options.metadata);
  await writeAtomic(path, async (file) => {
    await writeAll(file, head);
    for (const name of names) await writeAll(file, bytesOf(tensors[name].data));
  });
}

/** Read a safetensors file, each tensor straight into its own array (no copy of the whole file in memory). */
export async function loadSafetensors(path: string): Promise<SafetensorsFile> {
  using file = await Deno.open(path, { read: true });
  const size = (await file.stat()).size;
  const readExactly = async (into: Uint8Array, what: string) => {
    let got = 0;
    while (got < into.length) {
      const n = await file.read(into.subarray(got));
      if (n === null) throw new Error(`safetensors: ${path} ends inside ${what}`);
      got += n;
    }
  };
  if (size < 8) throw new Error("safetensors: file shorter than its 8-byte header length");
  const len = new Uint8Array(8);
  await readExactly(len, "the header length");
  const n = Number(new DataView(len.buffer).getBigUint64(0, true));
  if (8 + n > size) throw new Error(`safetensors: header length ${n} exceeds file size ${size}`);
  const json = new Uint8Array(n);
  await readExactly(json, "the header");
  const base = 8 + n;
  const { entries, metadata } = parseHeader(json, size - base);
  const tensors: Record<string, SafeTensor> = {};
  for (const { name, dtype, shape, start, end } of entries.sort((a, b) => a.start - b.start)) {
    const buf = new ArrayBuffer(end - start);
    await file.seek(base + start, Deno.SeekMode.Start);
    await readExactly(new Uint8Array(buf), `'${name}'`);
    tensors[name] = { dtype, shape, data: typedArray(dtype, buf) };
  }
  return { tensors, metadata };
}

/** What a checkpoint holds. */
export interface CheckpointParts {
  /** Parameters saved as `model.<name>`. */
  model: Module;
  /** Optimizer state saved as `optim.<paramIndex>.<buffer>` plus `__metadata__.optim_step`. */
  optimizer?: Optimizer;
  /** Extra string metadata (e.g. `global_step`, run name). */
  metadata?: Record<string, string>;
}

/**
 * Save model weights and optimizer state in one safetensors file (atomically).
 *
 * @example
 * ```ts
 * import { Adam, Linear, loadCheckpoint, saveCheckpoint } from "./mod.ts";
 * const model = new Linear(2, 1);
 * const optimizer = new Adam(model.parameters());
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await saveCheckpoint(path, { model, optimizer, metadata: { global_step: "0" } });
 * const meta = await loadCheckpoint(path, { model, optimizer });
 * ```
 */
export async function saveCheckpoint(path: string, parts: CheckpointParts): Promise<void> {
  const tensors: Record<string, SafeTensor> = {};
  const named = parts.model.namedParameters();
  syncHost(named.map(([, p]) => p.raw)); // one readback on a device backend
  for (const [name, p] of named) tensors[`model.${name}`] = safeTensor(p.raw, [...p.shape]);
  const metadata: Record<string, string> = { format: "arcadia-checkpoint-v1", ...parts.metadata };
  if (parts.optimizer) {
    const state = parts.optimizer.stateDict();
    metadata.optim_step = String(state.step);
    metadata.optim_lr = String(parts.optimizer.lr);
    for (const [k, v] of Object.entries(state.buffers)) {
      const i = Number(k.split(".")[0]);
      tensors[`optim.${k}`] = safeTensor(v, [...parts.optimizer.params[i].shape]);
    }
  }
  await saveSafetensors(path, tensors, { metadata });
}

/**
 * Load a checkpoint into `model` (and `optimizer`), checking names, shapes and dtypes first: on any mismatch nothing
 * is modified and the error lists every missing, unexpected or mismatched tensor. Returns the file's metadata.
 */
export async function loadCheckpoint(
  path: string,
  parts: { model: Module; optimizer?: Optimizer },
): Promise<Record<string, string>> {
  const { tensors, metadata } = await loadSafetensors(path);
  const problems: string[] = [];
  const params = parts.model.namedParameters();
  const expected = new Set(params.map(([n]) => `model.${n}`));
  for (const [name, p] of params) {
    const t = tensors[`model.${name}`];
    if (!t) problems.push(`missing 'model.${name}' (model has [${p.shape}])`);
    else if (t.dtype !== "F32") problems.push(`'model.${name}' has dtype ${t.dtype}, expected F32`);
    else if (t.shape.join(",") !== p.shape.join(",")) {
      problems.push(`'model.${name}' has shape [${t.shape}], model has [${p.shape}]`);
    }
  }
  for (const name of Object.keys(tensors)) {
    if (name.startsWith("model.") && !expected.has(name)) {
      problems.push(`unexpected '${name}' [${tensors[name].shape}]`);
    }
  }
  let optimState: OptimizerState | undefined;
  if (parts.optimizer) {
    const buffers: Record<string, Float32Array> = {};
    for (const [name, t] of Object.entries(tensors)) {
      if (!name.startsWith("optim.")) continue;
      const key = name.slice("optim.".length);
      const p = parts.optimizer.params[Number(key.split(".")[0])];
      if (t.dtype !== "F32") problems.push(`'${name}' has dtype ${t.dtype}, expected F32`);
      else if (!p) problems.push(`'${name}' refers to a parameter the optimizer does not have`);
      else if (t.shape.join(",") !== p.shape.join(",")) {
        problems.push(`'${name}' has shape [${t.shape}], parameter has [${p.shape}]`);
      } else buffers[key] = t.data as Float32Array;
    }
    if (metadata.optim_step === undefined) problems.push("no optimizer state in file (metadata 'optim_step' missing)");
    optimState = { step: Number(metadata.optim_step), buffers };
  }
  if (problems.length > 0) throw new Error(`checkpoint ${path} does not match:\n  ${problems.join("\n  ")}`);
  for (const [name, p] of params) p.data.set(tensors[`model.${name}`].data as Float32Array);
  if (parts.optimizer && optimState) {
    parts.optimizer.loadStateDict(optimState);
    if (metadata.optim_lr !== undefined) parts.optimizer.lr = Number(metadata.optim_lr);
  }
  return metadata;
}

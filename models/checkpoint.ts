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
export type DType = "F32" | "I64" | "I32" | "U8";

/** Typed array matching each dtype (`I64` values are `BigInt64Array`). */
export type DTypeArray = Float32Array | BigInt64Array | Int32Array | Uint8Array;

/** One named array in a safetensors file. */
export interface SafeTensor {
  dtype: DType;
  shape: number[];
  data: DTypeArray;
}

const BYTES: Record<DType, number> = { F32: 4, I64: 8, I32: 4, U8: 1 };

function dtypeOf(data: DTypeArray): DType {
  if (data instanceof Float32Array) return "F32";
  if (data instanceof BigInt64Array) return "I64";
  if (data instanceof Int32Array) return "I32";
  return "U8";
}

/** Build a `SafeTensor` from an array and shape (dtype inferred from the array type). */
export function safeTensor(data: DTypeArray, shape: number[]): SafeTensor {
  return { dtype: dtypeOf(data), shape, data };
}

/** Serialize tensors (sorted by name, like the reference implementation) and string metadata. */
export function encodeSafetensors(tensors: Record<string, SafeTensor>, metadata?: Record<string, string>): Uint8Array {
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
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const name of names) {
    const d = tensors[name].data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), pos); // little-endian hosts only (x86, ARM)
    pos += d.byteLength;
  }
  return out;
}

/** Parsed safetensors content. */
export interface SafetensorsFile {
  tensors: Record<string, SafeTensor>;
  metadata: Record<string, string>;
}

/** Parse safetensors bytes; throws describing the first malformed entry. */
export function decodeSafetensors(bytes: Uint8Array): SafetensorsFile {
  if (bytes.length < 8) throw new Error("safetensors: file shorter than its 8-byte header length");
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + n > bytes.length) throw new Error(`safetensors: header length ${n} exceeds file size ${bytes.length}`);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  const base = 8 + n;
  const tensors: Record<string, SafeTensor> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const { dtype, shape, data_offsets: [start, end] } = info as {
      dtype: string;
      shape: number[];
      data_offsets: [number, number];
    };
    if (!(dtype in BYTES)) throw new Error(`safetensors: '${name}' has unsupported dtype ${dtype} (F32, I64, I32, U8)`);
    const dt = dtype as DType;
    const count = shape.reduce((a, b) => a * b, 1);
    if (end - start !== count * BYTES[dt] || base + end > bytes.length) {
      throw new Error(`safetensors: '${name}' offsets [${start}, ${end}] do not fit ${dt} [${shape}]`);
    }
    // Copy so the arrays are aligned and independent of the file buffer.
    const buf = bytes.slice(base + start, base + end).buffer;
    const data = dt === "F32"
      ? new Float32Array(buf)
      : dt === "I64"
      ? new BigInt64Array(buf)
      : dt === "I32"
      ? new Int32Array(buf)
      : new Uint8Array(buf);
    tensors[name] = { dtype: dt, shape, data };
  }
  return { tensors, metadata: (header.__metadata__ as Record<string, string>) ?? {} };
}

/** Write `bytes` to `path` atomically: temp file beside it, fsync, rename over the target. */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    using file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    let written = 0;
    while (written < bytes.length) written += await file.write(bytes.subarray(written));
    await file.sync();
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  await Deno.rename(tmp, path);
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
  await writeFileAtomic(path, encodeSafetensors(tensors, options.metadata));
}

/** Read a safetensors file. */
export async function loadSafetensors(path: string): Promise<SafetensorsFile> {
  return decodeSafetensors(await Deno.readFile(path));
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

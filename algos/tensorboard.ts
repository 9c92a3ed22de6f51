/**
 * TensorBoard event files written by our own code: TFRecord framing (length, masked CRC-32C) around hand-encoded
 * `Event` protobufs carrying scalar summaries. Encoding the three messages we need by hand is ~60 lines; a protobuf
 * library plus TensorFlow's .proto files would be far larger for the same bytes.
 *
 * @module
 */

/** Options of `SummaryWriter`. */
export interface SummaryWriterOptions {
  /** Suffix appended to the event file name. */
  filenameSuffix?: string;
  /** Flush to disk after this many records (records are always appended whole). */
  flushEvery?: number;
}

/**
 * Appends scalar summaries to a TensorBoard event file (`events.out.tfevents.<time>.<host>`) in `logDir`.
 *
 * @example
 * ```ts
 * import { SummaryWriter } from "./tensorboard.ts";
 * const dir = Deno.makeTempDirSync();
 * using writer = new SummaryWriter(dir);
 * writer.addScalar("charts/episodic_return", 21.5, 1000);
 * writer.flush();
 * ```
 */
export class SummaryWriter {
  /** Path of the event file. */
  readonly path: string;
  #file: Deno.FsFile | undefined;
  #pending: Uint8Array[] = [];
  #flushEvery: number;

  constructor(logDir: string, options: SummaryWriterOptions = {}) {
    Deno.mkdirSync(logDir, { recursive: true });
    const host = Deno.hostname().replace(/[^A-Za-z0-9._-]/g, "_");
    const stamp = Math.floor(Date.now() / 1000);
    this.path = `${logDir}/events.out.tfevents.${stamp}.${host}${options.filenameSuffix ?? ""}`;
    this.#file = Deno.openSync(this.path, { append: true, create: true });
    this.#flushEvery = options.flushEvery ?? 64;
    this.#write(encodeEvent({ wallTime: Date.now() / 1000, step: 0, fileVersion: "brain.Event:2" }));
    this.flush();
  }

  /** Records one scalar at a global step (e.g. frames seen). */
  addScalar(tag: string, value: number, step: number, wallTime = Date.now() / 1000): void {
    this.#write(encodeEvent({ wallTime, step, scalar: { tag, value } }));
  }

  /** Writes buffered records and syncs them, so a crash leaves every record up to here readable. */
  flush(): void {
    const file = this.#file;
    if (!file || this.#pending.length === 0) return;
    for (const rec of this.#pending) {
      let off = 0;
      while (off < rec.length) off += file.writeSync(rec.subarray(off));
    }
    this.#pending = [];
    file.syncDataSync();
  }

  /** Flushes and closes the file. Safe to call twice. */
  close(): void {
    if (!this.#file) return;
    this.flush();
    this.#file.close();
    this.#file = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #write(event: Uint8Array): void {
    if (!this.#file) throw new Error("SummaryWriter: write after close()");
    this.#pending.push(frameRecord(event));
    if (this.#pending.length >= this.#flushEvery) this.flush();
  }
}

/** One `Event` message: a file version header or a scalar summary. */
export interface EventFields {
  wallTime: number;
  step: number;
  fileVersion?: string;
  scalar?: { tag: string; value: number };
}

/** Encodes `tensorflow.Event` (wall_time=1 double, step=2 int64, file_version=3 string, summary=5 Summary). */
export function encodeEvent(e: EventFields): Uint8Array {
  const w = new ProtoWriter();
  w.tag(1, 1).double(e.wallTime);
  w.tag(2, 0).varint(e.step);
  if (e.fileVersion !== undefined) w.tag(3, 2).bytes(utf8(e.fileVersion));
  if (e.scalar) {
    // Summary { repeated Value value = 1 }, Value { string tag = 1; float simple_value = 2 }.
    const value = new ProtoWriter();
    value.tag(1, 2).bytes(utf8(e.scalar.tag));
    value.tag(2, 5).float(e.scalar.value);
    const summary = new ProtoWriter();
    summary.tag(1, 2).bytes(value.finish());
    w.tag(5, 2).bytes(summary.finish());
  }
  return w.finish();
}

/** TFRecord framing: u64 length, masked crc32c(length), data, masked crc32c(data), all little-endian. */
export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length + 16);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32C (Castagnoli), as TFRecord uses. */
export function crc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC32C_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function maskedCrc32c(data: Uint8Array): number {
  const c = crc32c(data);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** Minimal protobuf writer for the wire types the Event messages use. */
class ProtoWriter {
  #buf: number[] = [];

  tag(field: number, wireType: number): this {
    return this.varint((field << 3) | wireType);
  }

  varint(v: number): this {
    let n = BigInt(Math.trunc(v));
    if (n < 0n) n += 1n << 64n; // int64 negatives are ten-byte varints
    do {
      let byte = Number(n & 0x7fn);
      n >>= 7n;
      if (n > 0n) byte |= 0x80;
      this.#buf.push(byte);
    } while (n > 0n);
    return this;
  }

  double(v: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.#buf.push(...b);
    return this;
  }

  float(v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.#buf.push(...b);
    return this;
  }

  bytes(b: Uint8Array): this {
    this.varint(b.length);
    for (let i = 0; i < b.length; i++) this.#buf.push(b[i]);
    return this;
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.#buf);
  }
}

/**
 * A minimal protocol-buffers writer and reader, just enough for ONNX files (`onnx.proto3`): varints, 32-bit floats,
 * length-delimited bytes/strings/sub-messages and packed repeated scalars. Private to `onnx.ts`.
 *
 * @module
 */

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

const utf8 = new TextEncoder();

/** Appends protobuf fields to a growing byte buffer. */
export class ProtoWriter {
  #buf = new Uint8Array(256);
  #len = 0;

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < this.#len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  #rawVarint(value: number | bigint): void {
    // Negative int64 values take ten bytes (two's complement), as protobuf requires.
    let v = BigInt.asUintN(64, BigInt(value));
    this.#reserve(10);
    while (v >= 0x80n) {
      this.#buf[this.#len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.#buf[this.#len++] = Number(v);
  }

  #tag(field: number, wire: number): void {
    this.#rawVarint((field << 3) | wire);
  }

  #rawBytes(bytes: Uint8Array): void {
    this.#reserve(bytes.length);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
  }

  /** An int32/int64/enum/bool field. */
  varint(field: number, value: number | bigint): this {
    this.#tag(field, WIRE_VARINT);
    this.#rawVarint(value);
    return this;
  }

  /** A `float` field. */
  float(field: number, value: number): this {
    this.#tag(field, WIRE_FIXED32);
    this.#reserve(4);
    new DataView(this.#buf.buffer).setFloat32(this.#len, value, true);
    this.#len += 4;
    return this;
  }

  /** A `bytes` field. */
  bytes(field: number, value: Uint8Array): this {
    this.#tag(field, WIRE_LEN);
    this.#rawVarint(value.length);
    this.#rawBytes(value);
    return this;
  }

  /** A `string` field (UTF-8). */
  string(field: number, value: string): this {
    return this.bytes(field, utf8.encode(value));
  }

  /** A sub-message field, written by `build` into a fresh writer. */
  message(field: number, build: (w: ProtoWriter) => void): this {
    const w = new ProtoWriter();
    build(w);
    return this.bytes(field, w.finish());
  }

  /** A packed repeated int64 field. */
  packedVarints(field: number, values: readonly (number | bigint)[]): this {
    const w = new ProtoWriter();
    for (const v of values) w.#rawVarint(v);
    return this.bytes(field, w.finish());
  }

  /** A packed repeated float field. */
  packedFloats(field: number, values: ArrayLike<number>): this {
    const f = Float32Array.from(values);
    return this.bytes(field, new Uint8Array(f.buffer, f.byteOffset, f.byteLength));
  }

  /** The bytes written so far (a view, not a copy). */
  finish(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }
}

/** One decoded field value: varints as bigint, fixed32/64 as their raw bytes, length-delimited as bytes. */
export type ProtoValue = bigint | Uint8Array;

/** The fields of one message by number, repeated values in order. */
export type ProtoMessage = Map<number, ProtoValue[]>;

/** Decodes one message level (sub-messages stay bytes: decode them with another call). */
export function decodeMessage(bytes: Uint8Array): ProtoMessage {
  const out: ProtoMessage = new Map();
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n, shift = 0n;
    for (;;) {
      if (pos >= bytes.length) throw new Error("truncated protobuf varint");
      const b = bytes[pos++];
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return result;
      shift += 7n;
    }
  };
  while (pos < bytes.length) {
    const key = Number(varint());
    const field = key >>> 3, wire = key & 7;
    let value: ProtoValue;
    if (wire === WIRE_VARINT) value = varint();
    else if (wire === WIRE_LEN || wire === WIRE_FIXED32 || wire === WIRE_FIXED64) {
      const n = wire === WIRE_LEN ? Number(varint()) : wire === WIRE_FIXED32 ? 4 : 8;
      if (pos + n > bytes.length) throw new Error("truncated protobuf field");
      value = bytes.subarray(pos, pos + n);
      pos += n;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
    const list = out.get(field);
    if (list) list.push(value);
    else out.set(field, [value]);
  }
  return out;
}

/** The last value of a varint field as a number (protobuf's "last one wins"), or `fallback`. */
export function protoInt(m: ProtoMessage, field: number, fallback = 0): number {
  const v = m.get(field)?.at(-1);
  return typeof v === "bigint" ? Number(BigInt.asIntN(64, v)) : fallback;
}

/** A string field, or `fallback`. */
export function protoString(m: ProtoMessage, field: number, fallback = ""): string {
  const v = m.get(field)?.at(-1);
  return v instanceof Uint8Array ? new TextDecoder().decode(v) : fallback;
}

/** Every value of a length-delimited field (repeated sub-messages, strings or bytes). */
export function protoBytesList(m: ProtoMessage, field: number): Uint8Array[] {
  return (m.get(field) ?? []).filter((v): v is Uint8Array => v instanceof Uint8Array);
}

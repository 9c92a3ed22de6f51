/**
 * H.264 encoding of RGB frames through libx264 (via `shim.c`), producing length-prefixed (AVCC) access units and
 * the `avcC` decoder configuration an MP4 muxer needs.
 *
 * @module
 */

import type { VideoLibrary } from "./ffi.ts";
import { loadVideoLibrary } from "./provision.ts";

/** Options of `H264Encoder`. */
export interface H264EncoderOptions {
  /** Frames per second (default 30). */
  fps?: number;
  /** x264 constant rate factor: lower is better quality and bigger files; 23 is x264's default (default 23). */
  crf?: number;
  /** Maximum frames between keyframes (default 10 s of video, at least 1). */
  keyint?: number;
  /** x264 preset, from `ultrafast` to `placebo` (default `veryfast`: recording must not slow training down). */
  preset?: string;
  /** Encoder threads; 0 lets x264 choose (default 1: training already uses the cores). */
  threads?: number;
}

/** Frees encoders that were never closed: a backstop only, `close()` is the contract. */
const leaked = new FinalizationRegistry<{ lib: VideoLibrary; handle: NonNullable<Deno.PointerValue> }>(
  ({ lib, handle }) => lib.symbols.arc_video_close(handle),
);

/** One encoded frame. */
export interface EncodedFrame {
  /** The access unit: NAL units each prefixed with a 4-byte big-endian length (AVCC). Owned by the caller. */
  data: Uint8Array;
  /** Whether it is an IDR frame (a point a player can seek to). */
  keyframe: boolean;
  /** Index of the input frame it encodes (0, 1, 2, ... in order: no B-frames). */
  index: number;
}

/**
 * Encodes RGB24 frames (`height x width x 3`, row-major) to H.264 High profile. Odd sizes are padded to even by
 * repeating the last column/row (4:2:0 chroma cannot represent an odd size), so `codedWidth`/`codedHeight` may be
 * one more than `width`/`height`. x264 buffers a few frames for rate control: `encode` may return nothing at first,
 * and `flush` returns the rest.
 *
 * @example
 * ```ts
 * import { H264Encoder } from "./h264_encoder.ts";
 * using enc = new H264Encoder(64, 48, { fps: 25 });
 * const frames = [];
 * for (let i = 0; i < 5; i++) {
 *   const f = enc.encode(new Uint8Array(64 * 48 * 3).fill(i * 40));
 *   if (f) frames.push(f);
 * }
 * frames.push(...enc.flush());
 * console.assert(frames.length === 5 && frames[0].keyframe && enc.codec.startsWith("avc1."));
 * ```
 */
export class H264Encoder {
  /** Width of the frames passed in. */
  readonly width: number;
  /** Height of the frames passed in. */
  readonly height: number;
  /** Width in the bitstream (even). */
  readonly codedWidth: number;
  /** Height in the bitstream (even). */
  readonly codedHeight: number;
  /** Frames per second. */
  readonly fps: number;
  /** The AVCDecoderConfigurationRecord (contents of the MP4 `avcC` box). */
  readonly avcC: Uint8Array;
  /** RFC 6381 codec string, e.g. `avc1.64001f`. */
  readonly codec: string;
  #lib: VideoLibrary;
  #handle: Deno.PointerValue;
  #out: Uint8Array<ArrayBuffer> = new Uint8Array(1 << 16);
  #flushed = false;

  constructor(width: number, height: number, options: H264EncoderOptions = {}) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 2 || height < 2) {
      throw new RangeError(`H264Encoder: width and height must be integers >= 2, got ${width}x${height}`);
    }
    const fps = options.fps ?? 30;
    if (!(fps > 0) || !Number.isFinite(fps)) throw new RangeError(`H264Encoder: fps must be positive, got ${fps}`);
    const crf = options.crf ?? 23;
    if (!(crf >= 0 && crf <= 51)) throw new RangeError(`H264Encoder: crf must be in [0, 51], got ${crf}`);
    this.width = width;
    this.height = height;
    this.fps = fps;
    this.#lib = loadVideoLibrary();
    const [num, den] = Number.isInteger(fps) ? [fps, 1] : [Math.round(fps * 1000), 1000];
    const keyint = Math.max(1, Math.round(options.keyint ?? 10 * fps));
    const preset = new TextEncoder().encode(`${options.preset ?? "veryfast"}\0`);
    const s = this.#lib.symbols;
    const handle = s.arc_video_open(width, height, num, den, crf, keyint, options.threads ?? 1, preset);
    const error = handle ? Deno.UnsafePointerView.getCString(s.arc_video_error(handle)!) : "out of memory";
    if (!handle || error) {
      if (handle) s.arc_video_close(handle);
      throw new Error(`H264Encoder: cannot open x264 for ${width}x${height} at ${fps} fps: ${error}`);
    }
    this.#handle = handle;
    leaked.register(this, { lib: this.#lib, handle }, this);
    this.codedWidth = s.arc_video_coded_width(handle);
    this.codedHeight = s.arc_video_coded_height(handle);
    const headers = this.#take(s.arc_video_headers(handle), "headers");
    this.avcC = avcDecoderConfig(splitAvcc(headers));
    this.codec = `avc1.${Array.from(this.avcC.subarray(1, 4), (b) => b.toString(16).padStart(2, "0")).join("")}`;
  }

  /** Encodes one frame of `width * height * 3` bytes; returns the frame that came out, if any. */
  encode(rgb: Uint8Array): EncodedFrame | undefined {
    const handle = this.#open("encode");
    if (this.#flushed) throw new Error("H264Encoder: encode() after flush(); open a new encoder");
    if (rgb.length !== this.width * this.height * 3) {
      throw new RangeError(
        `H264Encoder: expected ${this.width}x${this.height}x3 = ${
          this.width * this.height * 3
        } bytes, got ${rgb.length}`,
      );
    }
    return this.#frame(this.#lib.symbols.arc_video_encode_rgb(handle, rgb as Uint8Array<ArrayBuffer>), "encode");
  }

  /** Drains the frames x264 still holds. No `encode` after this. */
  flush(): EncodedFrame[] {
    const handle = this.#open("flush");
    this.#flushed = true;
    const frames: EncodedFrame[] = [];
    for (;;) {
      const frame = this.#frame(this.#lib.symbols.arc_video_flush(handle), "flush");
      if (!frame) return frames;
      frames.push(frame);
    }
  }

  /** Frees the encoder. Safe to call twice. */
  close(): void {
    if (this.#handle === null) return;
    leaked.unregister(this);
    this.#lib.symbols.arc_video_close(this.#handle);
    this.#handle = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #open(what: string): NonNullable<Deno.PointerValue> {
    if (this.#handle === null) throw new Error(`H264Encoder: ${what}() after close()`);
    return this.#handle;
  }

  #frame(size: number, what: string): EncodedFrame | undefined {
    if (size === 0) return undefined;
    const data = this.#take(size, what);
    const s = this.#lib.symbols;
    return {
      data,
      keyframe: s.arc_video_last_keyframe(this.#handle) !== 0,
      index: Number(s.arc_video_last_pts(this.#handle)),
    };
  }

  /** Copies the shim's last output (size bytes) out of x264's buffer. */
  #take(size: number, what: string): Uint8Array {
    const s = this.#lib.symbols;
    if (size < 0) {
      throw new Error(
        `H264Encoder: x264 ${what} failed: ${Deno.UnsafePointerView.getCString(s.arc_video_error(this.#handle)!)}`,
      );
    }
    if (this.#out.length < size) this.#out = new Uint8Array(Math.max(size, 2 * this.#out.length));
    s.arc_video_read(this.#handle, this.#out, this.#out.length);
    return this.#out.slice(0, size);
  }
}

/** Splits length-prefixed (AVCC, 4-byte lengths) NAL units. */
export function splitAvcc(data: Uint8Array): Uint8Array[] {
  const nals: Uint8Array[] = [];
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let at = 0; at + 4 <= data.length;) {
    const size = view.getUint32(at);
    if (at + 4 + size > data.length) throw new Error(`truncated NAL unit at byte ${at} (length ${size})`);
    nals.push(data.subarray(at + 4, at + 4 + size));
    at += 4 + size;
  }
  return nals;
}

/**
 * Builds an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3) from NAL units holding the SPS and PPS
 * (other NAL types are ignored).
 *
 * @example
 * ```ts
 * import { avcDecoderConfig } from "./h264_encoder.ts";
 * const sps = Uint8Array.of(0x67, 0x42, 0xc0, 0x1e, 0xda);
 * const pps = Uint8Array.of(0x68, 0xce, 0x38, 0x80);
 * const record = avcDecoderConfig([sps, pps]);
 * console.assert(record[0] === 1 && record[1] === 0x42 && record.length === 6 + 2 + 5 + 1 + 2 + 4);
 * ```
 */
export function avcDecoderConfig(nals: Uint8Array[]): Uint8Array {
  const sps = nals.filter((n) => (n[0] & 0x1f) === 7);
  const pps = nals.filter((n) => (n[0] & 0x1f) === 8);
  if (sps.length === 0 || pps.length === 0) throw new Error("avcDecoderConfig: need at least one SPS and one PPS");
  const profile = sps[0][1];
  // High profiles carry chroma format and bit depths (4:2:0, 8-bit here, which is all the shim produces).
  const high = [100, 110, 122, 144].includes(profile);
  const bytes: number[] = [1, profile, sps[0][2], sps[0][3], 0xff, 0xe0 | sps.length];
  for (const n of sps) bytes.push(n.length >> 8, n.length & 0xff, ...n);
  bytes.push(pps.length);
  for (const n of pps) bytes.push(n.length >> 8, n.length & 0xff, ...n);
  if (high) bytes.push(0xfc | 1, 0xf8, 0xf8, 0);
  return Uint8Array.from(bytes);
}

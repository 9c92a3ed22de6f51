/**
 * MP4 files of H.264 video from RGB frames: `H264Encoder` (libx264) for the pictures, `mp4-muxer` for the container.
 *
 * @module
 */

import { Muxer, StreamTarget } from "npm:mp4-muxer@5.2.2";
import type { RgbFrame } from "../core.ts";
import { H264Encoder, type H264EncoderOptions } from "./h264_encoder.ts";

/** Options of `Mp4Writer`. */
export interface Mp4WriterOptions extends H264EncoderOptions {
  /** Frame width in pixels (odd widths are padded by one column). */
  width: number;
  /** Frame height in pixels (odd heights are padded by one row). */
  height: number;
}

/**
 * Writes RGB frames to an H.264 MP4 file. Data streams to a temporary file beside `path`, which `close()` renames
 * into place, so `path` never holds a partial video. A writer that got no frames writes no file.
 *
 * @example
 * ```ts
 * import { Mp4Writer } from "./mp4_writer.ts";
 * const path = `${Deno.makeTempDirSync()}/ramp.mp4`;
 * {
 *   using video = new Mp4Writer(path, { width: 32, height: 24, fps: 10 });
 *   for (let i = 0; i < 10; i++) video.addFrame(new Uint8Array(32 * 24 * 3).fill(i * 25));
 * }
 * console.assert(Deno.statSync(path).size > 0);
 * ```
 */
export class Mp4Writer {
  /** Where the video ends up. */
  readonly path: string;
  /** Frame width. */
  readonly width: number;
  /** Frame height. */
  readonly height: number;
  /** Frames per second. */
  readonly fps: number;
  #encoder: H264Encoder | undefined;
  #file: Deno.FsFile | undefined;
  #muxer: Muxer<StreamTarget>;
  #decoderConfig: { codec: string; codedWidth: number; codedHeight: number; description: Uint8Array };
  #tmp: string;
  #frames = 0;
  #written = 0;

  constructor(path: string, options: Mp4WriterOptions) {
    this.path = path;
    this.width = options.width;
    this.height = options.height;
    this.fps = options.fps ?? 30;
    const encoder = new H264Encoder(options.width, options.height, options);
    this.#tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
    try {
      this.#file = Deno.openSync(this.#tmp, { write: true, create: true, truncate: true });
    } catch (e) {
      encoder.close();
      throw e;
    }
    this.#encoder = encoder;
    this.#decoderConfig = {
      codec: encoder.codec,
      codedWidth: encoder.codedWidth,
      codedHeight: encoder.codedHeight,
      description: encoder.avcC,
    };
    const file = this.#file;
    this.#muxer = new Muxer({
      target: new StreamTarget({
        // Metadata at the end (fastStart: false) lets the file stream to disk; the muxer seeks back once to patch
        // the size of the media box.
        onData: (data, position) => {
          file.seekSync(position, Deno.SeekMode.Start);
          for (let off = 0; off < data.length;) off += file.writeSync(data.subarray(off));
        },
      }),
      video: {
        codec: "avc",
        width: encoder.codedWidth,
        height: encoder.codedHeight,
        ...(Number.isInteger(this.fps) ? { frameRate: this.fps } : {}),
      },
      fastStart: false,
    });
  }

  /** Frames added so far. */
  get frameCount(): number {
    return this.#frames;
  }

  /** Appends a frame: `width * height * 3` RGB bytes, or an `RgbFrame` of the writer's size. */
  addFrame(frame: Uint8Array | RgbFrame): void {
    const encoder = this.#encoder;
    if (!encoder) throw new Error(`Mp4Writer: addFrame() after close() (${this.path})`);
    let rgb: Uint8Array;
    if (frame instanceof Uint8Array) rgb = frame;
    else {
      if (frame.width !== this.width || frame.height !== this.height) {
        throw new RangeError(
          `Mp4Writer: frame is ${frame.width}x${frame.height}, the video is ${this.width}x${this.height}`,
        );
      }
      rgb = frame.data;
    }
    const out = encoder.encode(rgb);
    this.#frames++;
    if (out) this.#mux(out.data, out.keyframe);
  }

  /** Encodes the buffered frames, finishes the file and renames it into place. Safe to call twice. */
  close(): void {
    const encoder = this.#encoder;
    if (!encoder) return;
    this.#encoder = undefined;
    const file = this.#file!;
    this.#file = undefined;
    let ok = false;
    try {
      for (const out of encoder.flush()) this.#mux(out.data, out.keyframe);
      if (this.#frames > 0) {
        this.#muxer.finalize();
        file.syncSync();
        ok = true;
      }
    } finally {
      encoder.close();
      file.close();
      if (ok) Deno.renameSync(this.#tmp, this.path);
      else Deno.removeSync(this.#tmp);
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #mux(data: Uint8Array, keyframe: boolean): void {
    const k = this.#written++;
    const us = 1e6 / this.fps;
    // The decoder configuration goes with the first chunk (the muxer writes it into the avcC box).
    const meta = k === 0 ? { decoderConfig: this.#decoderConfig } : undefined;
    this.#muxer.addVideoChunkRaw(data, keyframe ? "key" : "delta", k * us, us, meta);
  }
}

/**
 * H.264 video: `Mp4Writer` writes RGB frames (e.g. `env.render()`) to MP4 files through libx264, which
 * `ensureVideoEncoder()` provisions (Debian's `libx264-dev` and a small shim built into the cache).
 *
 * @example
 * ```ts
 * import { Mp4Writer } from "./mod.ts";
 * const path = `${Deno.makeTempDirSync()}/gray.mp4`;
 * using video = new Mp4Writer(path, { width: 16, height: 16 });
 * video.addFrame(new Uint8Array(16 * 16 * 3).fill(128));
 * ```
 *
 * @module
 */

export * from "./mp4_writer.ts";
export * from "./h264_encoder.ts";
export { ensureVideoEncoder, loadVideoLibrary, VIDEO_PACKAGES } from "./provision.ts";

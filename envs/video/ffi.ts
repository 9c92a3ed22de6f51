/**
 * Symbol table of `libarcadia_video` (`shim.c` over libx264), with the C prototype beside each symbol.
 *
 * @module
 */

/** ABI version `shim.c` must report (`arc_video_abi`). Bump both together. */
export const VIDEO_SHIM_ABI = 1;

/** FFI symbols of the video shim. */
export const videoSymbols = {
  /** `int32_t arc_video_abi(void)` */
  arc_video_abi: { parameters: [], result: "i32" },
  /** `int32_t arc_video_x264_build(void)` */
  arc_video_x264_build: { parameters: [], result: "i32" },
  /**
   * `arc_video *arc_video_open(int32_t width, int32_t height, int32_t fps_num, int32_t fps_den, float crf,
   * int32_t keyint, int32_t threads, const char *preset)`
   */
  arc_video_open: { parameters: ["i32", "i32", "i32", "i32", "f32", "i32", "i32", "buffer"], result: "pointer" },
  /** `const char *arc_video_error(const arc_video *v)` */
  arc_video_error: { parameters: ["pointer"], result: "pointer" },
  /** `int32_t arc_video_coded_width(const arc_video *v)` */
  arc_video_coded_width: { parameters: ["pointer"], result: "i32" },
  /** `int32_t arc_video_coded_height(const arc_video *v)` */
  arc_video_coded_height: { parameters: ["pointer"], result: "i32" },
  /** `int32_t arc_video_headers(arc_video *v)` */
  arc_video_headers: { parameters: ["pointer"], result: "i32" },
  /** `int32_t arc_video_encode_rgb(arc_video *v, const uint8_t *rgb)` */
  arc_video_encode_rgb: { parameters: ["pointer", "buffer"], result: "i32" },
  /** `int32_t arc_video_flush(arc_video *v)` */
  arc_video_flush: { parameters: ["pointer"], result: "i32" },
  /** `int32_t arc_video_read(const arc_video *v, uint8_t *out, int32_t cap)` */
  arc_video_read: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  /** `int32_t arc_video_last_keyframe(const arc_video *v)` */
  arc_video_last_keyframe: { parameters: ["pointer"], result: "i32" },
  /** `int64_t arc_video_last_pts(const arc_video *v)` */
  arc_video_last_pts: { parameters: ["pointer"], result: "i64" },
  /** `void arc_video_close(arc_video *v)` */
  arc_video_close: { parameters: ["pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened video shim. */
export type VideoLibrary = Deno.DynamicLibrary<typeof videoSymbols>;

/*
 * A small C API over libx264 for Arcadia's video writer (envs/video/ffi.ts binds it).
 *
 * x264_param_t is a large struct whose layout changes with X264_BUILD, so the TypeScript side never touches it:
 * this shim fills it, converts RGB24 frames to I420, and hands back length-prefixed (AVCC) NAL units that the MP4
 * muxer takes as they are. Built at provisioning time (envs/video/provision.ts) with:
 *
 *   cc -O2 -shared -fPIC shim.c -o libarcadia_video.so -lx264
 *
 * Errors are reported as return values plus a message from arc_video_error(); nothing here aborts the process.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <x264.h>

#define ARC_VIDEO_ABI 1

typedef struct {
  x264_t *enc;
  x264_picture_t pic;
  int pic_allocated;
  int src_width, src_height; /* what callers pass in */
  int width, height;         /* coded size: source size rounded up to even (4:2:0 needs it) */
  int64_t next_pts;
  /* The NAL payloads of the last encode/headers call (owned by x264, contiguous, valid until the next call). */
  const uint8_t *last;
  int last_size;
  int last_keyframe;
  int64_t last_pts;
  char error[512];
} arc_video;

static void arc_log(void *priv, int level, const char *fmt, va_list args) {
  arc_video *v = (arc_video *)priv;
  /* Keep the first error: later ones are usually consequences. Warnings are dropped (x264 is chatty). */
  if (level > X264_LOG_ERROR || v->error[0]) return;
  vsnprintf(v->error, sizeof v->error, fmt, args);
  size_t n = strlen(v->error);
  while (n > 0 && (v->error[n - 1] == '\n' || v->error[n - 1] == '\r')) v->error[--n] = 0;
}

/* ABI version of this shim, checked by the loader against the TypeScript bindings. */
int32_t arc_video_abi(void) { return ARC_VIDEO_ABI; }

/* X264_BUILD the shim was compiled against. */
int32_t arc_video_x264_build(void) { return X264_BUILD; }

/*
 * Opens an encoder for width x height RGB frames (any size >= 2x2; odd sizes are padded to even by repeating the
 * last column/row). crf: constant rate factor (0 lossless-ish ... 51 worst; 23 is x264's default). keyint: maximum
 * frames between IDR frames. threads: 0 = x264 chooses. preset: x264 preset name ("veryfast", "medium", ...).
 * Returns NULL only when out of memory; otherwise check arc_video_error() (empty string = success).
 */
arc_video *arc_video_open(int32_t width, int32_t height, int32_t fps_num, int32_t fps_den, float crf, int32_t keyint,
                          int32_t threads, const char *preset) {
  arc_video *v = (arc_video *)calloc(1, sizeof(arc_video));
  if (!v) return NULL;
  if (width < 2 || height < 2 || fps_num <= 0 || fps_den <= 0) {
    snprintf(v->error, sizeof v->error, "invalid size %dx%d or frame rate %d/%d", width, height, fps_num, fps_den);
    return v;
  }
  v->src_width = width;
  v->src_height = height;
  v->width = (width + 1) & ~1;
  v->height = (height + 1) & ~1;

  x264_param_t p;
  if (x264_param_default_preset(&p, preset, NULL) < 0) {
    snprintf(v->error, sizeof v->error, "unknown x264 preset \"%s\"", preset);
    return v;
  }
  p.pf_log = arc_log;
  p.p_log_private = v;
  p.i_log_level = X264_LOG_ERROR;
  p.i_width = v->width;
  p.i_height = v->height;
  p.i_csp = X264_CSP_I420;
  p.i_fps_num = fps_num;
  p.i_fps_den = fps_den;
  p.i_timebase_num = fps_den;
  p.i_timebase_den = fps_num;
  p.b_vfr_input = 0;
  p.i_threads = threads;
  /* No B-frames: decode order = presentation order, so the MP4 needs no composition offsets. */
  p.i_bframe = 0;
  p.i_keyint_max = keyint > 0 ? keyint : 250;
  p.rc.i_rc_method = X264_RC_CRF;
  p.rc.f_rf_constant = crf;
  /* SPS/PPS go into the MP4's avcC box once; samples carry 4-byte lengths instead of start codes. */
  p.b_repeat_headers = 0;
  p.b_annexb = 0;
  /* Say how the RGB was converted (BT.601, limited range) so players convert back the same way. */
  p.vui.b_fullrange = 0;
  p.vui.i_colorprim = 6; /* smpte170m */
  p.vui.i_transfer = 6;
  p.vui.i_colmatrix = 6;
  if (x264_param_apply_profile(&p, "high") < 0) {
    if (!v->error[0]) snprintf(v->error, sizeof v->error, "x264 rejected the high profile for these settings");
    return v;
  }
  if (x264_picture_alloc(&v->pic, X264_CSP_I420, v->width, v->height) < 0) {
    snprintf(v->error, sizeof v->error, "out of memory allocating a %dx%d picture", v->width, v->height);
    return v;
  }
  v->pic_allocated = 1;
  v->enc = x264_encoder_open(&p);
  if (!v->enc && !v->error[0]) snprintf(v->error, sizeof v->error, "x264_encoder_open failed");
  return v;
}

/* The last error message, or "" when the encoder is healthy. */
const char *arc_video_error(const arc_video *v) { return v ? v->error : "out of memory"; }

/* Coded (even) width and height. */
int32_t arc_video_coded_width(const arc_video *v) { return v->width; }
int32_t arc_video_coded_height(const arc_video *v) { return v->height; }

/* Writes SPS, PPS (and x264's SEI) as length-prefixed NAL units; returns their size, read with arc_video_read. */
int32_t arc_video_headers(arc_video *v) {
  if (!v->enc) return -1;
  x264_nal_t *nals;
  int n;
  int size = x264_encoder_headers(v->enc, &nals, &n);
  if (size < 0) {
    if (!v->error[0]) snprintf(v->error, sizeof v->error, "x264_encoder_headers failed");
    return -1;
  }
  v->last = n > 0 ? nals[0].p_payload : NULL;
  v->last_size = size;
  v->last_keyframe = 0;
  return size;
}

static int32_t arc_emit(arc_video *v, int size, x264_nal_t *nals, int n, const x264_picture_t *out) {
  if (size < 0) {
    if (!v->error[0]) snprintf(v->error, sizeof v->error, "x264_encoder_encode failed");
    return -1;
  }
  v->last = n > 0 ? nals[0].p_payload : NULL;
  v->last_size = size;
  v->last_keyframe = size > 0 ? out->b_keyframe : 0;
  v->last_pts = size > 0 ? out->i_pts : 0;
  return size;
}

/* BT.601 limited range; the results stay within [16, 240] for any 8-bit input, so no clamping is needed. */
#define ARC_Y(p) (uint8_t)((((66 * (p)[0] + 129 * (p)[1] + 25 * (p)[2] + 128) >> 8) + 16))

/* RGB24 (tightly packed rows) to I420, chroma from the mean of each 2x2 block. Two rows per pass; padding of an
 * odd-sized frame repeats its last row/column. */
static void rgb_to_i420(arc_video *v, const uint8_t *rgb) {
  const int sw = v->src_width, sh = v->src_height;
  const size_t row = (size_t)sw * 3;
  const int sy = v->pic.img.i_stride[0], su = v->pic.img.i_stride[1], sv = v->pic.img.i_stride[2];
  for (int y = 0; y < v->height; y += 2) {
    const uint8_t *s0 = rgb + (size_t)(y < sh ? y : sh - 1) * row;
    const uint8_t *s1 = rgb + (size_t)(y + 1 < sh ? y + 1 : sh - 1) * row;
    uint8_t *y0 = v->pic.img.plane[0] + (size_t)y * sy, *y1 = y0 + sy;
    uint8_t *pu = v->pic.img.plane[1] + (size_t)(y / 2) * su, *pv = v->pic.img.plane[2] + (size_t)(y / 2) * sv;
    for (int x = 0; x < v->width; x += 2) {
      const int xa = x * 3, xb = (x + 1 < sw ? x + 1 : sw - 1) * 3;
      const uint8_t *a0 = s0 + xa, *b0 = s0 + xb, *a1 = s1 + xa, *b1 = s1 + xb;
      y0[x] = ARC_Y(a0);
      y0[x + 1] = ARC_Y(b0);
      y1[x] = ARC_Y(a1);
      y1[x + 1] = ARC_Y(b1);
      const int r = (a0[0] + b0[0] + a1[0] + b1[0] + 2) >> 2;
      const int g = (a0[1] + b0[1] + a1[1] + b1[1] + 2) >> 2;
      const int b = (a0[2] + b0[2] + a1[2] + b1[2] + 2) >> 2;
      pu[x / 2] = (uint8_t)(((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128);
      pv[x / 2] = (uint8_t)(((112 * r - 94 * g - 18 * b + 128) >> 8) + 128);
    }
  }
}

/*
 * Encodes one RGB24 frame of the size given to arc_video_open (rgb holds width*height*3 bytes). Returns the size of
 * the encoded frame that came out (0 while x264 still buffers frames for lookahead; -1 on error). Read the bytes
 * with arc_video_read before the next call.
 */
int32_t arc_video_encode_rgb(arc_video *v, const uint8_t *rgb) {
  if (!v->enc) return -1;
  rgb_to_i420(v, rgb);
  v->pic.i_pts = v->next_pts++;
  v->pic.i_type = X264_TYPE_AUTO;
  x264_nal_t *nals;
  int n;
  x264_picture_t out;
  int size = x264_encoder_encode(v->enc, &nals, &n, &v->pic, &out);
  return arc_emit(v, size, nals, n, &out);
}

/* Drains one buffered frame after the last input: returns its size, 0 when none are left, -1 on error. */
int32_t arc_video_flush(arc_video *v) {
  if (!v->enc) return -1;
  if (x264_encoder_delayed_frames(v->enc) <= 0) {
    v->last_size = 0;
    return 0;
  }
  x264_nal_t *nals;
  int n;
  x264_picture_t out;
  int size = x264_encoder_encode(v->enc, &nals, &n, NULL, &out);
  return arc_emit(v, size, nals, n, &out);
}

/* Copies the bytes of the last headers/encode/flush call into out (cap bytes); returns the size or -1 if cap is short. */
int32_t arc_video_read(const arc_video *v, uint8_t *out, int32_t cap) {
  if (v->last_size > cap) return -1;
  if (v->last_size > 0) memcpy(out, v->last, (size_t)v->last_size);
  return v->last_size;
}

/* Whether the last encoded frame is a keyframe (IDR). */
int32_t arc_video_last_keyframe(const arc_video *v) { return v->last_keyframe; }

/* Presentation index of the last encoded frame (0, 1, 2, ... in input order). */
int64_t arc_video_last_pts(const arc_video *v) { return v->last_pts; }

/* Frees the encoder. */
void arc_video_close(arc_video *v) {
  if (!v) return;
  if (v->enc) x264_encoder_close(v->enc);
  if (v->pic_allocated) x264_picture_clean(&v->pic);
  free(v);
}

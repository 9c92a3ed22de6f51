// Arcadia's C ABI over ale::ALEInterface (ale-py 0.12.1), for Deno FFI.
//
// Conventions:
// - Every function catches every C++ exception: the call returns -1 (or NULL) and arc_ale_last_error() gives the
//   message for the calling thread.
// - Methods that need a ROM fail with an error before loadROM instead of reaching ALE (which aborts the process).
// - Screens, RAM and states are copied straight into caller-provided buffers; the per-step calls (arc_ale_step,
//   arc_ale_act, arc_ale_observe, arc_ale_step_preprocessed) allocate nothing (arc_ale_step_preprocessed builds its
//   resize tables on its first call).
// - Built with g++ (provision.ts): the area resize uses GCC's vector extensions.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "ale/ale_interface.hpp"

namespace {

thread_local std::string last_error;

// Downscaling with OpenCV's INTER_AREA arithmetic, the same float32 operations in the same order as AreaResize in
// envs/ale/preprocessing.ts, so both give identical bytes (the build passes -ffp-contract=off: a fused multiply-add
// would round differently). Tables and scratch rows are built once per size.
class AreaResize {
 public:
  typedef float V4 __attribute__((vector_size(16)));
  typedef uint8_t U4 __attribute__((vector_size(4)));

  AreaResize(int sh, int sw, int dh, int dw, int cn)
      : sh_(sh), sw_(sw), dh_(dh), dw_(dw), cn_(cn), rows_(static_cast<size_t>(sh) * dw * cn), sum_(dw * cn),
        quad_(sw) {
    table(sw, dw, xs_, xstart_, xa_);
    table(sh, dh, ys_, ystart_, ya_);
  }

  bool matches(int sh, int sw, int dh, int dw, int cn) const {
    return sh == sh_ && sw == sw_ && dh == dh_ && dw == dw_ && cn == cn_;
  }

  // src: sh x sw x cn, dst: dh x dw x cn. Each output value accumulates its entries in table order from 0 (as the
  // TypeScript does into zeroed Float32Arrays; 0 + p == p), but in a register rather than through memory.
  void apply(const uint8_t* src, uint8_t* dst) {
    const int width = dw_ * cn_, src_row = sw_ * cn_;
    float* rows = rows_.data();
    int sy = 0;
    if (cn_ == 1) {
      // Four rows at once, interleaved as floats (column x of rows sy..sy+3 in quad[x]), so that each table entry is
      // one 4-lane multiply and add (GCC vector extension: SIMD where there is some); per row the float operations and
      // their order are unchanged.
      V4* quad = quad_.data();
      for (; sy + 4 <= sh_; sy += 4) {
        const uint8_t* s = src + static_cast<size_t>(sy) * src_row;
        int x = 0;
        for (; x + 16 <= sw_; x += 16) interleave16(s + x, src_row, quad + x);
        for (; x < sw_; x++) {
          quad[x] = __builtin_convertvector((U4{s[x], s[src_row + x], s[2 * src_row + x], s[3 * src_row + x]}), V4);
        }
        float* r = rows + static_cast<size_t>(sy) * width;
        for (int dx = 0; dx < dw_; dx++) {
          V4 acc = {0.0f, 0.0f, 0.0f, 0.0f};
          for (int k = xstart_[dx]; k < xstart_[dx + 1]; k++) acc += quad[xs_[k]] * xa_[k];
          r[dx] = acc[0];
          r[dx + width] = acc[1];
          r[dx + 2 * width] = acc[2];
          r[dx + 3 * width] = acc[3];
        }
      }
    }
    for (; sy < sh_; sy++) {
      const uint8_t* s = src + static_cast<size_t>(sy) * src_row;
      float* r = rows + static_cast<size_t>(sy) * width;
      if (cn_ == 1) {
        for (int dx = 0; dx < dw_; dx++) {
          float acc = 0.0f;
          for (int k = xstart_[dx]; k < xstart_[dx + 1]; k++) acc += static_cast<float>(s[xs_[k]]) * xa_[k];
          r[dx] = acc;
        }
      } else {
        for (int dx = 0; dx < dw_; dx++) {
          for (int c = 0; c < cn_; c++) {
            float acc = 0.0f;
            for (int k = xstart_[dx]; k < xstart_[dx + 1]; k++) {
              acc += static_cast<float>(s[xs_[k] * cn_ + c]) * xa_[k];
            }
            r[dx * cn_ + c] = acc;
          }
        }
      }
    }
    float* sum = sum_.data();
    for (int dy = 0; dy < dh_; dy++) {
      std::fill(sum_.begin(), sum_.end(), 0.0f);
      for (int k = ystart_[dy]; k < ystart_[dy + 1]; k++) {
        const float beta = ya_[k];
        const float* r = rows + static_cast<size_t>(ys_[k]) * width;
        for (int x = 0; x < width; x++) sum[x] += beta * r[x];
      }
      uint8_t* o = dst + static_cast<size_t>(dy) * width;
      int x = 0;
      for (; x + 4 <= width; x += 4) {
        V4 v;
        std::memcpy(&v, sum + x, sizeof v);
        const U4 b = saturate(v);
        std::memcpy(o + x, &b, sizeof b);
      }
      for (; x < width; x++) o[x] = saturate(V4{sum[x], 0, 0, 0})[0];
    }
  }

 private:
  typedef uint8_t U16 __attribute__((vector_size(16)));
  typedef uint16_t U8x16 __attribute__((vector_size(16)));
  typedef int32_t I4 __attribute__((vector_size(16)));

  // quad[0..15] = the bytes of columns 0..15 of four rows (s, s + stride, ...) as floats, by byte and word unpacks
  // (what the compiler makes of a per-column gather is several times slower).
  static void interleave16(const uint8_t* s, int stride, V4* quad) {
    U16 a, b, c, d;
    std::memcpy(&a, s, 16);
    std::memcpy(&b, s + stride, 16);
    std::memcpy(&c, s + 2 * stride, 16);
    std::memcpy(&d, s + 3 * stride, 16);
    const U16 lo = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
    const U16 hi = {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const U8x16 wlo = {0, 8, 1, 9, 2, 10, 3, 11}, whi = {4, 12, 5, 13, 6, 14, 7, 15};
    const U16 ab[2] = {__builtin_shuffle(a, b, lo), __builtin_shuffle(a, b, hi)};
    const U16 cd[2] = {__builtin_shuffle(c, d, lo), __builtin_shuffle(c, d, hi)};
    const U16 zero = {};
    const U8x16 zero16 = {};
    for (int h = 0; h < 2; h++) {
      const U8x16 p = reinterpret_cast<U8x16>(ab[h]), q = reinterpret_cast<U8x16>(cd[h]);
      // Columns 8h..8h+3 and 8h+4..8h+7, each as bytes [a b c d].
      const U16 cols[2] = {reinterpret_cast<U16>(__builtin_shuffle(p, q, wlo)),
                           reinterpret_cast<U16>(__builtin_shuffle(p, q, whi))};
      for (int g = 0; g < 2; g++) {
        const U8x16 w[2] = {reinterpret_cast<U8x16>(__builtin_shuffle(cols[g], zero, lo)),
                            reinterpret_cast<U8x16>(__builtin_shuffle(cols[g], zero, hi))};
        for (int e = 0; e < 2; e++) {
          const I4 i0 = reinterpret_cast<I4>(__builtin_shuffle(w[e], zero16, wlo));
          const I4 i1 = reinterpret_cast<I4>(__builtin_shuffle(w[e], zero16, whi));
          V4* out = quad + 8 * h + 4 * g + 2 * e;
          out[0] = __builtin_convertvector(i0, V4);
          out[1] = __builtin_convertvector(i1, V4);
        }
      }
    }
  }

  // OpenCV's computeResizeAreaTab for one axis (in double, weights stored as float), as areaTable() in TypeScript:
  // destination dx takes the (source index, weight) entries [start[dx], start[dx + 1]).
  static void table(int ssize, int dsize, std::vector<int32_t>& si, std::vector<int32_t>& start,
                    std::vector<float>& alpha) {
    const double scale = static_cast<double>(ssize) / dsize;
    for (int dx = 0; dx < dsize; dx++) {
      start.push_back(static_cast<int32_t>(si.size()));
      const double fsx1 = dx * scale, fsx2 = fsx1 + scale;
      const double cell = std::min(scale, ssize - fsx1);
      const int sx2 = static_cast<int>(std::min(std::floor(fsx2), static_cast<double>(ssize - 1)));
      const int sx1 = std::min(static_cast<int>(std::ceil(fsx1)), sx2);
      auto push = [&](int s, double a) {
        si.push_back(s);
        alpha.push_back(static_cast<float>(a));
      };
      if (sx1 - fsx1 > 1e-3) push(sx1 - 1, (sx1 - fsx1) / cell);
      for (int sx = sx1; sx < sx2; sx++) push(sx, 1 / cell);
      if (fsx2 - sx2 > 1e-3) push(sx2, std::min(std::min(fsx2 - sx2, 1.0), cell) / cell);
    }
    start.push_back(static_cast<int32_t>(si.size()));
  }

  // saturate_cast<uchar>(float) lane-wise: clamp to [0, 255], round half to even. Adding and removing 2^23 rounds in
  // the default (nearest-even) mode, exactly for 0 <= v < 2^23 (std::nearbyint would be a libm call per pixel).
  static U4 saturate(V4 v) {
    const V4 zero = {0.0f, 0.0f, 0.0f, 0.0f}, top = {255.0f, 255.0f, 255.0f, 255.0f};
    const V4 magic = {8388608.0f, 8388608.0f, 8388608.0f, 8388608.0f};
    v = v < zero ? zero : v;
    v = v > top ? top : v;
    v = (v + magic) - magic;
    return __builtin_convertvector(v, U4);
  }

  int sh_, sw_, dh_, dw_, cn_;
  std::vector<int32_t> xs_, xstart_, ys_, ystart_;
  std::vector<float> xa_, ya_, rows_, sum_;
  std::vector<V4> quad_;
};

struct Handle {
  std::unique_ptr<ale::ALEInterface> ale;
  bool loaded = false;
  size_t width = 0, height = 0;
  std::unique_ptr<AreaResize> resize;  // of arc_ale_step_preprocessed, rebuilt when the sizes change
  uint8_t gray[256] = {};               // palette index → luminance, filled by loadROM (see fill_gray)
};

// ALE's applyPaletteGrayscale looks each pixel up in its 32-bit palette (about twice the instructions of a byte
// table); the table is that same function applied to every index, so the bytes are the same. The TIA only emits even
// indices (ALE's lookup of 255 would read past its palette), so 255 copies 254.
void fill_gray(Handle* h) {
  uint8_t index[255];
  for (int i = 0; i < 255; i++) index[i] = static_cast<uint8_t>(i);
  h->ale->theOSystem->colourPalette().applyPaletteGrayscale(h->gray, index, 255);
  h->gray[255] = h->gray[254];
}

int fail(const char* what, const char* message) {
  last_error = std::string(what) + ": " + message;
  return -1;
}

// Runs fn, turning any exception into -1 + last_error.
template <typename Fn>
int32_t guard(const char* what, Fn&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return fail(what, e.what());
  } catch (...) {
    return fail(what, "unknown C++ exception");
  }
}

bool need_rom(Handle* h, const char* what) {
  if (h == nullptr) {
    fail(what, "null handle");
    return false;
  }
  if (!h->loaded) {
    fail(what, "no ROM loaded (call loadROM first)");
    return false;
  }
  return true;
}

enum ObsKind { OBS_NONE = 0, OBS_RGB = 1, OBS_GRAYSCALE = 2, OBS_RAM = 3 };

size_t obs_size(const Handle* h, int kind) {
  switch (kind) {
    case OBS_RGB: return h->width * h->height * 3;
    case OBS_GRAYSCALE: return h->width * h->height;
    case OBS_RAM: return 128;
    default: return 0;
  }
}

// Writes the current observation of `kind` into dst (capacity checked by the caller).
void write_obs(Handle* h, int kind, uint8_t* dst) {
  ale::ALEInterface& a = *h->ale;
  switch (kind) {
    case OBS_RGB:
      a.theOSystem->colourPalette().applyPaletteRGB(dst, a.environment->getScreen().getArray(), h->width * h->height);
      break;
    case OBS_GRAYSCALE: {
      const uint8_t* screen = a.environment->getScreen().getArray();
      const uint8_t* gray = h->gray;
      const size_t n = h->width * h->height;
      // Eight lookups per store: bytes alias everything, so a byte-by-byte loop reloads and stores per pixel.
      size_t i = 0;
      for (; i + 8 <= n; i += 8) {
        uint8_t eight[8];
        for (int b = 0; b < 8; b++) eight[b] = gray[screen[i + b]];
        std::memcpy(dst + i, eight, 8);
      }
      for (; i < n; i++) dst[i] = gray[screen[i]];
      break;
    }
    case OBS_RAM:
      std::memcpy(dst, a.getRAM().array(), 128);
      break;
    default:
      break;
  }
}

bool check_obs(Handle* h, int kind, const uint8_t* dst, int32_t cap, const char* what) {
  if (kind < OBS_NONE || kind > OBS_RAM) {
    fail(what, "observation kind must be 0 (none), 1 (rgb), 2 (grayscale) or 3 (ram)");
    return false;
  }
  if (kind != OBS_NONE && (dst == nullptr || cap < static_cast<int32_t>(obs_size(h, kind)))) {
    fail(what, "observation buffer is missing or too small");
    return false;
  }
  return true;
}

// Fills out[0..5]: reward, terminated, truncated, lives, episode frame number, frame number.
void write_status(ale::ALEInterface& a, int32_t reward, int32_t* out) {
  out[0] = reward;
  out[1] = a.game_over(false) ? 1 : 0;
  out[2] = a.game_truncated() ? 1 : 0;
  out[3] = a.lives();
  out[4] = a.getEpisodeFrameNumber();
  out[5] = a.getFrameNumber();
}

template <typename Vec>
int copy_vector(const Vec& v, int32_t* out, int32_t cap) {
  const int n = static_cast<int>(v.size());
  for (int i = 0; i < n && i < cap; i++) out[i] = static_cast<int32_t>(v[i]);
  return n;
}

}  // namespace

extern "C" {

// The message of the last failed call on this thread ("" when none).
const char* arc_ale_last_error(void) { return last_error.c_str(); }

// ALE's version string, e.g. "0.12.1".
const char* arc_ale_version(void) { return ALE_VERSION; }

// A new interface with logging set to errors only, or NULL on failure.
void* arc_ale_create(void) {
  try {
    ale::Logger::setMode(ale::Logger::Error);
    auto h = std::make_unique<Handle>();
    h->ale = std::make_unique<ale::ALEInterface>();
    return h.release();
  } catch (const std::exception& e) {
    fail("create", e.what());
  } catch (...) {
    fail("create", "unknown C++ exception");
  }
  return nullptr;
}

// Destroys an interface (NULL is ignored).
void arc_ale_destroy(void* handle) {
  try {
    delete static_cast<Handle*>(handle);
  } catch (...) {
  }
}

int32_t arc_ale_set_int(void* handle, const char* key, int32_t value) {
  auto* h = static_cast<Handle*>(handle);
  return guard("setInt", [&] { return h->ale->setInt(key, value), 0; });
}

int32_t arc_ale_set_float(void* handle, const char* key, float value) {
  auto* h = static_cast<Handle*>(handle);
  return guard("setFloat", [&] { return h->ale->setFloat(key, value), 0; });
}

int32_t arc_ale_set_bool(void* handle, const char* key, int32_t value) {
  auto* h = static_cast<Handle*>(handle);
  return guard("setBool", [&] { return h->ale->setBool(key, value != 0), 0; });
}

int32_t arc_ale_set_string(void* handle, const char* key, const char* value) {
  auto* h = static_cast<Handle*>(handle);
  return guard("setString", [&] { return h->ale->setString(key, value), 0; });
}

// Loads (or reloads, applying settings such as random_seed) a ROM file. 0 on success.
int32_t arc_ale_load_rom(void* handle, const char* path) {
  auto* h = static_cast<Handle*>(handle);
  if (h == nullptr) return fail("loadROM", "null handle");
  return guard("loadROM", [&] {
    h->loaded = false;
    h->ale->loadROM(path);
    h->width = h->ale->environment->getScreen().width();
    h->height = h->ale->environment->getScreen().height();
    fill_gray(h);
    h->loaded = true;
    return 0;
  });
}

int32_t arc_ale_screen_width(void* handle) {
  auto* h = static_cast<Handle*>(handle);
  return need_rom(h, "screenWidth") ? static_cast<int32_t>(h->width) : -1;
}

int32_t arc_ale_screen_height(void* handle) {
  auto* h = static_cast<Handle*>(handle);
  return need_rom(h, "screenHeight") ? static_cast<int32_t>(h->height) : -1;
}

int32_t arc_ale_reset_game(void* handle) {
  auto* h = static_cast<Handle*>(handle);
  if (!need_rom(h, "reset_game")) return -1;
  return guard("reset_game", [&] { return h->ale->reset_game(), 0; });
}

// One emulator frame (with ALE's sticky actions); writes the reward to *reward. 0 on success.
int32_t arc_ale_act(void* handle, int32_t action, float paddle_strength, int32_t* reward) {
  auto* h = static_cast<Handle*>(handle);
  if (!need_rom(h, "act")) return -1;
  return guard("act", [&] {
    *reward = h->ale->act(static_cast<ale::Action>(action), paddle_strength);
    return 0;
  });
}

// One agent step: `frameskip` frames of `action` (as ale-py's env loop does). Writes the observation of `kind` after
// the last frame into obs and, when prev is not NULL and at least two frames ran, the one after the second-to-last
// frame into prev (for max-pooling). out[0..5] = reward sum, terminated, truncated, lives, episode frame, frame.
// Returns the number of frames run, or -1.
int32_t arc_ale_step(void* handle, int32_t action, float paddle_strength, int32_t frameskip, int32_t kind,
                     uint8_t* obs, int32_t obs_cap, uint8_t* prev, int32_t* out) {
  auto* h = static_cast<Handle*>(handle);
  if (!need_rom(h, "step") || !check_obs(h, kind, obs, obs_cap, "step")) return -1;
  if (frameskip < 1) return fail("step", "frameskip must be at least 1");
  return guard("step", [&] {
    ale::ALEInterface& a = *h->ale;
    int32_t reward = 0, frames = 0;
    for (; frames < frameskip; frames++) {
      if (frames == frameskip - 1 && prev != nullptr && kind != OBS_NONE) write_obs(h, kind, prev);
      // No early exit at game over: ALE draws its sticky-action RNG on every act(), so stopping early would make
      // trajectories diverge from ale-py's for the same seed.
      reward += a.act(static_cast<ale::Action>(action), paddle_strength);
    }
    write_obs(h, kind, obs);
    write_status(a, reward, out);
    return frames;
  });
}

enum PreprocessFlags { STOP_ON_LIFE_LOSS = 1 };

// One agent step of Gymnasium's AtariPreprocessing (over an env with frameskip 1) in one call, so that the per-frame
// work costs no FFI round trips and the max-pool and resize run natively: `frameskip` frames of `action` (ALE's
// sticky actions apply per frame), summing rewards and stopping early at game over, truncation or, with
// flags & STOP_ON_LIFE_LOSS, when lives drop below `lives` (tracked per frame, as the wrapper does).
// pool holds two screens of `channels` bytes per pixel (1: grayscale, 3: RGB): pool[0] gets the last frame and pool[1]
// the one before, each only when reached, so an early stop leaves older contents there, as in Gymnasium. Then
// pool[0] = max(pool[0], pool[1]) when frameskip > 1, area-resized to dst_h x dst_w x channels into dst.
// out[0..7] = reward sum, terminated (game over, or life lost with STOP_ON_LIFE_LOSS), truncated, lives, episode
// frame, frame, whether a life was lost (1/0), frames run. Returns the number of frames run, or -1.
int32_t arc_ale_step_preprocessed(void* handle, int32_t action, float paddle_strength, int32_t frameskip, int32_t lives,
                                  int32_t flags, int32_t channels, uint8_t* pool, int32_t pool_cap, uint8_t* dst,
                                  int32_t dst_cap, int32_t dst_h, int32_t dst_w, int32_t* out) {
  auto* h = static_cast<Handle*>(handle);
  const char* what = "step_preprocessed";
  if (!need_rom(h, what)) return -1;
  if (frameskip < 1) return fail(what, "frameskip must be at least 1");
  if (channels != 1 && channels != 3) return fail(what, "channels must be 1 (grayscale) or 3 (rgb)");
  const size_t n = h->width * h->height * channels;
  if (pool == nullptr || pool_cap < 0 || static_cast<size_t>(pool_cap) < 2 * n) {
    return fail(what, "pool buffer is missing or smaller than two screens");
  }
  if (out == nullptr) return fail(what, "null status buffer");
  if (dst_h < 1 || dst_w < 1 || static_cast<size_t>(dst_h) > h->height || static_cast<size_t>(dst_w) > h->width) {
    return fail(what, "output size must be between 1x1 and the screen size (only downscaling)");
  }
  if (dst == nullptr || dst_cap < dst_h * dst_w * channels) {
    return fail(what, "output buffer is missing or smaller than dst_h * dst_w * channels");
  }
  return guard(what, [&] {
    ale::ALEInterface& a = *h->ale;
    const int sh = static_cast<int>(h->height), sw = static_cast<int>(h->width);
    if (!h->resize || !h->resize->matches(sh, sw, dst_h, dst_w, channels)) {
      h->resize = std::make_unique<AreaResize>(sh, sw, dst_h, dst_w, channels);
    }
    const int kind = channels == 1 ? OBS_GRAYSCALE : OBS_RGB;
    const ale::Action act = static_cast<ale::Action>(action);
    int32_t reward = 0, frames = 0;
    bool terminated = false, truncated = false, life_lost = false;
    while (frames < frameskip) {
      reward += a.act(act, paddle_strength);
      const int t = frames++;
      terminated = a.game_over(false);
      truncated = a.game_truncated();
      const int now = a.lives();
      if (now < lives) {
        life_lost = true;
        if (flags & STOP_ON_LIFE_LOSS) terminated = true;
      }
      lives = now;
      if (terminated || truncated) break;
      if (t == frameskip - 2) write_obs(h, kind, pool + n);
      else if (t == frameskip - 1) write_obs(h, kind, pool);
    }
    if (frameskip > 1) {
      const uint8_t* b = pool + n;
      for (size_t i = 0; i < n; i++) pool[i] = std::max(pool[i], b[i]);
    }
    h->resize->apply(pool, dst);
    write_status(a, reward, out);
    out[1] = terminated ? 1 : 0;
    out[2] = truncated ? 1 : 0;
    out[6] = life_lost ? 1 : 0;
    out[7] = frames;
    return frames;
  });
}

// Area-resizes one image (src_h x src_w x channels → dst_h x dst_w x channels) as arc_ale_step_preprocessed does. It
// builds its tables per call: for tests and one-off use, not per step.
int32_t arc_ale_area_resize(const uint8_t* src, int32_t src_cap, int32_t src_h, int32_t src_w, int32_t channels,
                            uint8_t* dst, int32_t dst_cap, int32_t dst_h, int32_t dst_w) {
  const char* what = "area_resize";
  if (channels < 1 || dst_h < 1 || dst_w < 1 || dst_h > src_h || dst_w > src_w) {
    return fail(what, "sizes must be positive and only downscale");
  }
  if (src == nullptr || dst == nullptr || static_cast<int64_t>(src_cap) < int64_t{src_h} * src_w * channels ||
      static_cast<int64_t>(dst_cap) < int64_t{dst_h} * dst_w * channels) {
    return fail(what, "a buffer is missing or smaller than its size");
  }
  return guard(what, [&] {
    AreaResize(src_h, src_w, dst_h, dst_w, channels).apply(src, dst);
    return 0;
  });
}

// Writes the current observation of `kind` and the status (reward 0) like arc_ale_step, without acting.
int32_t arc_ale_observe(void* handle, int32_t kind, uint8_t* obs, int32_t obs_cap, int32_t* out) {
  auto* h = static_cast<Handle*>(handle);
  if (!need_rom(h, "observe") || !check_obs(h, kind, obs, obs_cap, "observe")) return -1;
  return guard("observe", [&] {
    write_obs(h, kind, obs);
    if (out != nullptr) write_status(*h->ale, 0, out);
    return 0;
  });
}

int32_t arc_ale_game_over(void* handle, int32_t with_truncation) {
  auto* h = static_cast<Handle*>(handle);
  if (!need_rom(h, "game_over")) return -1;
  return guard("game_over", [&] { return h->ale->game_over(with_truncation != 0) ? 1 : 0; });
}

int32_t arc_ale_lives(void* handle) {
  auto* h = static_cast<Handle*>(handle);
  if (!need_rom(h, "lives")) return -1;
  return guard("lives", [&] { return h->ale->lives(); });
}

int32_t arc_ale_frame_number(void* handle) {
  auto* h = static_cast<Handle*>(handle);
  if (!need_rom(h, "getFrameNumber")) return -1;
  return guard("getFrameNumber", [&] { return h->ale->getFrameNumber(); });
}

int32_t arc_ale_episode_frame_number(void* handle) {
  auto* h = static_cast<Handle*>(handle);
  if (!need_rom(h, "getEpisodeFrameNumber")) return -1;
  return guard("getEpisodeFrameNumber", [&] { return h->ale->getEpisodeFrameNumber(); });
}

// Action sets: copies up to cap ids into out; returns the full count.
int32_t arc_ale_legal_actions(void* handle, int32_t* out, int32_t cap) {
  auto* h = static_cast<Handle*>(handle);
  if (!need_rom(h, "getLegalActionSet")) return -1;
  return guard("getLegalActionSet", [&] { return copy_vector(h->ale->getLegalActionSet(), out, cap); });
}

int32_t arc_ale_minimal_actions(void* handle, int32_t* out, int32_t cap) {
  auto* h = static_cast<Handle*>(handle);
  if (!need_rom(h, "getMinimalActionSet")) return -1;
  return guard("getMinimalActionSet", [&] { return copy_vector(h->ale->getMinimalActionSet(), out, cap); });
}

int32_t arc_ale_available_modes(void* handle, int32_t* out, int32_t cap) {
  auto* h = static_cast<Handle*>(handle);
  if (!need_rom(h, "getAvailableModes")) return -1;
  return guard("getAvailableModes", [&] { return copy_vector(h->ale->getAvailableModes(), out, cap); });
}

int32_t arc_ale_available_difficulties(void* handle, int32_t* out, int32_t cap) {
  auto* h = static_cast<Handle*>(handle);
  if (!need_rom(h, "getAvailableDifficulties")) return -1;
  return guard("getAvailableDifficulties", [&] { return copy_vector(h->ale->getAvailableDifficulties(), out, cap); });
}

int32_t arc_ale_set_mode(void* handle, int32_t mode) {
  auto* h = static_cast<Handle*>(handle);
  if (!need_rom(h, "setMode")) return -1;
  return guard("setMode", [&] { return h->ale->setMode(static_cast<ale::game_mode_t>(mode)), 0; });
}

int32_t arc_ale_set_difficulty(void* handle, int32_t difficulty) {
  auto* h = static_cast<Handle*>(handle);
  if (!need_rom(h, "setDifficulty")) return -1;
  return guard("setDifficulty", [&] { return h->ale->setDifficulty(static_cast<ale::difficulty_t>(difficulty)), 0; });
}

int32_t arc_ale_get_screen_rgb(void* handle, uint8_t* out, int32_t cap) {
  auto* h = static_cast<Handle*>(handle);
  if (!need_rom(h, "getScreenRGB") || !check_obs(h, OBS_RGB, out, cap, "getScreenRGB")) return -1;
  return guard("getScreenRGB", [&] { return write_obs(h, OBS_RGB, out), 0; });
}

int32_t arc_ale_get_screen_grayscale(void* handle, uint8_t* out, int32_t cap) {
  auto* h = static_cast<Handle*>(handle);
  if (!need_rom(h, "getScreenGrayscale") || !check_obs(h, OBS_GRAYSCALE, out, cap, "getScreenGrayscale")) return -1;
  return guard("getScreenGrayscale", [&] { return write_obs(h, OBS_GRAYSCALE, out), 0; });
}

int32_t arc_ale_get_ram(void* handle, uint8_t* out, int32_t cap) {
  auto* h = static_cast<Handle*>(handle);
  if (!need_rom(h, "getRAM") || !check_obs(h, OBS_RAM, out, cap, "getRAM")) return -1;
  return guard("getRAM", [&] { return write_obs(h, OBS_RAM, out), 0; });
}

// Serializes the emulator state (with the sticky-action RNG when include_rng != 0). Copies it into out when cap is
// large enough; returns the serialized size either way (call again with a larger buffer when it exceeds cap).
int32_t arc_ale_clone_state(void* handle, int32_t include_rng, uint8_t* out, int32_t cap) {
  auto* h = static_cast<Handle*>(handle);
  if (!need_rom(h, "cloneState")) return -1;
  return guard("cloneState", [&] {
    const std::string s = h->ale->cloneState(include_rng != 0).serialize();
    const int32_t n = static_cast<int32_t>(s.size());
    if (out != nullptr && cap >= n) std::memcpy(out, s.data(), s.size());
    return n;
  });
}

// Restores a state serialized by arc_ale_clone_state.
int32_t arc_ale_restore_state(void* handle, const uint8_t* data, int32_t size) {
  auto* h = static_cast<Handle*>(handle);
  if (!need_rom(h, "restoreState")) return -1;
  if (data == nullptr || size <= 0) return fail("restoreState", "empty state");
  return guard("restoreState", [&] {
    const ale::ALEState state(std::string(reinterpret_cast<const char*>(data), static_cast<size_t>(size)));
    h->ale->restoreState(state);
    return 0;
  });
}

}  // extern "C"

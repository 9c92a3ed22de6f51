// Arcadia's C ABI over ale::ALEInterface (ale-py 0.12.1), for Deno FFI.
//
// Conventions:
// - Every function catches every C++ exception: the call returns -1 (or NULL) and arc_ale_last_error() gives the
//   message for the calling thread.
// - Methods that need a ROM fail with an error before loadROM instead of reaching ALE (which aborts the process).
// - Screens, RAM and states are copied straight into caller-provided buffers; the per-step calls (arc_ale_step,
//   arc_ale_act, arc_ale_observe) allocate nothing.

#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <string>

#include "ale/ale_interface.hpp"

namespace {

thread_local std::string last_error;

struct Handle {
  std::unique_ptr<ale::ALEInterface> ale;
  bool loaded = false;
  size_t width = 0, height = 0;
};

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
    case OBS_GRAYSCALE:
      a.theOSystem->colourPalette().applyPaletteGrayscale(dst, a.environment->getScreen().getArray(),
                                                          h->width * h->height);
      break;
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

// Arcadia's C ABI over ViZDoom's C++ controller (vizdoom::DoomGame), for Deno FFI.
//
// Written against ViZDoom 1.3.2's public headers (ViZDoomGame.h, ViZDoomTypes.h) plus the controller header for
// direct access to the engine's shared-memory buffers. Rules:
// - Every exported function catches every C++ exception and returns an error code (-1, or NULL / NaN where noted);
//   the message is kept per thread and read with avz_last_error().
// - The hot path (avz_step) allocates nothing and copies each frame exactly once, from the engine's shared memory
//   straight into caller buffers bound once with avz_bind() (resized and laid out HWC or CHW on the way).
//
// Compiled with -DARCADIA_VIZDOOM_LAUNCHER, this same file is the engine launcher: a tiny program the controller
// starts instead of the engine, which sets a parent-death signal and then execs the real engine (see launcher_main).

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef ARCADIA_VIZDOOM_LAUNCHER

#include "ViZDoom.h"
#include "ViZDoomController.h"
#include "ViZDoomVersion.h"

#define AVZ_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

thread_local std::string lastError;

int fail(const char *what, const char *message) {
  lastError = std::string(what) + ": " + (message ? message : "unknown error");
  return -1;
}

// One output axis of a resize: for output coordinate i, taps [start[i], start[i] + count[i]) of index/weight.
struct Axis {
  std::vector<int32_t> start, count, index;
  std::vector<float> weight;

  // Nearest neighbour the way OpenCV's INTER_NEAREST picks (floor(i * src / dst)); area = box filter with
  // fractional edge weights (OpenCV's INTER_AREA for shrinking).
  void plan(int src, int dst, bool area) {
    start.assign(dst, 0);
    count.assign(dst, 0);
    index.clear();
    weight.clear();
    const double scale = double(src) / double(dst);
    for (int i = 0; i < dst; ++i) {
      start[i] = int32_t(index.size());
      if (!area || scale <= 1.0) {
        int s = int(std::floor(i * scale));
        if (s > src - 1) s = src - 1;
        index.push_back(s);
        weight.push_back(1.0f);
      } else {
        const double lo = i * scale, hi = (i + 1) * scale;
        for (int s = int(std::floor(lo)); s < src && s < hi; ++s) {
          const double w = (std::min<double>(hi, s + 1) - std::max<double>(lo, s)) / scale;
          if (w <= 1e-9) continue;
          index.push_back(s);
          weight.push_back(float(w));
        }
      }
      count[i] = int32_t(index.size()) - start[i];
    }
  }
};

// Copies (and possibly resizes and transposes) one frame. Planned once per configuration; run() allocates nothing.
// Layouts are described by strides (pixel, row, channel) so the loops carry no layout branches.
struct Resampler {
  int srcW = 0, srcH = 0, dstW = 0, dstH = 0, channels = 1;
  size_t sPix = 1, sRow = 0, sChan = 0, dPix = 1, dRow = 0, dChan = 0;
  bool area = false, plainCopy = false;
  Axis xs, ys;
  std::vector<int32_t> srcX;  // per output x (nearest) or per tap (area): source x times the pixel stride
  std::vector<float> rows;    // area filter's horizontal pass: channels x srcH x dstW
  std::vector<float> line;    // area filter's vertical pass: one output row

  void plan(int sw, int sh, int c, bool planar, int dw, int dh, bool chw, bool useArea) {
    srcW = sw, srcH = sh, channels = c, dstW = dw, dstH = dh;
    const bool sameSize = (sw == dw && sh == dh);
    area = useArea && !sameSize;
    const bool srcChw = planar || c == 1, dstChwEff = chw || c == 1;
    plainCopy = sameSize && srcChw == dstChwEff;
    sPix = srcChw ? 1 : size_t(c), sRow = size_t(sw) * sPix, sChan = srcChw ? size_t(sw) * sh : 1;
    dPix = dstChwEff ? 1 : size_t(c), dRow = size_t(dw) * dPix, dChan = dstChwEff ? size_t(dw) * dh : 1;
    xs.plan(sw, dw, area);
    ys.plan(sh, dh, area);
    srcX.resize(xs.index.size());
    for (size_t i = 0; i < xs.index.size(); ++i) srcX[i] = int32_t(xs.index[i] * sPix);
    rows.assign(area ? size_t(c) * sh * dw : 0, 0.0f);
    line.assign(dw, 0.0f);
  }

  void run(const uint8_t *src, uint8_t *dst) {
    if (plainCopy) {
      std::memcpy(dst, src, size_t(srcW) * srcH * channels);
      return;
    }
    const int32_t *sx = srcX.data();
    if (!area) {
      for (int c = 0; c < channels; ++c) {
        for (int y = 0; y < dstH; ++y) {
          const uint8_t *s = src + c * sChan + size_t(ys.index[y]) * sRow;
          uint8_t *d = dst + c * dChan + size_t(y) * dRow;
          for (int x = 0; x < dstW; ++x) d[x * dPix] = s[sx[x]];
        }
      }
      return;
    }
    const float *xw = xs.weight.data(), *yw = ys.weight.data();
    for (int c = 0; c < channels; ++c) {
      for (int y = 0; y < srcH; ++y) {
        const uint8_t *s = src + c * sChan + size_t(y) * sRow;
        float *r = &rows[(size_t(c) * srcH + y) * dstW];
        for (int x = 0; x < dstW; ++x) {
          float acc = 0.0f;
          for (int t = xs.start[x], e = t + xs.count[x]; t < e; ++t) acc += xw[t] * s[sx[t]];
          r[x] = acc;
        }
      }
      float *acc = line.data();
      for (int y = 0; y < dstH; ++y) {
        std::fill(acc, acc + dstW, 0.0f);
        for (int t = ys.start[y], e = t + ys.count[y]; t < e; ++t) {
          const float w = yw[t], *r = &rows[(size_t(c) * srcH + ys.index[t]) * dstW];
          for (int x = 0; x < dstW; ++x) acc[x] += w * r[x];
        }
        uint8_t *d = dst + c * dChan + size_t(y) * dRow;
        for (int x = 0; x < dstW; ++x) {
          const int v = int(acc[x] + 0.5f);
          d[x * dPix] = uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
        }
      }
    }
  }
};

// Layout of the `out` doubles written by avz_step / avz_new_episode / avz_observe.
enum OutSlot { OUT_REWARD = 0, OUT_TOTAL_REWARD, OUT_FINISHED, OUT_TIMEOUT, OUT_DEAD, OUT_EPISODE_TIME, OUT_COUNT };

// DoomGame plus preallocated state for the allocation-free step (the subclass reaches the protected controller).
class Game : public vizdoom::DoomGame {
 public:
  std::vector<double> action;
  const double *boundAction = nullptr;
  uint8_t *boundScreen = nullptr, *boundDepth = nullptr, *boundLabels = nullptr, *boundAutomap = nullptr;
  double *boundVars = nullptr, *boundOut = nullptr;
  int outW = 0, outH = 0;  // 0 = native size
  bool outChw = false, outArea = false;
  Resampler screenR, grayR;

  // avz_step's last error, for callers that ran it on another thread (Deno's nonblocking FFI calls run on a pool
  // thread, whose thread-local message the caller cannot read).
  std::string stepError;

  vizdoom::DoomController *controller() { return this->doomController; }
  const std::vector<vizdoom::GameVariable> &variables() const { return this->availableGameVariables; }

  // Plans the resamplers for the current screen size (after init()).
  void planOutputs() {
    const int w = getScreenWidth(), h = getScreenHeight(), c = getScreenChannels();
    const vizdoom::ScreenFormat f = getScreenFormat();
    const bool planar = f == vizdoom::CRCGCB || f == vizdoom::CBCGCR;
    const int dw = outW > 0 ? outW : w, dh = outH > 0 ? outH : h;
    screenR.plan(w, h, c, planar, dw, dh, outChw, outArea);
    grayR.plan(w, h, 1, true, dw, dh, outChw, outArea);
  }

  // advanceAction() minus the per-step GameState allocation and frame copy of DoomGame::updateState(); the reward
  // bookkeeping is DoomGame's own (updateReward and the same lastMapTic rule for synchronous modes).
  void stepNoAlloc(unsigned int tics) {
    if (!isRunning()) throw vizdoom::ViZDoomIsNotRunningException();
    if (boundAction) {
      for (size_t i = 0; i < action.size(); ++i) action[i] = boundAction[i];
      setAction(action);
    }
    vizdoom::DoomController *c = this->doomController;
    if (!c->isTicPossible()) return;
    c->tics(tics, true);
    for (size_t i = 0; i < this->availableButtons.size(); ++i) this->lastAction[i] = this->nextAction[i];
    this->updateReward();
    this->lastMapTic = c->isRunDoomAsync() ? c->getMapTic() : c->getMapLastTic();
  }

  // Copies the current buffers into the bound destinations (once each) and fills `out`.
  void writeObservation() {
    vizdoom::DoomController *c = this->doomController;
    if (boundScreen && c->getScreenBuffer()) screenR.run(c->getScreenBuffer(), boundScreen);
    if (boundDepth && c->isDepthBufferEnabled() && c->getDepthBuffer()) grayR.run(c->getDepthBuffer(), boundDepth);
    if (boundLabels && c->isLabelsEnabled() && c->getLabelsBuffer()) grayR.run(c->getLabelsBuffer(), boundLabels);
    if (boundAutomap && c->isAutomapEnabled() && c->getAutomapBuffer()) screenR.run(c->getAutomapBuffer(), boundAutomap);
    if (boundVars) {
      for (size_t i = 0; i < this->availableGameVariables.size(); ++i) {
        boundVars[i] = c->getGameVariable(this->availableGameVariables[i]);
      }
    }
    if (boundOut) {
      boundOut[OUT_REWARD] = this->lastReward;
      boundOut[OUT_TOTAL_REWARD] = this->summaryReward;
      boundOut[OUT_FINISHED] = c->isTicPossible() ? 0.0 : 1.0;
      boundOut[OUT_TIMEOUT] = c->isMapTimeoutReached() ? 1.0 : 0.0;
      boundOut[OUT_DEAD] = c->isPlayerDead() ? 1.0 : 0.0;
      boundOut[OUT_EPISODE_TIME] = double(getEpisodeTime());
    }
  }
};

Game *asGame(void *g) {
  if (!g) throw std::invalid_argument("null game handle");
  return static_cast<Game *>(g);
}

std::string str(const char *s) { return s ? std::string(s) : std::string(); }

// Runs `body`, turning any exception into -1 plus the thread's last error.
template <typename F>
int32_t guard(const char *what, F body) {
  try {
    return body();
  } catch (const std::exception &e) {
    return fail(what, e.what());
  } catch (...) {
    return fail(what, "unknown C++ exception");
  }
}

int32_t copyString(const std::string &s, char *out, int32_t cap) {
  if (out && cap > 0) {
    const size_t n = std::min(s.size(), size_t(cap - 1));
    std::memcpy(out, s.data(), n);
    out[n] = '\0';
  }
  return int32_t(s.size());
}

}  // namespace

// ---- errors and versions ------------------------------------------------------------------------------------------

/** The calling thread's last error message ("" when none); valid until the next failing call on this thread. */
AVZ_EXPORT const char *avz_last_error(void) { return lastError.c_str(); }

/** ViZDoom library version string, e.g. "1.3.2" (the engine must match it exactly). */
AVZ_EXPORT const char *avz_version(void) { return VIZDOOM_LIB_VERSION_STR; }

// ---- lifetime -----------------------------------------------------------------------------------------------------

/** A new, unconfigured game; NULL on failure. */
AVZ_EXPORT void *avz_create(void) {
  try {
    return new Game();
  } catch (const std::exception &e) {
    fail("avz_create", e.what());
  } catch (...) {
    fail("avz_create", "unknown C++ exception");
  }
  return nullptr;
}

/** Closes the game (stopping its engine) and frees it. Safe on NULL. */
AVZ_EXPORT int32_t avz_destroy(void *g) {
  if (!g) return 0;
  int32_t rc = guard("avz_destroy(close)", [&] {
    asGame(g)->close();
    return 0;
  });
  try {
    delete asGame(g);
  } catch (...) {
    rc = fail("avz_destroy", "exception while freeing the game");
  }
  return rc;
}

/** Closes the engine; the game can be configured and init()ed again. */
AVZ_EXPORT int32_t avz_close(void *g) {
  return guard("avz_close", [&] {
    asGame(g)->close();
    return 0;
  });
}

// ---- configuration (before avz_init) ------------------------------------------------------------------------------

/** Loads a .cfg file; relative paths inside it resolve against the file's directory. */
AVZ_EXPORT int32_t avz_load_config(void *g, const char *path) {
  return guard("avz_load_config", [&] {
    if (!asGame(g)->loadConfig(str(path))) throw std::runtime_error("cannot load config " + str(path));
    return 0;
  });
}

/** Applies config text in .cfg syntax (e.g. "living_reward = 0.01"), like a .cfg file loaded on top. */
AVZ_EXPORT int32_t avz_set_config(void *g, const char *text) {
  return guard("avz_set_config", [&] {
    if (!asGame(g)->setConfig(str(text))) throw std::runtime_error("cannot apply config text: " + str(text));
    return 0;
  });
}

/** Path of the engine executable (or of the launcher wrapping it). */
AVZ_EXPORT int32_t avz_set_vizdoom_path(void *g, const char *path) {
  return guard("avz_set_vizdoom_path", [&] { asGame(g)->setViZDoomPath(str(path)); return 0; });
}

/** Path of the IWAD (e.g. freedoom2.wad). */
AVZ_EXPORT int32_t avz_set_doom_game_path(void *g, const char *path) {
  return guard("avz_set_doom_game_path", [&] { asGame(g)->setDoomGamePath(str(path)); return 0; });
}

/** Path of the scenario WAD. */
AVZ_EXPORT int32_t avz_set_doom_scenario_path(void *g, const char *path) {
  return guard("avz_set_doom_scenario_path", [&] { asGame(g)->setDoomScenarioPath(str(path)); return 0; });
}

/** Map name, e.g. "map01". */
AVZ_EXPORT int32_t avz_set_doom_map(void *g, const char *map) {
  return guard("avz_set_doom_map", [&] { asGame(g)->setDoomMap(str(map)); return 0; });
}

/** Path of the engine's own config file (_vizdoom.ini); one per engine avoids races between engines. */
AVZ_EXPORT int32_t avz_set_doom_config_path(void *g, const char *path) {
  return guard("avz_set_doom_config_path", [&] { asGame(g)->setDoomConfigPath(str(path)); return 0; });
}

/** Appends one engine argument verbatim (no splitting on spaces). */
AVZ_EXPORT int32_t avz_add_game_arg(void *g, const char *arg) {
  return guard("avz_add_game_arg", [&] { asGame(g)->controller()->addCustomArg(str(arg)); return 0; });
}

/** Screen format (ViZDoomTypes.h ScreenFormat: CRCGCB=0, RGB24=1, ..., GRAY8=8). */
AVZ_EXPORT int32_t avz_set_screen_format(void *g, int32_t format) {
  return guard("avz_set_screen_format", [&] {
    if (format < 0 || format > 9) throw std::invalid_argument("screen format out of range");
    asGame(g)->setScreenFormat(vizdoom::ScreenFormat(format));
    return 0;
  });
}

/** Screen resolution (ViZDoomTypes.h ScreenResolution: RES_160X120=0, ...). */
AVZ_EXPORT int32_t avz_set_screen_resolution(void *g, int32_t resolution) {
  return guard("avz_set_screen_resolution", [&] {
    if (resolution < 0 || resolution > vizdoom::RES_1920X1080) throw std::invalid_argument("resolution out of range");
    asGame(g)->setScreenResolution(vizdoom::ScreenResolution(resolution));
    return 0;
  });
}

/** Removes all buttons (to replace the config's list). */
AVZ_EXPORT int32_t avz_clear_buttons(void *g) {
  return guard("avz_clear_buttons", [&] { asGame(g)->clearAvailableButtons(); return 0; });
}

/** Adds a button (ViZDoomTypes.h Button); max_value bounds delta buttons (-1 = no bound). */
AVZ_EXPORT int32_t avz_add_button(void *g, int32_t button, double max_value) {
  return guard("avz_add_button", [&] {
    if (button < 0 || button >= int32_t(vizdoom::BUTTON_COUNT)) throw std::invalid_argument("button out of range");
    asGame(g)->addAvailableButton(vizdoom::Button(button), max_value);
    return 0;
  });
}

/** Writes up to `cap` button ids into `out`; returns the number of available buttons. */
AVZ_EXPORT int32_t avz_get_buttons(void *g, int32_t *out, int32_t cap) {
  return guard("avz_get_buttons", [&] {
    const std::vector<vizdoom::Button> b = asGame(g)->getAvailableButtons();
    for (int32_t i = 0; i < int32_t(b.size()) && i < cap; ++i) out[i] = int32_t(b[i]);
    return int32_t(b.size());
  });
}

/** Number of available buttons (the length of an action vector). */
AVZ_EXPORT int32_t avz_get_available_buttons_size(void *g) {
  return guard("avz_get_available_buttons_size", [&] { return int32_t(asGame(g)->getAvailableButtonsSize()); });
}

/** Removes all game variables. */
AVZ_EXPORT int32_t avz_clear_game_variables(void *g) {
  return guard("avz_clear_game_variables", [&] { asGame(g)->clearAvailableGameVariables(); return 0; });
}

/** Adds a game variable (ViZDoomTypes.h GameVariable). */
AVZ_EXPORT int32_t avz_add_game_variable(void *g, int32_t variable) {
  return guard("avz_add_game_variable", [&] {
    if (variable < 0 || variable > vizdoom::USER60) throw std::invalid_argument("game variable out of range");
    asGame(g)->addAvailableGameVariable(vizdoom::GameVariable(variable));
    return 0;
  });
}

/** Writes up to `cap` game variable ids into `out`; returns the number of available game variables. */
AVZ_EXPORT int32_t avz_get_game_variables(void *g, int32_t *out, int32_t cap) {
  return guard("avz_get_game_variables", [&] {
    const std::vector<vizdoom::GameVariable> v = asGame(g)->getAvailableGameVariables();
    for (int32_t i = 0; i < int32_t(v.size()) && i < cap; ++i) out[i] = int32_t(v[i]);
    return int32_t(v.size());
  });
}

/** Name of a button ("ATTACK"); returns its length, writes at most cap-1 bytes plus NUL. */
AVZ_EXPORT int32_t avz_button_name(int32_t button, char *out, int32_t cap) {
  return guard("avz_button_name", [&] {
    if (button < 0 || button >= int32_t(vizdoom::BUTTON_COUNT)) throw std::invalid_argument("button out of range");
    return copyString(vizdoom::buttonToString(vizdoom::Button(button)), out, cap);
  });
}

/** Whether a button is a delta (analog) button: 1 yes, 0 no, -1 out of range. */
AVZ_EXPORT int32_t avz_is_delta_button(int32_t button) {
  return guard("avz_is_delta_button", [&] {
    if (button < 0 || button >= int32_t(vizdoom::BUTTON_COUNT)) throw std::invalid_argument("button out of range");
    return vizdoom::isDeltaButton(vizdoom::Button(button)) ? 1 : 0;
  });
}

/** Name of a game variable ("HEALTH"); returns its length, writes at most cap-1 bytes plus NUL. */
AVZ_EXPORT int32_t avz_game_variable_name(int32_t variable, char *out, int32_t cap) {
  return guard("avz_game_variable_name", [&] {
    if (variable < 0 || variable > vizdoom::USER60) throw std::invalid_argument("game variable out of range");
    return copyString(vizdoom::gameVariableToString(vizdoom::GameVariable(variable)), out, cap);
  });
}

/** Enables the depth buffer. */
AVZ_EXPORT int32_t avz_set_depth_buffer_enabled(void *g, int32_t on) {
  return guard("avz_set_depth_buffer_enabled", [&] { asGame(g)->setDepthBufferEnabled(on != 0); return 0; });
}

/** Enables the labels buffer. */
AVZ_EXPORT int32_t avz_set_labels_buffer_enabled(void *g, int32_t on) {
  return guard("avz_set_labels_buffer_enabled", [&] { asGame(g)->setLabelsBufferEnabled(on != 0); return 0; });
}

/** Enables the automap buffer (same format as the screen). */
AVZ_EXPORT int32_t avz_set_automap_buffer_enabled(void *g, int32_t on) {
  return guard("avz_set_automap_buffer_enabled", [&] { asGame(g)->setAutomapBufferEnabled(on != 0); return 0; });
}

/** Episode timeout in tics (0 = none). */
AVZ_EXPORT int32_t avz_set_episode_timeout(void *g, uint32_t tics) {
  return guard("avz_set_episode_timeout", [&] { asGame(g)->setEpisodeTimeout(tics); return 0; });
}

/** Seed of the engine's random generator; takes effect at the next episode. */
AVZ_EXPORT int32_t avz_set_seed(void *g, uint32_t seed) {
  return guard("avz_set_seed", [&] { asGame(g)->setSeed(seed); return 0; });
}

/** Shows or hides the engine's window (hidden passes +viz_noxserver: no display needed). */
AVZ_EXPORT int32_t avz_set_window_visible(void *g, int32_t on) {
  return guard("avz_set_window_visible", [&] { asGame(g)->setWindowVisible(on != 0); return 0; });
}

/** Enables sound (off by default). */
AVZ_EXPORT int32_t avz_set_sound_enabled(void *g, int32_t on) {
  return guard("avz_set_sound_enabled", [&] { asGame(g)->setSoundEnabled(on != 0); return 0; });
}

/** Mode (ViZDoomTypes.h Mode: PLAYER=0 is the synchronous one used for RL). */
AVZ_EXPORT int32_t avz_set_mode(void *g, int32_t mode) {
  return guard("avz_set_mode", [&] {
    if (mode < 0 || mode > 3) throw std::invalid_argument("mode out of range");
    asGame(g)->setMode(vizdoom::Mode(mode));
    return 0;
  });
}

/** Reward added per tic alive. */
AVZ_EXPORT int32_t avz_set_living_reward(void *g, double reward) {
  return guard("avz_set_living_reward", [&] { asGame(g)->setLivingReward(reward); return 0; });
}

/** Penalty subtracted on death. */
AVZ_EXPORT int32_t avz_set_death_penalty(void *g, double penalty) {
  return guard("avz_set_death_penalty", [&] { asGame(g)->setDeathPenalty(penalty); return 0; });
}

/**
 * Output geometry of bound frames: width x height (0 = native), CHW (1) or HWC (0) layout, area (1) or nearest (0)
 * resize. Call before avz_bind (or again after init to re-plan).
 */
AVZ_EXPORT int32_t avz_set_output(void *g, int32_t width, int32_t height, int32_t chw, int32_t area) {
  return guard("avz_set_output", [&] {
    Game *game = asGame(g);
    if (width < 0 || height < 0) throw std::invalid_argument("negative output size");
    game->outW = width, game->outH = height, game->outChw = chw != 0, game->outArea = area != 0;
    if (game->isRunning()) game->planOutputs();
    return 0;
  });
}

// ---- running ------------------------------------------------------------------------------------------------------

/** Starts the engine process. */
AVZ_EXPORT int32_t avz_init(void *g) {
  return guard("avz_init", [&] {
    Game *game = asGame(g);
    if (!game->init()) throw std::runtime_error("the engine did not start");
    game->action.assign(game->getAvailableButtonsSize(), 0.0);
    game->planOutputs();
    return 0;
  });
}

/** Screen geometry after init: writes width, height, channels into out[0..2]. */
AVZ_EXPORT int32_t avz_get_screen_shape(void *g, int32_t *out) {
  return guard("avz_get_screen_shape", [&] {
    Game *game = asGame(g);
    out[0] = game->getScreenWidth(), out[1] = game->getScreenHeight(), out[2] = game->getScreenChannels();
    return 0;
  });
}

/** The engine's instance id (it appears in the engine's command line and its shared-memory names). */
AVZ_EXPORT int32_t avz_instance_id(void *g, char *out, int32_t cap) {
  return guard("avz_instance_id", [&] { return copyString(asGame(g)->getInstanceId(), out, cap); });
}

/**
 * Binds caller-owned buffers, written by avz_step / avz_new_episode / avz_observe (any may be NULL):
 * `action` (read, one double per button), `screen` (output geometry x screen channels), `depth` and `labels`
 * (output geometry), `automap` (like screen), `vars` (one double per game variable), `out` (6 doubles: reward,
 * total reward, finished, timeout reached, player dead, episode time in tics). The buffers must stay alive and
 * unmoved until rebound or the game is destroyed.
 */
AVZ_EXPORT int32_t avz_bind(void *g, const double *action, uint8_t *screen, uint8_t *depth, uint8_t *labels,
                            uint8_t *automap, double *vars, double *out) {
  return guard("avz_bind", [&] {
    Game *game = asGame(g);
    game->boundAction = action, game->boundScreen = screen, game->boundDepth = depth, game->boundLabels = labels;
    game->boundAutomap = automap, game->boundVars = vars, game->boundOut = out;
    return 0;
  });
}

/** Writes the current state into the bound buffers. */
AVZ_EXPORT int32_t avz_observe(void *g) {
  return guard("avz_observe", [&] {
    asGame(g)->writeObservation();
    return 0;
  });
}

/** Starts a new episode and writes its first state into the bound buffers. */
AVZ_EXPORT int32_t avz_new_episode(void *g) {
  return guard("avz_new_episode", [&] {
    Game *game = asGame(g);
    game->newEpisode();
    game->writeObservation();
    return 0;
  });
}

/**
 * The hot path: reads the bound action, advances `tics` tics, writes the bound buffers. Returns 0 while the episode
 * runs, 1 when it has finished, -1 on error (e.g. the engine died). Allocates nothing.
 */
AVZ_EXPORT int32_t avz_step(void *g, uint32_t tics) {
  Game *game = static_cast<Game *>(g);
  try {
    game->stepNoAlloc(tics == 0 ? 1 : tics);
    game->writeObservation();
    return game->controller()->isTicPossible() ? 0 : 1;
  } catch (const std::exception &e) {
    fail("avz_step", e.what());
  } catch (...) {
    fail("avz_step", "unknown C++ exception");
  }
  game->stepError = lastError;
  return -1;
}

/** The message of this game's last failed avz_step, whichever thread ran it ("" when none). */
AVZ_EXPORT const char *avz_step_error(void *g) { return static_cast<Game *>(g)->stepError.c_str(); }

/** DoomGame::setAction from a caller array of n doubles (missing buttons are released). */
AVZ_EXPORT int32_t avz_set_action(void *g, const double *action, int32_t n) {
  return guard("avz_set_action", [&] {
    Game *game = asGame(g);
    for (size_t i = 0; i < game->action.size(); ++i) game->action[i] = int32_t(i) < n ? action[i] : 0.0;
    game->setAction(game->action);
    return 0;
  });
}

/** DoomGame::advanceAction without the per-step state allocation (read the state with avz_observe). */
AVZ_EXPORT int32_t avz_advance_action(void *g, uint32_t tics) {
  return guard("avz_advance_action", [&] {
    Game *game = asGame(g);
    const double *saved = game->boundAction;
    game->boundAction = nullptr;  // keep the action given by avz_set_action
    try {
      game->stepNoAlloc(tics == 0 ? 1 : tics);
    } catch (...) {
      game->boundAction = saved;
      throw;
    }
    game->boundAction = saved;
    return 0;
  });
}

/** DoomGame::makeAction: set_action + advance_action; the reward goes to *reward. */
AVZ_EXPORT int32_t avz_make_action(void *g, const double *action, int32_t n, uint32_t tics, double *reward) {
  if (avz_set_action(g, action, n) < 0 || avz_advance_action(g, tics) < 0) return -1;
  return guard("avz_make_action", [&] {
    *reward = asGame(g)->getLastReward();
    return 0;
  });
}

/** Copies the screen (native size and layout of the screen format) into `out` of `len` bytes. */
AVZ_EXPORT int32_t avz_get_screen_buffer(void *g, uint8_t *out, size_t len) {
  return guard("avz_get_screen_buffer", [&] {
    Game *game = asGame(g);
    const size_t n = size_t(game->getScreenWidth()) * game->getScreenHeight() * game->getScreenChannels();
    if (len < n) throw std::invalid_argument("screen buffer too small: need " + std::to_string(n) + " bytes");
    const uint8_t *src = game->controller()->getScreenBuffer();
    if (!src) throw vizdoom::ViZDoomIsNotRunningException();
    std::memcpy(out, src, n);
    return 0;
  });
}

/** Copies the current game variables into `out` (up to n). Returns the number of game variables. */
AVZ_EXPORT int32_t avz_get_game_variable_values(void *g, double *out, int32_t n) {
  return guard("avz_get_game_variable_values", [&] {
    Game *game = asGame(g);
    if (!game->isRunning()) throw vizdoom::ViZDoomIsNotRunningException();
    const std::vector<vizdoom::GameVariable> &vars = game->variables();
    for (int32_t i = 0; i < int32_t(vars.size()) && i < n; ++i) out[i] = game->controller()->getGameVariable(vars[i]);
    return int32_t(vars.size());
  });
}

/** Sends a console command to the engine (e.g. "addbot"); it runs at the next tic. */
AVZ_EXPORT int32_t avz_send_game_command(void *g, const char *command) {
  return guard("avz_send_game_command", [&] {
    asGame(g)->sendGameCommand(str(command));
    return 0;
  });
}

/** 1 when the player is dead, 0 when alive, -1 on error. */
AVZ_EXPORT int32_t avz_is_player_dead(void *g) {
  return guard("avz_is_player_dead", [&] { return asGame(g)->isPlayerDead() ? 1 : 0; });
}

/** Respawns a dead player (multiplayer); then writes the state into the bound buffers. */
AVZ_EXPORT int32_t avz_respawn_player(void *g) {
  return guard("avz_respawn_player", [&] {
    Game *game = asGame(g);
    game->respawnPlayer();
    game->writeObservation();
    return 0;
  });
}

/** 1 when the episode has finished, 0 when not, -1 on error. */
AVZ_EXPORT int32_t avz_is_episode_finished(void *g) {
  return guard("avz_is_episode_finished", [&] { return asGame(g)->isEpisodeFinished() ? 1 : 0; });
}

/** Whether the engine process is running: 1 or 0. */
AVZ_EXPORT int32_t avz_is_running(void *g) {
  return guard("avz_is_running", [&] { return asGame(g)->isRunning() ? 1 : 0; });
}

/** Sum of rewards in the current episode; NaN on error. */
AVZ_EXPORT double avz_get_total_reward(void *g) {
  try {
    return asGame(g)->getTotalReward();
  } catch (const std::exception &e) {
    fail("avz_get_total_reward", e.what());
  } catch (...) {
    fail("avz_get_total_reward", "unknown C++ exception");
  }
  return std::nan("");
}

#else  // ARCADIA_VIZDOOM_LAUNCHER

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

// The controller starts this program in place of the engine, appending our own arguments:
//   -arcadia-engine <path>  the real engine;  -arcadia-parent <pid>  the owning process;  -arcadia-cwd <dir>  the
//   engine's private directory (where it writes _vizdoom/ and other files). They are removed before exec.
// PR_SET_PDEATHSIG survives execve, so the engine gets SIGKILL when the thread that started it exits: in the
// controller that is the thread waiting on the engine, which lives as long as the owning process does (SIGKILL of
// Deno included). The engine itself ignores SIGTERM, hence KILL.
int main(int argc, char **argv) {
  const char *engine = nullptr, *cwd = nullptr;
  long parent = 0;
  std::vector<char *> args;
  for (int i = 0; i < argc; ++i) {
    if (i + 1 < argc && std::strcmp(argv[i], "-arcadia-engine") == 0) {
      engine = argv[++i];
    } else if (i + 1 < argc && std::strcmp(argv[i], "-arcadia-parent") == 0) {
      parent = std::strtol(argv[++i], nullptr, 10);
    } else if (i + 1 < argc && std::strcmp(argv[i], "-arcadia-cwd") == 0) {
      cwd = argv[++i];
    } else {
      args.push_back(argv[i]);
    }
  }
  if (!engine) {
    std::fprintf(stderr, "arcadia vizdoom launcher: missing -arcadia-engine <path>\n");
    return 127;
  }
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) std::perror("arcadia vizdoom launcher: prctl");
  if (parent > 0 && getppid() != pid_t(parent)) return 126;  // the owner died before prctl took effect
  if (cwd && chdir(cwd) != 0) std::perror("arcadia vizdoom launcher: chdir");
  args[0] = const_cast<char *>(engine);
  args.push_back(nullptr);
  execv(engine, args.data());
  std::fprintf(stderr, "arcadia vizdoom launcher: cannot exec %s: %s\n", engine, std::strerror(errno));
  return 127;
}

#endif

/**
 * The ViZDoom shim's symbol table (C prototypes beside each symbol; see `shim.cpp`) and its loader.
 *
 * Lookup: `ARCADIA_VIZDOOM_LIB` when set (then nothing else), otherwise the build `ensureVizdoom()` left in the cache. Loading is synchronous
 * and happens once per isolate (main thread or Worker); a failure lists every path tried.
 *
 * @module
 */

import { type LibraryCandidate, openLibrary } from "../_native/provision.ts";
import { type VizdoomPaths, vizdoomPathsSync } from "./provision.ts";

/** Symbols of `libarcadia_vizdoom.so`. Every `i32` result is 0 or a count on success and -1 on error. */
export const SYMBOLS = {
  // const char* avz_last_error(void)
  avz_last_error: { parameters: [], result: "pointer" },
  // const char* avz_version(void)
  avz_version: { parameters: [], result: "pointer" },
  // void* avz_create(void)
  avz_create: { parameters: [], result: "pointer" },
  // int32_t avz_destroy(void* g)
  avz_destroy: { parameters: ["pointer"], result: "i32" },
  // int32_t avz_close(void* g)
  avz_close: { parameters: ["pointer"], result: "i32" },
  // int32_t avz_load_config(void* g, const char* path)
  avz_load_config: { parameters: ["pointer", "buffer"], result: "i32" },
  // int32_t avz_set_config(void* g, const char* text)
  avz_set_config: { parameters: ["pointer", "buffer"], result: "i32" },
  // int32_t avz_set_vizdoom_path(void* g, const char* path)
  avz_set_vizdoom_path: { parameters: ["pointer", "buffer"], result: "i32" },
  // int32_t avz_set_doom_game_path(void* g, const char* path)
  avz_set_doom_game_path: { parameters: ["pointer", "buffer"], result: "i32" },
  // int32_t avz_set_doom_scenario_path(void* g, const char* path)
  avz_set_doom_scenario_path: { parameters: ["pointer", "buffer"], result: "i32" },
  // int32_t avz_set_doom_map(void* g, const char* map)
  avz_set_doom_map: { parameters: ["pointer", "buffer"], result: "i32" },
  // int32_t avz_set_doom_config_path(void* g, const char* path)
  avz_set_doom_config_path: { parameters: ["pointer", "buffer"], result: "i32" },
  // int32_t avz_add_game_arg(void* g, const char* arg)
  avz_add_game_arg: { parameters: ["pointer", "buffer"], result: "i32" },
  // int32_t avz_set_screen_format(void* g, int32_t format)
  avz_set_screen_format: { parameters: ["pointer", "i32"], result: "i32" },
  // int32_t avz_set_screen_resolution(void* g, int32_t resolution)
  avz_set_screen_resolution: { parameters: ["pointer", "i32"], result: "i32" },
  // int32_t avz_clear_buttons(void* g)
  avz_clear_buttons: { parameters: ["pointer"], result: "i32" },
  // int32_t avz_add_button(void* g, int32_t button, double max_value)
  avz_add_button: { parameters: ["pointer", "i32", "f64"], result: "i32" },
  // int32_t avz_get_buttons(void* g, int32_t* out, int32_t cap)
  avz_get_buttons: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  // int32_t avz_get_available_buttons_size(void* g)
  avz_get_available_buttons_size: { parameters: ["pointer"], result: "i32" },
  // int32_t avz_clear_game_variables(void* g)
  avz_clear_game_variables: { parameters: ["pointer"], result: "i32" },
  // int32_t avz_add_game_variable(void* g, int32_t variable)
  avz_add_game_variable: { parameters: ["pointer", "i32"], result: "i32" },
  // int32_t avz_get_game_variables(void* g, int32_t* out, int32_t cap)
  avz_get_game_variables: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  // int32_t avz_button_name(int32_t button, char* out, int32_t cap)
  avz_button_name: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  // int32_t avz_is_delta_button(int32_t button)
  avz_is_delta_button: { parameters: ["i32"], result: "i32" },
  // int32_t avz_game_variable_name(int32_t variable, char* out, int32_t cap)
  avz_game_variable_name: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  // int32_t avz_set_depth_buffer_enabled(void* g, int32_t on)
  avz_set_depth_buffer_enabled: { parameters: ["pointer", "i32"], result: "i32" },
  // int32_t avz_set_labels_buffer_enabled(void* g, int32_t on)
  avz_set_labels_buffer_enabled: { parameters: ["pointer", "i32"], result: "i32" },
  // int32_t avz_set_automap_buffer_enabled(void* g, int32_t on)
  avz_set_automap_buffer_enabled: { parameters: ["pointer", "i32"], result: "i32" },
  // int32_t avz_set_episode_timeout(void* g, uint32_t tics)
  avz_set_episode_timeout: { parameters: ["pointer", "u32"], result: "i32" },
  // int32_t avz_set_seed(void* g, uint32_t seed)
  avz_set_seed: { parameters: ["pointer", "u32"], result: "i32" },
  // int32_t avz_set_window_visible(void* g, int32_t on)
  avz_set_window_visible: { parameters: ["pointer", "i32"], result: "i32" },
  // int32_t avz_set_sound_enabled(void* g, int32_t on)
  avz_set_sound_enabled: { parameters: ["pointer", "i32"], result: "i32" },
  // int32_t avz_set_mode(void* g, int32_t mode)
  avz_set_mode: { parameters: ["pointer", "i32"], result: "i32" },
  // int32_t avz_set_living_reward(void* g, double reward)
  avz_set_living_reward: { parameters: ["pointer", "f64"], result: "i32" },
  // int32_t avz_set_death_penalty(void* g, double penalty)
  avz_set_death_penalty: { parameters: ["pointer", "f64"], result: "i32" },
  // int32_t avz_set_output(void* g, int32_t width, int32_t height, int32_t chw, int32_t area)
  avz_set_output: { parameters: ["pointer", "i32", "i32", "i32", "i32"], result: "i32" },
  // int32_t avz_init(void* g)
  avz_init: { parameters: ["pointer"], result: "i32" },
  // int32_t avz_get_screen_shape(void* g, int32_t* out /* width, height, channels */)
  avz_get_screen_shape: { parameters: ["pointer", "buffer"], result: "i32" },
  // int32_t avz_instance_id(void* g, char* out, int32_t cap)
  avz_instance_id: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  // int32_t avz_bind(void* g, const double* action, uint8_t* screen, uint8_t* depth, uint8_t* labels,
  //                  uint8_t* automap, double* vars, double* out)
  avz_bind: {
    parameters: ["pointer", "pointer", "pointer", "pointer", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  // int32_t avz_observe(void* g)
  avz_observe: { parameters: ["pointer"], result: "i32" },
  // int32_t avz_new_episode(void* g)
  avz_new_episode: { parameters: ["pointer"], result: "i32" },
  // int32_t avz_step(void* g, uint32_t tics)  -> 0 running, 1 finished, -1 error
  avz_step: { parameters: ["pointer", "u32"], result: "i32" },
  // The same on a Deno pool thread (a Promise): several engines (separate processes) then step at once.
  avz_step_nonblocking: { name: "avz_step", parameters: ["pointer", "u32"], result: "i32", nonblocking: true },
  // const char* avz_step_error(void* g)  -> this game's last avz_step error, whichever thread ran it
  avz_step_error: { parameters: ["pointer"], result: "pointer" },
  // int32_t avz_set_action(void* g, const double* action, int32_t n)
  avz_set_action: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  // int32_t avz_advance_action(void* g, uint32_t tics)
  avz_advance_action: { parameters: ["pointer", "u32"], result: "i32" },
  // int32_t avz_make_action(void* g, const double* action, int32_t n, uint32_t tics, double* reward)
  avz_make_action: { parameters: ["pointer", "buffer", "i32", "u32", "buffer"], result: "i32" },
  // int32_t avz_get_screen_buffer(void* g, uint8_t* out, size_t len)
  avz_get_screen_buffer: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  // int32_t avz_get_game_variable_values(void* g, double* out, int32_t n)
  avz_get_game_variable_values: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  // int32_t avz_send_game_command(void* g, const char* command)
  avz_send_game_command: { parameters: ["pointer", "buffer"], result: "i32" },
  // int32_t avz_is_player_dead(void* g)
  avz_is_player_dead: { parameters: ["pointer"], result: "i32" },
  // int32_t avz_respawn_player(void* g)
  avz_respawn_player: { parameters: ["pointer"], result: "i32" },
  // int32_t avz_is_episode_finished(void* g)
  avz_is_episode_finished: { parameters: ["pointer"], result: "i32" },
  // int32_t avz_is_running(void* g)
  avz_is_running: { parameters: ["pointer"], result: "i32" },
  // double avz_get_total_reward(void* g)  -> NaN on error
  avz_get_total_reward: { parameters: ["pointer"], result: "f64" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded shim. */
export type VizdoomLibrary = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** A loaded shim and where everything is. */
export interface LoadedVizdoom {
  symbols: VizdoomLibrary;
  paths: VizdoomPaths;
}

let loaded: LoadedVizdoom | undefined;

/**
 * Loads the shim once per isolate (synchronously; needs a provisioned cache or the env overrides).
 *
 * @example
 * ```ts
 * import { ensureVizdoom } from "./provision.ts";
 * import { loadVizdoom } from "./ffi.ts";
 * await ensureVizdoom();
 * console.log(loadVizdoom().paths.version);
 * ```
 */
export function loadVizdoom(): LoadedVizdoom {
  if (loaded) return loaded;
  const paths = vizdoomPathsSync();
  // An override is the only candidate: falling back silently would hide a wrong setting.
  const override = Deno.env.get("ARCADIA_VIZDOOM_LIB");
  const candidates: LibraryCandidate[] = override
    ? [{ path: override, from: "ARCADIA_VIZDOOM_LIB" }]
    : [{ path: paths.library, from: "provisioned cache" }];
  const { lib } = openLibrary(
    "the ViZDoom shim (libarcadia_vizdoom.so)",
    candidates,
    SYMBOLS,
    "Run `await ensureVizdoom()` to build it, or point ARCADIA_VIZDOOM_LIB at a build of envs/vizdoom/shim.cpp.",
  );
  loaded = { symbols: lib.symbols, paths };
  return loaded;
}

const encoder = new TextEncoder();

/** A NUL-terminated C string. */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(s.length * 3 + 1);
  const { written } = encoder.encodeInto(s, bytes);
  return bytes.subarray(0, written + 1);
}

/** The calling thread's last shim error. */
export function lastError(lib: VizdoomLibrary): string {
  const p = lib.avz_last_error();
  return p ? Deno.UnsafePointerView.getCString(p) : "";
}

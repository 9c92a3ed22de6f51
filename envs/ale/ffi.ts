/**
 * The symbol table of `libarcadia_ale.so` (our `shim.cpp` over ALE), with each C prototype beside its symbol, and
 * the process-wide (per Worker) loaded library.
 *
 * Calls return -1 (or a null pointer) on failure; `aleError()` turns that into an Error carrying the shim's
 * thread-local message.
 *
 * @module
 */

import { openLibrary } from "../_native/provision.ts";
import { aleInstallation } from "./provision.ts";

/** Symbols of `libarcadia_ale.so`. */
export const ALE_SYMBOLS = {
  /** const char* arc_ale_last_error(void); */
  arc_ale_last_error: { parameters: [], result: "pointer" },
  /** const char* arc_ale_version(void); */
  arc_ale_version: { parameters: [], result: "pointer" },
  /** void* arc_ale_create(void); */
  arc_ale_create: { parameters: [], result: "pointer" },
  /** void arc_ale_destroy(void* handle); */
  arc_ale_destroy: { parameters: ["pointer"], result: "void" },
  /** int32_t arc_ale_set_int(void* handle, const char* key, int32_t value); */
  arc_ale_set_int: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  /** int32_t arc_ale_set_float(void* handle, const char* key, float value); */
  arc_ale_set_float: { parameters: ["pointer", "buffer", "f32"], result: "i32" },
  /** int32_t arc_ale_set_bool(void* handle, const char* key, int32_t value); */
  arc_ale_set_bool: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  /** int32_t arc_ale_set_string(void* handle, const char* key, const char* value); */
  arc_ale_set_string: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  /** int32_t arc_ale_load_rom(void* handle, const char* path); */
  arc_ale_load_rom: { parameters: ["pointer", "buffer"], result: "i32" },
  /** int32_t arc_ale_screen_width(void* handle); */
  arc_ale_screen_width: { parameters: ["pointer"], result: "i32" },
  /** int32_t arc_ale_screen_height(void* handle); */
  arc_ale_screen_height: { parameters: ["pointer"], result: "i32" },
  /** int32_t arc_ale_reset_game(void* handle); */
  arc_ale_reset_game: { parameters: ["pointer"], result: "i32" },
  /** int32_t arc_ale_act(void* handle, int32_t action, float paddle_strength, int32_t* reward); */
  arc_ale_act: { parameters: ["pointer", "i32", "f32", "buffer"], result: "i32" },
  /**
   * int32_t arc_ale_step(void* handle, int32_t action, float paddle_strength, int32_t frameskip, int32_t kind,
   *                      uint8_t* obs, int32_t obs_cap, uint8_t* prev, int32_t* out);
   */
  arc_ale_step: {
    parameters: ["pointer", "i32", "f32", "i32", "i32", "buffer", "i32", "buffer", "buffer"],
    result: "i32",
  },
  /**
   * int32_t arc_ale_step_preprocessed(void* handle, int32_t action, float paddle_strength, int32_t frameskip,
   *                                   int32_t lives, int32_t flags, int32_t channels, uint8_t* pool, int32_t pool_cap,
   *                                   uint8_t* dst, int32_t dst_cap, int32_t dst_h, int32_t dst_w, int32_t* out);
   */
  arc_ale_step_preprocessed: {
    parameters: [
      "pointer",
      "i32",
      "f32",
      "i32",
      "i32",
      "i32",
      "i32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "i32",
      "i32",
      "buffer",
    ],
    result: "i32",
  },
  /**
   * int32_t arc_ale_area_resize(const uint8_t* src, int32_t src_cap, int32_t src_h, int32_t src_w, int32_t channels,
   *                             uint8_t* dst, int32_t dst_cap, int32_t dst_h, int32_t dst_w);
   */
  arc_ale_area_resize: {
    parameters: ["buffer", "i32", "i32", "i32", "i32", "buffer", "i32", "i32", "i32"],
    result: "i32",
  },
  /** int32_t arc_ale_observe(void* handle, int32_t kind, uint8_t* obs, int32_t obs_cap, int32_t* out); */
  arc_ale_observe: { parameters: ["pointer", "i32", "buffer", "i32", "buffer"], result: "i32" },
  /** int32_t arc_ale_game_over(void* handle, int32_t with_truncation); */
  arc_ale_game_over: { parameters: ["pointer", "i32"], result: "i32" },
  /** int32_t arc_ale_lives(void* handle); */
  arc_ale_lives: { parameters: ["pointer"], result: "i32" },
  /** int32_t arc_ale_frame_number(void* handle); */
  arc_ale_frame_number: { parameters: ["pointer"], result: "i32" },
  /** int32_t arc_ale_episode_frame_number(void* handle); */
  arc_ale_episode_frame_number: { parameters: ["pointer"], result: "i32" },
  /** int32_t arc_ale_legal_actions(void* handle, int32_t* out, int32_t cap); */
  arc_ale_legal_actions: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  /** int32_t arc_ale_minimal_actions(void* handle, int32_t* out, int32_t cap); */
  arc_ale_minimal_actions: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  /** int32_t arc_ale_available_modes(void* handle, int32_t* out, int32_t cap); */
  arc_ale_available_modes: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  /** int32_t arc_ale_available_difficulties(void* handle, int32_t* out, int32_t cap); */
  arc_ale_available_difficulties: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  /** int32_t arc_ale_set_mode(void* handle, int32_t mode); */
  arc_ale_set_mode: { parameters: ["pointer", "i32"], result: "i32" },
  /** int32_t arc_ale_set_difficulty(void* handle, int32_t difficulty); */
  arc_ale_set_difficulty: { parameters: ["pointer", "i32"], result: "i32" },
  /** int32_t arc_ale_get_screen_rgb(void* handle, uint8_t* out, int32_t cap); */
  arc_ale_get_screen_rgb: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  /** int32_t arc_ale_get_screen_grayscale(void* handle, uint8_t* out, int32_t cap); */
  arc_ale_get_screen_grayscale: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  /** int32_t arc_ale_get_ram(void* handle, uint8_t* out, int32_t cap); */
  arc_ale_get_ram: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  /** int32_t arc_ale_clone_state(void* handle, int32_t include_rng, uint8_t* out, int32_t cap); */
  arc_ale_clone_state: { parameters: ["pointer", "i32", "buffer", "i32"], result: "i32" },
  /** int32_t arc_ale_restore_state(void* handle, const uint8_t* data, int32_t size); */
  arc_ale_restore_state: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded library's functions. */
export type AleSymbols = Deno.DynamicLibrary<typeof ALE_SYMBOLS>["symbols"];

/** Observation kinds of `arc_ale_step` / `arc_ale_observe`. */
export const OBS_KIND = { none: 0, rgb: 1, grayscale: 2, ram: 3 } as const;

/** Flags of `arc_ale_step_preprocessed`. */
export const PREPROCESS_FLAGS = { stopOnLifeLoss: 1 } as const;

let loaded: { symbols: AleSymbols; path: string } | undefined;

/**
 * The ALE library, opened once per thread (process or Worker). Needs `ensureAle()` to have run (in any process)
 * or `ARCADIA_ALE_LIB`.
 *
 * @example
 * ```ts ignore
 * import { ensureAle } from "./provision.ts";
 * import { ale } from "./ffi.ts";
 * await ensureAle();
 * console.log(ale().path);
 * ```
 */
export function ale(): { symbols: AleSymbols; path: string } {
  if (loaded) return loaded;
  const inst = aleInstallation();
  const from = Deno.env.get("ARCADIA_ALE_LIB") ? "ARCADIA_ALE_LIB" : "provisioned cache (ensureAle)";
  const { lib, path } = openLibrary(
    "the ALE library",
    [{ path: inst.library, from }],
    ALE_SYMBOLS,
    [
      "Fix: unset ARCADIA_ALE_LIB if it is set, or delete the directory above and call ensureAle() again",
      "(the library needs libz.so.1: apt-get install zlib1g).",
    ].join(" "),
  );
  return loaded = { symbols: lib.symbols, path };
}

/** An Error for a failed shim call: `what` and the shim's last error message of this thread. */
export function aleError(symbols: AleSymbols, what: string): Error {
  const ptr = symbols.arc_ale_last_error();
  const message = ptr ? new Deno.UnsafePointerView(ptr).getCString() : "";
  return new Error(`ALE ${what} failed: ${message || "unknown error"}`);
}

/** A NUL-terminated UTF-8 copy of `s`, for `const char*` parameters. */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

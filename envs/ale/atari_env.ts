/**
 * `AtariEnv`: an Atari 2600 game of the Arcade Learning Environment through Deno FFI, with ale-py's v5 semantics, and
 * the `ALE/<Game>-v5` ids of every ROM ale-py ships.
 *
 * @module
 */

import { Env, type Info, type ResetOptions, type ResetResult, type RgbFrame, type StepResult } from "../core.ts";
import { closeMatches, register } from "../registry.ts";
import type { Rng } from "../rng.ts";
import { Box, Discrete } from "../spaces.ts";
import { ale, aleError, type AleSymbols, cString, OBS_KIND, PREPROCESS_FLAGS } from "./ffi.ts";
import { aleInstallation, romPath } from "./provision.ts";
import { ROM_IDS } from "./roms.ts";

/** What observations hold. */
export type AtariObsType = "rgb" | "grayscale" | "ram";

/** Options of `AtariEnv` (ale-py's `AtariEnv` keyword arguments, camelCased). */
export interface AtariEnvOptions {
  /** `rgb` (210x160x3, default), `grayscale` (210x160) or `ram` (128 bytes). */
  obsType?: AtariObsType;
  /** Frames each action is repeated, or `[low, high)` to draw it uniformly per step (default 4). */
  frameskip?: number | readonly [number, number];
  /** Probability that the emulator repeats the previous action instead (sticky actions; default 0.25). */
  repeatActionProbability?: number;
  /** Use all 18 joystick actions instead of the game's minimal set (default false). */
  fullActionSpace?: boolean;
  /** Game mode (one of `availableModes`); default: the game's default. */
  mode?: number;
  /** Game difficulty (one of `availableDifficulties`); default: the game's default. */
  difficulty?: number;
  /** Truncate episodes after this many frames (ALE's `max_num_frames_per_episode`; default none). */
  maxNumFramesPerEpisode?: number;
  /** Only `"rgb_array"` (what `render()` returns); default none. */
  renderMode?: "rgb_array";
}

/** Names of ALE's 18 joystick actions, by action id. */
export const ACTION_MEANINGS: readonly string[] = [
  "NOOP",
  "FIRE",
  "UP",
  "RIGHT",
  "LEFT",
  "DOWN",
  "UPRIGHT",
  "UPLEFT",
  "DOWNRIGHT",
  "DOWNLEFT",
  "UPFIRE",
  "RIGHTFIRE",
  "LEFTFIRE",
  "DOWNFIRE",
  "UPRIGHTFIRE",
  "UPLEFTFIRE",
  "DOWNRIGHTFIRE",
  "DOWNLEFTFIRE",
];

const OPTION_NAMES = [
  "game",
  "obsType",
  "frameskip",
  "repeatActionProbability",
  "fullActionSpace",
  "mode",
  "difficulty",
  "maxNumFramesPerEpisode",
  "renderMode",
];

// Backstop only: close() (or `using`) is the way to free an emulator.
const finalizer = new FinalizationRegistry<{ symbols: AleSymbols; handle: Deno.PointerObject }>(
  ({ symbols, handle }) => symbols.arc_ale_destroy(handle),
);

/**
 * An Atari game. Observations are `Uint8Array`s written by the emulator into a buffer this env owns and reuses:
 * the array returned by `reset()`/`step()` is overwritten by the next call (zero-copy), so `.slice()` it to keep
 * it. `info` holds `lives`, `episodeFrameNumber` and `frameNumber`. Episodes end with `terminated` at game over and
 * `truncated` when `maxNumFramesPerEpisode` is reached.
 *
 * Seeding: `reset({ seed })` reseeds the env's generator, draws ALE's `random_seed` from it and reloads the ROM (as
 * ale-py does), so the same seed and actions give the same trajectory, sticky actions included.
 *
 * Call `await ensureAle()` once before constructing (it builds ALE the first time).
 *
 * @example
 * ```ts
 * import { AtariEnv, ensureAle } from "./mod.ts";
 * await ensureAle();
 * using env = new AtariEnv("pong", { obsType: "grayscale" });
 * const [obs, info] = env.reset({ seed: 0 });
 * console.assert(obs.length === 210 * 160 && info.lives === 0);
 * const [, reward, terminated, truncated] = env.step(env.actionSpace.sample());
 * console.assert(typeof reward === "number" && !terminated && !truncated);
 * ```
 */
export class AtariEnv extends Env<Uint8Array, number> {
  readonly observationSpace: Box<"uint8">;
  readonly actionSpace: Discrete;
  /** The ROM id, e.g. `pong`. */
  readonly game: string;
  /** What observations hold. */
  readonly obsType: AtariObsType;
  /** Frames per step, fixed or `[low, high)`. */
  readonly frameskip: number | readonly [number, number];
  /** Screen height in pixels (210). */
  readonly screenHeight: number;
  /** Screen width in pixels (160). */
  readonly screenWidth: number;
  /** ALE action ids, indexed by this env's actions. */
  readonly actionSet: Int32Array;
  /** Game modes the ROM offers. */
  readonly availableModes: Int32Array;
  /** Difficulties the ROM offers. */
  readonly availableDifficulties: Int32Array;

  readonly #symbols: AleSymbols;
  #handle: Deno.PointerObject | null;
  readonly #rom: Uint8Array<ArrayBuffer>;
  readonly #mode?: number;
  readonly #difficulty?: number;
  readonly #kind: number;
  readonly #obs: Uint8Array<ArrayBuffer>;
  readonly #status = new Int32Array(6);
  readonly #preStatus = new Int32Array(8);
  #rgb?: Uint8Array<ArrayBuffer>;
  #scratch: Uint8Array<ArrayBuffer> = new Uint8Array(32 * 1024);
  #needsReset = true;

  constructor(game: string, options: AtariEnvOptions = {}) {
    super();
    const unknown = Object.keys(options).filter((k) => !OPTION_NAMES.includes(k));
    if (unknown.length) {
      throw new TypeError(`AtariEnv: unknown option(s) ${unknown.join(", ")}; known: ${OPTION_NAMES.join(", ")}`);
    }
    if (!ROM_IDS.includes(game)) {
      const close = closeMatches(game, ROM_IDS);
      throw new Error(
        `AtariEnv: no ROM named "${game}"` +
          (close.length ? `; did you mean ${close.map((c) => `"${c}"`).join(", ")}?` : "") +
          ` (${ROM_IDS.length} ROMs: see ROM_IDS)`,
      );
    }
    this.game = game;
    this.obsType = options.obsType ?? "rgb";
    if (!(this.obsType in OBS_KIND) || this.obsType === "none" as string) {
      throw new TypeError(`AtariEnv: obsType must be "rgb", "grayscale" or "ram", got ${JSON.stringify(this.obsType)}`);
    }
    this.frameskip = checkFrameskip(options.frameskip ?? 4);
    const sticky = options.repeatActionProbability ?? 0.25;
    if (!(sticky >= 0 && sticky <= 1)) {
      throw new RangeError(`AtariEnv: repeatActionProbability must be in [0, 1], got ${sticky}`);
    }
    if (options.renderMode !== undefined && options.renderMode !== "rgb_array") {
      throw new TypeError(`AtariEnv: renderMode must be "rgb_array", got ${JSON.stringify(options.renderMode)}`);
    }
    this.metadata = { renderModes: ["rgb_array"], renderFps: 60 };

    const path = romPath(game, aleInstallation());
    this.#rom = cString(path);
    const { symbols } = ale();
    this.#symbols = symbols;
    const handle = symbols.arc_ale_create();
    if (!handle) throw aleError(symbols, "create");
    this.#handle = handle;
    finalizer.register(this, { symbols, handle }, this);
    try {
      this.#check(symbols.arc_ale_set_float(handle, cString("repeat_action_probability"), sticky), "setFloat");
      if (options.maxNumFramesPerEpisode !== undefined) {
        const n = options.maxNumFramesPerEpisode;
        if (!Number.isInteger(n) || n < 0) {
          throw new RangeError(`AtariEnv: maxNumFramesPerEpisode must be a non-negative integer, got ${n}`);
        }
        this.#check(symbols.arc_ale_set_int(handle, cString("max_num_frames_per_episode"), n), "setInt");
      }
      this.#seedAle(); // seeds from the entropy-seeded rng and loads the ROM
      this.screenHeight = this.#check(symbols.arc_ale_screen_height(handle), "screen height");
      this.screenWidth = this.#check(symbols.arc_ale_screen_width(handle), "screen width");
      this.availableModes = this.#list(symbols.arc_ale_available_modes, "getAvailableModes");
      this.availableDifficulties = this.#list(symbols.arc_ale_available_difficulties, "getAvailableDifficulties");
      if (options.mode !== undefined && !this.availableModes.includes(options.mode)) {
        throw new RangeError(`AtariEnv(${game}): mode ${options.mode} is not one of [${this.availableModes}]`);
      }
      if (options.difficulty !== undefined && !this.availableDifficulties.includes(options.difficulty)) {
        throw new RangeError(
          `AtariEnv(${game}): difficulty ${options.difficulty} is not one of [${this.availableDifficulties}]`,
        );
      }
      this.#mode = options.mode;
      this.#difficulty = options.difficulty;
      this.#applyModeAndDifficulty();
      this.actionSet = this.#list(
        options.fullActionSpace ? symbols.arc_ale_legal_actions : symbols.arc_ale_minimal_actions,
        "action set",
      );
    } catch (e) {
      this.close();
      throw e;
    }
    this.actionSpace = new Discrete(this.actionSet.length);
    const shape = this.obsType === "rgb"
      ? [this.screenHeight, this.screenWidth, 3]
      : this.obsType === "grayscale"
      ? [this.screenHeight, this.screenWidth]
      : [128];
    this.observationSpace = new Box(0, 255, { shape, dtype: "uint8" });
    this.#kind = OBS_KIND[this.obsType];
    this.#obs = new Uint8Array(this.observationSpace.size);
  }

  /** The env's generator (Gymnasium's `np_random`), reseeded by `reset({ seed })`; wrappers draw from it. */
  get generator(): Rng {
    return this.rng;
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#handle === null;
  }

  /** Names of this env's actions, e.g. `["NOOP", "FIRE", "RIGHT", "LEFT", ...]`. */
  getActionMeanings(): string[] {
    return Array.from(this.actionSet, (a) => ACTION_MEANINGS[a]);
  }

  override reset(options: ResetOptions = {}): ResetResult<Uint8Array> {
    const handle = this.#live("reset");
    this.seedFromReset(options);
    if (options.seed !== undefined) this.#seedAle();
    this.#check(this.#symbols.arc_ale_reset_game(handle), "reset_game");
    this.#check(this.#symbols.arc_ale_observe(handle, this.#kind, this.#obs, this.#obs.length, this.#status), "reset");
    this.#needsReset = false;
    return [this.#obs, this.#info()];
  }

  override step(action: number): StepResult<Uint8Array> {
    const handle = this.#live("step");
    if (this.#needsReset) throw new Error("AtariEnv: call reset() before step()");
    this.actionSpace.assertContains(action, "action");
    this.#frames(handle, this.actionSet[action], null);
    const s = this.#status;
    return [this.#obs, s[0], s[1] !== 0, s[2] !== 0, this.#info()];
  }

  /**
   * Advances `frameskip` frames of `action` (an index into `actionSet`) and writes the observation into this env's
   * buffer and, when given, the one before the last frame into `previous` (for max-pooling). Returns the status
   * `[reward, terminated, truncated, lives, episodeFrameNumber, frameNumber]` (a reused array). For wrappers that
   * need speed (preprocessing); `step()` is the checked API.
   */
  stepInto(action: number, previous: Uint8Array<ArrayBuffer> | null): Int32Array {
    const handle = this.#live("step");
    if (this.#needsReset) throw new Error("AtariEnv: call reset() before step()");
    this.actionSpace.assertContains(action, "action");
    if (previous !== null && previous.length < this.#obs.length) {
      throw new RangeError(`AtariEnv: previous needs ${this.#obs.length} bytes, got ${previous.length}`);
    }
    this.#frames(handle, this.actionSet[action], previous);
    return this.#status;
  }

  /**
   * One agent step of `AtariPreprocessing` in a single native call, for that wrapper (this env needs `frameskip: 1`):
   * `frameSkip` frames of `action` (an index into `actionSet`), stopping at game over, truncation or, with
   * `stopOnLifeLoss`, when the lives drop below `lives`; the screens of the last two frames (grayscale for
   * `channels` 1, RGB for 3) go into `pool` (last frame first, each `screenHeight * screenWidth * channels` bytes,
   * only when reached), get max-pooled into its first half and area-resized into `out` (`outHeight x outWidth`).
   * Returns `[reward, terminated, truncated, lives, episodeFrameNumber, frameNumber, lifeLost, frames]` (a reused
   * array). Does not update `observation`.
   *
   * @example
   * ```ts
   * import { AtariEnv, ensureAle } from "./mod.ts";
   * await ensureAle();
   * using env = new AtariEnv("pong", { frameskip: 1 });
   * env.reset({ seed: 0 });
   * const pool = new Uint8Array(2 * 210 * 160), out = new Uint8Array(84 * 84);
   * const [reward, terminated, , lives, , , , frames] = env.stepPreprocessed(0, 4, env.lives(), false, 1, pool, out, 84, 84);
   * console.assert(reward === 0 && terminated === 0 && lives === 0 && frames === 4);
   * ```
   */
  stepPreprocessed(
    action: number,
    frameSkip: number,
    lives: number,
    stopOnLifeLoss: boolean,
    channels: 1 | 3,
    pool: Uint8Array<ArrayBuffer>,
    out: Uint8Array<ArrayBuffer>,
    outHeight: number,
    outWidth: number,
  ): Int32Array {
    const handle = this.#live("step");
    if (this.#needsReset) throw new Error("AtariEnv: call reset() before step()");
    if (this.frameskip !== 1) throw new Error(`AtariEnv: stepPreprocessed needs frameskip 1, not ${this.frameskip}`);
    this.actionSpace.assertContains(action, "action");
    const r = this.#symbols.arc_ale_step_preprocessed(
      handle,
      this.actionSet[action],
      1,
      frameSkip,
      lives,
      stopOnLifeLoss ? PREPROCESS_FLAGS.stopOnLifeLoss : 0,
      channels,
      pool,
      pool.length,
      out,
      out.length,
      outHeight,
      outWidth,
      this.#preStatus,
    );
    if (r < 0) throw aleError(this.#symbols, "step_preprocessed");
    return this.#preStatus;
  }

  /** The observation buffer (the array `reset()`/`step()` return). */
  get observation(): Uint8Array {
    return this.#obs;
  }

  /** The current screen as RGB (`render_mode="rgb_array"`), in a buffer reused by later calls. */
  override render(): RgbFrame {
    const rgb = this.#rgb ??= new Uint8Array(this.screenHeight * this.screenWidth * 3);
    this.getScreenRGB(rgb);
    return { data: rgb, width: this.screenWidth, height: this.screenHeight };
  }

  /** Copies the screen as RGB (`height x width x 3`) into `out` (allocated when omitted). */
  getScreenRGB(out?: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
    const buf = out ?? new Uint8Array(this.screenHeight * this.screenWidth * 3);
    this.#check(this.#symbols.arc_ale_get_screen_rgb(this.#live("getScreenRGB"), buf, buf.length), "getScreenRGB");
    return buf;
  }

  /** Copies the screen as grayscale (`height x width`, ALE's luminance palette) into `out`. */
  getScreenGrayscale(out?: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
    const buf = out ?? new Uint8Array(this.screenHeight * this.screenWidth);
    const handle = this.#live("getScreenGrayscale");
    this.#check(this.#symbols.arc_ale_get_screen_grayscale(handle, buf, buf.length), "getScreenGrayscale");
    return buf;
  }

  /** Copies the 128 bytes of console RAM into `out`. */
  getRAM(out?: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
    const buf = out ?? new Uint8Array(128);
    this.#check(this.#symbols.arc_ale_get_ram(this.#live("getRAM"), buf, buf.length), "getRAM");
    return buf;
  }

  /** Lives left (0 in games without lives). */
  lives(): number {
    return this.#check(this.#symbols.arc_ale_lives(this.#live("lives")), "lives");
  }

  /**
   * The emulator state, serialized (about 14 KB). With `includeRng` (default true) it holds the sticky-action
   * generator too, so `restoreState()` replays the same frames for the same actions.
   */
  cloneState(options: { includeRng?: boolean } = {}): Uint8Array<ArrayBuffer> {
    const handle = this.#live("cloneState");
    const rng = options.includeRng ?? true ? 1 : 0;
    let n = this.#check(
      this.#symbols.arc_ale_clone_state(handle, rng, this.#scratch, this.#scratch.length),
      "cloneState",
    );
    if (n > this.#scratch.length) {
      this.#scratch = new Uint8Array(n * 2);
      n = this.#check(
        this.#symbols.arc_ale_clone_state(handle, rng, this.#scratch, this.#scratch.length),
        "cloneState",
      );
    }
    return this.#scratch.slice(0, n);
  }

  /** Restores a state from `cloneState()` of an env of the same game. */
  restoreState(state: Uint8Array): void {
    const handle = this.#live("restoreState");
    // Deno FFI reads any ArrayBufferView; the cast only widens the declared parameter type.
    const bytes = state as Uint8Array<ArrayBuffer>;
    this.#check(this.#symbols.arc_ale_restore_state(handle, bytes, bytes.length), "restoreState");
    this.#needsReset = false;
  }

  /** Frees the emulator. Safe to call more than once. */
  override close(): void {
    const handle = this.#handle;
    if (handle === null) return;
    this.#handle = null;
    finalizer.unregister(this);
    this.#symbols.arc_ale_destroy(handle);
  }

  #frames(handle: Deno.PointerObject, aleAction: number, previous: Uint8Array<ArrayBuffer> | null): void {
    const skip = typeof this.frameskip === "number"
      ? this.frameskip
      : this.rng.integers(this.frameskip[0], this.frameskip[1]);
    const obs = this.#obs;
    const r = this.#symbols.arc_ale_step(
      handle,
      aleAction,
      1,
      skip,
      this.#kind,
      obs,
      obs.length,
      previous,
      this.#status,
    );
    if (r < 0) throw aleError(this.#symbols, "step");
  }

  #info(): Info {
    const s = this.#status;
    return { lives: s[3], episodeFrameNumber: s[4], frameNumber: s[5] };
  }

  /** Draws ALE's seed from the env's generator and (re)loads the ROM, which applies it. */
  #seedAle(): void {
    const handle = this.#live("seed");
    const seed = this.rng.nextUint32() >>> 1; // ALE reads a non-negative int; -1 would mean "from the clock"
    this.#check(this.#symbols.arc_ale_set_int(handle, cString("random_seed"), seed), "setInt(random_seed)");
    this.#check(this.#symbols.arc_ale_load_rom(handle, this.#rom), "loadROM");
    if (this.availableModes) this.#applyModeAndDifficulty();
  }

  #applyModeAndDifficulty(): void {
    const handle = this.#live("setMode");
    if (this.#mode !== undefined) this.#check(this.#symbols.arc_ale_set_mode(handle, this.#mode), "setMode");
    if (this.#difficulty !== undefined) {
      this.#check(this.#symbols.arc_ale_set_difficulty(handle, this.#difficulty), "setDifficulty");
    }
  }

  #list(
    fn: (handle: Deno.PointerValue, out: Uint8Array | Int32Array | null, cap: number) => number,
    what: string,
  ): Int32Array {
    const handle = this.#live(what);
    const out = new Int32Array(64);
    const n = this.#check(fn(handle, out, out.length), what);
    return out.slice(0, Math.min(n, out.length));
  }

  #live(what: string): Deno.PointerObject {
    if (this.#handle === null) throw new Error(`AtariEnv(${this.game}): ${what}() after close()`);
    return this.#handle;
  }

  #check(result: number, what: string): number {
    if (result < 0) throw aleError(this.#symbols, what);
    return result;
  }
}

function checkFrameskip(f: number | readonly [number, number]): number | readonly [number, number] {
  if (typeof f === "number") {
    if (!Number.isInteger(f) || f < 1) throw new RangeError(`AtariEnv: frameskip must be a positive integer, got ${f}`);
    return f;
  }
  if (!Array.isArray(f) || f.length !== 2 || !(Number.isInteger(f[0]) && f[0] >= 1 && f[1] > f[0])) {
    throw new RangeError(`AtariEnv: a stochastic frameskip must be [low, high) with 1 <= low < high, got ${f}`);
  }
  return [f[0], f[1]];
}

/** `space_invaders` → `SpaceInvaders` (ale-py's id naming). */
export function romIdToName(id: string): string {
  return id.split("_").map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join("");
}

/** ROMs ale-py registers no v5 id for: they have no single-player mode. */
const MULTIPLAYER_ONLY = new Set(["combat", "joust", "maze_craze", "warlords"]);

/** The `ALE/<Game>-v5` ids registered by this module, e.g. `ALE/Pong-v5`. */
export const ATARI_V5_IDS: readonly string[] = ROM_IDS.filter((id) => !MULTIPLAYER_ONLY.has(id)).map((id) =>
  `ALE/${romIdToName(id)}-v5`
);

function registerV5(): void {
  for (const id of ROM_IDS) {
    if (MULTIPLAYER_ONLY.has(id)) continue;
    register({
      id: `ALE/${romIdToName(id)}-v5`,
      create: ({ game, ...options }) => new AtariEnv(game as string, options as AtariEnvOptions),
      // 108k frames (30 minutes of play) as in ale-py; ALE itself truncates, so no TimeLimit wrapper.
      kwargs: {
        game: id,
        repeatActionProbability: 0.25,
        fullActionSpace: false,
        frameskip: 4,
        maxNumFramesPerEpisode: 108_000,
      },
    });
  }
}

registerV5();

/**
 * `DoomEnv`: ViZDoom through Deno FFI.
 *
 * Zero-copy observations: the screen (and depth, labels, automap, game variables when asked for) live in buffers the
 * env allocates once; native code writes each frame into them exactly once per step, straight from the engine's
 * shared memory, resized and laid out on the way. `reset()` and `step()` return views of those same buffers, so an
 * observation is overwritten by the next step: copy it (`obs.slice()`) to keep it.
 *
 * The engine is a separate process. It dies with the env (`close()`), with the Deno process, and with a SIGKILL of
 * Deno: it is started through a launcher that sets a parent-death signal, which fires when the controller thread
 * that started it exits, i.e. with the process (that thread belongs to the native library, not to a JS thread).
 * So a Worker terminated without closing its envs leaves their engines running until the process exits: close
 * envs in Workers (the vector envs' `close()` does). Each engine writes its files into a private temporary
 * directory; shared memory and directories left by killed engines are removed by the next `DoomEnv`.
 *
 * @module
 */

import { Env, type Info, type ResetOptions, type ResetResult, type RgbFrame, type StepResult } from "../core.ts";
import { Box, Dict, Discrete, MultiDiscrete, type Space } from "../spaces.ts";
import { cString, lastError, loadVizdoom, type VizdoomLibrary } from "./ffi.ts";
import type { VizdoomPaths } from "./provision.ts";

/**
 * Screen formats (values of ViZDoom's `ScreenFormat`, from ViZDoomTypes.h).
 *
 * @example
 * ```ts
 * import { SCREEN_FORMATS } from "./doom_env.ts";
 * console.assert(SCREEN_FORMATS.GRAY8 === 8);
 * ```
 */
export const SCREEN_FORMATS = {
  CRCGCB: 0,
  RGB24: 1,
  RGBA32: 2,
  ARGB32: 3,
  CBCGCR: 4,
  BGR24: 5,
  BGRA32: 6,
  ABGR32: 7,
  GRAY8: 8,
  DOOM_256_COLORS8: 9,
} as const;

/** A screen format name. */
export type ScreenFormat = keyof typeof SCREEN_FORMATS;

/**
 * Resolutions in ViZDoom's `ScreenResolution` order (the enum value is the index).
 *
 * @example
 * ```ts
 * import { RESOLUTIONS } from "./doom_env.ts";
 * console.assert(RESOLUTIONS.indexOf("160X120") === 0);
 * ```
 */
export const RESOLUTIONS = [
  "160X120",
  "200X125",
  "200X150",
  "256X144",
  "256X160",
  "256X192",
  "320X180",
  "320X200",
  "320X240",
  "320X256",
  "400X225",
  "400X250",
  "400X300",
  "512X288",
  "512X320",
  "512X384",
  "640X360",
  "640X400",
  "640X480",
  "800X450",
  "800X500",
  "800X600",
  "1024X576",
  "1024X640",
  "1024X768",
  "1280X720",
  "1280X800",
  "1280X960",
  "1280X1024",
  "1400X787",
  "1400X875",
  "1400X1050",
  "1600X900",
  "1600X1000",
  "1600X1200",
  "1920X1080",
] as const;

/** A rendering resolution such as `"160X120"`. */
export type Resolution = typeof RESOLUTIONS[number];

/** One group of a multi-discrete action: `n` choices (no-op + the next n-1 buttons), or a discretized delta. */
export type DoomActionGroup = number | {
  /** Number of values. */
  bins: number;
  /** Value of bin 0. */
  min: number;
  /** Value of the last bin. */
  max: number;
};

/**
 * How actions map to buttons (Sample Factory's conventions):
 * - `discrete`: `Discrete(1 + buttons)`, 0 = no-op, i = press button i-1 alone; or, with `combinations`,
 *   `Discrete(combinations.length)` over explicit button vectors.
 * - `multi_discrete`: `MultiDiscrete` with one element per group; a group of `n` choices takes the next `n-1`
 *   buttons (0 = none of them); a `{ bins, min, max }` group drives one delta button with a discretized value.
 * - `box`: one float per button, binary buttons pressed at >= 0.5, delta buttons in [-1, 1] times `deltaScale`.
 */
export type DoomActionSpace =
  | { kind: "discrete"; combinations?: number[][] }
  | { kind: "multi_discrete"; groups: DoomActionGroup[] }
  | { kind: "box"; deltaScale?: number };

/** An observation: the screen alone, or a dict with the screen and the extra buffers asked for. */
export type DoomObservation = Uint8Array | Record<string, Uint8Array | Float32Array>;

/** An action: a number (discrete), an Int32Array (multi-discrete) or a Float32Array (box). */
export type DoomAction = number | Int32Array | Float32Array;

/** Options of `DoomEnv`. */
export interface DoomEnvOptions {
  /** Directory to look up scenario names in (default: ViZDoom's scenarios from the wheel). */
  scenarioDir?: string;
  /** Config text in `.cfg` syntax applied after the `.cfg` file (e.g. `"living_reward = 0.01"`). */
  configOverrides?: string;
  /** Screen format (default `RGB24`; `GRAY8` gives one channel). */
  screenFormat?: ScreenFormat;
  /** Rendering resolution (default `160X120`, the smallest). */
  resolution?: Resolution;
  /** Observation size `[width, height]` after resizing (default: the rendering resolution). */
  resize?: [width: number, height: number];
  /** Resize filter: `nearest` (OpenCV's INTER_NEAREST, Sample Factory's default) or `area` (default `nearest`). */
  interpolation?: "nearest" | "area";
  /** Observation layout: `CHW` (what a conv encoder takes, Sample Factory's `pixel_format`) or `HWC` (default CHW). */
  layout?: "CHW" | "HWC";
  /** Tics per step (frameskip; the action is repeated), default 1. */
  frameskip?: number;
  /** Buttons replacing the config's, by name (`"ATTACK"`, `"TURN_LEFT_RIGHT_DELTA"`). */
  buttons?: string[];
  /** Game variables replacing the config's, by name (`"HEALTH"`). */
  gameVariables?: string[];
  /** Action mapping (default `{ kind: "discrete" }`). */
  actionSpace?: DoomActionSpace;
  /** Put the game variables in the observation (a Dict with `screen` and `gamevariables`) too. Default false. */
  observeGameVariables?: boolean;
  /** Add the depth buffer to the observation (`depth`). */
  depth?: boolean;
  /** Add the labels buffer to the observation (`labels`). */
  labels?: boolean;
  /** Add the automap to the observation (`automap`, same format as the screen). */
  automap?: boolean;
  /** Episode timeout in tics (default: the config's). Reaching it ends the episode with `truncated`. */
  episodeTimeout?: number;
  /** Engine seed before the first `reset()` (default random; `reset({ seed })` reseeds). */
  seed?: number;
  /** Multiplies rewards (Sample Factory's `reward_scaling`), default 1. */
  rewardScale?: number;
  /**
   * `gathering`: +1 whenever HEALTH rises (Sample Factory's DoomGatheringRewardShaping); the episode's last `info` then
   * holds `true_objective`, the engine's unshaped score.
   */
  rewardShaping?: "gathering";
  /**
   * Deathmatch against this many bots: hosts a one-player deathmatch with Sample Factory's server settings (forced
   * respawn, no autoaim, no jump/crouch/freelook, no exit) and adds the bots at every `reset()`.
   */
  bots?: number;
  /** Minutes per deathmatch episode with `bots` (default 4, Sample Factory's `timelimit`). */
  deathmatchMinutes?: number;
  /** Show the engine's window (needs a display). Default false. */
  windowVisible?: boolean;
  /** Extra engine arguments, one per element. */
  gameArgs?: string[];
}

/** Slots of the shim's `out` buffer (see `shim.cpp`). */
const OUT_REWARD = 0, OUT_TIMEOUT = 3, OUT_DEAD = 4;

// Backstop only: frees the native game (and stops its engine) if an env is garbage-collected unclosed.
const finalizer = new FinalizationRegistry<{ lib: VizdoomLibrary; handle: Deno.PointerValue; dir: string }>(
  ({ lib, handle, dir }) => {
    lib.avz_destroy(handle);
    removeDir(dir);
  },
);

let nextEnvNumber = 0;

/**
 * A ViZDoom game as a Gymnasium-style env. Construction starts the engine (about 0.2 s) and needs a provisioned
 * ViZDoom: call `await ensureVizdoom()` once first (or use `DoomEnv.create`).
 *
 * @example
 * ```ts
 * import { DoomEnv, ensureVizdoom } from "./mod.ts";
 * await ensureVizdoom();
 * using env = new DoomEnv("basic", { resize: [128, 72], frameskip: 4 });
 * let [obs] = env.reset({ seed: 1 });
 * const [next, reward, terminated, truncated, info] = env.step(env.actionSpace.sample());
 * console.log(obs === next, reward, terminated, truncated, info); // true: the same buffer, rewritten
 * ```
 */
export class DoomEnv extends Env<DoomObservation, DoomAction> {
  readonly observationSpace: Space<DoomObservation>;
  readonly actionSpace: Space<DoomAction>;
  /** The `.cfg` file the game was loaded from. */
  readonly configPath: string;
  /** Button names, in action-vector order. */
  readonly buttons: readonly string[];
  /** Game variable names, in order (also the keys in `info`). */
  readonly gameVariables: readonly string[];
  /** Tics per step. */
  readonly frameskip: number;

  #lib: VizdoomLibrary;
  #handle: Deno.PointerValue = null;
  #dir: string;
  #closed = false;
  #needsReset = true;
  /** A stepAsync() is running on a pool thread: the native game must outlive it (close() waits for it). */
  #stepping = false;
  #closeAfterStep = false;
  #instanceId = "";
  #action: Float64Array<ArrayBuffer>;
  #actionTable: Float64Array[] = [];
  #groups: { offset: number; size: number; delta?: { min: number; step: number } }[] = [];
  #boxDelta: Float64Array = new Float64Array(0);
  #screen: Uint8Array;
  #extraBuffers: (Uint8Array | undefined)[] = [];
  #vars: Float64Array<ArrayBuffer>;
  #varsF32: Float32Array<ArrayBuffer>;
  #out = new Float64Array(6);
  #obs: DoomObservation;
  #rewardScale: number;
  #bots: number;
  #shaping: "gathering" | undefined;
  #healthIndex: number;
  #prevHealth: number | undefined;
  /** The episode's summed engine reward before shaping (the `true_objective` reported with shaping). */
  #objective = 0;
  #screenShape: { width: number; height: number; channels: number; layout: "CHW" | "HWC" };
  #rgbFrame: Uint8Array | undefined;

  /**
   * Starts a game from a scenario name (`"basic"`, `"health_gathering_supreme"`: a `.cfg` in the scenario
   * directory) or a path to a `.cfg` file.
   */
  constructor(scenario: string, options: DoomEnvOptions = {}) {
    super();
    const { symbols: lib, paths } = loadVizdoom();
    this.#lib = lib;
    this.configPath = resolveConfig(scenario, options.scenarioDir ?? paths.scenarios);
    this.frameskip = positiveInt(options.frameskip ?? 1, "frameskip");
    this.#rewardScale = options.rewardScale ?? 1;
    this.#shaping = options.rewardShaping;
    this.#bots = options.bots ?? 0;
    cleanStaleEngineFiles();
    this.#dir = Deno.makeTempDirSync({ prefix: `arcadia-vizdoom-${Deno.pid}-${nextEnvNumber++}-` });
    const handle = lib.avz_create();
    if (!handle) throw new Error(`DoomEnv: cannot create a game: ${lastError(lib)}`);
    this.#handle = handle;
    finalizer.register(this, { lib, handle, dir: this.#dir }, this);
    // From here on a failure must stop the engine at once (not at garbage collection).
    try {
      this.#configure(paths, options);
      this.#check(lib.avz_init(handle), "starting the engine (init)");
      this.#instanceId = this.#readString((buf, cap) => lib.avz_instance_id(handle, buf, cap));
      this.buttons = this.#readIds((b, c) => lib.avz_get_buttons(handle, b, c)).map(buttonName(lib));
      this.gameVariables = this.#readIds((b, c) => lib.avz_get_game_variables(handle, b, c)).map(variableName(lib));
      this.#healthIndex = this.gameVariables.indexOf("HEALTH");
      if (this.#shaping === "gathering" && this.#healthIndex < 0) {
        throw new Error(`DoomEnv: rewardShaping "gathering" needs the HEALTH game variable (${this.configPath})`);
      }

      // Observation buffers: allocated once, written by native code every step.
      const shape = new Int32Array(3);
      this.#check(lib.avz_get_screen_shape(handle, shape), "reading the screen shape");
      const [width, height] = options.resize ?? [shape[0], shape[1]];
      const channels = shape[2], layout = options.layout ?? "CHW";
      positiveInt(width, "resize width"), positiveInt(height, "resize height");
      this.#screenShape = { width, height, channels, layout };
      this.#check(
        lib.avz_set_output(handle, width, height, layout === "CHW" ? 1 : 0, options.interpolation === "area" ? 1 : 0),
        "setting the output geometry",
      );
      const imageShape = (c: number) => (layout === "CHW" ? [c, height, width] : [height, width, c]);
      this.#screen = new Uint8Array(width * height * channels);
      const nVars = this.gameVariables.length;
      this.#vars = new Float64Array(Math.max(1, nVars));
      this.#varsF32 = new Float32Array(nVars);
      const screenSpace = new Box(0, 255, { shape: imageShape(channels), dtype: "uint8" });
      const spaces: Record<string, Space<unknown>> = { screen: screenSpace };
      const obs: Record<string, Uint8Array | Float32Array> = { screen: this.#screen };
      const extra = (key: string, c: number, on: boolean | undefined) => {
        if (!on) return undefined;
        const buffer = new Uint8Array(width * height * c);
        spaces[key] = new Box(0, 255, { shape: imageShape(c), dtype: "uint8" });
        obs[key] = buffer;
        return buffer;
      };
      const depth = extra("depth", 1, options.depth);
      const labels = extra("labels", 1, options.labels);
      const automap = extra("automap", channels, options.automap);
      if (options.observeGameVariables) {
        spaces.gamevariables = new Box(-Infinity, Infinity, { shape: [nVars] });
        obs.gamevariables = this.#varsF32;
      }
      const isDict = Object.keys(obs).length > 1;
      this.#obs = isDict ? obs : this.#screen;
      this.observationSpace = (isDict ? new Dict(spaces) : screenSpace) as unknown as Space<DoomObservation>;

      // Action buffer, read by native code every step.
      this.#action = new Float64Array(Math.max(1, this.buttons.length));
      this.actionSpace = this.#makeActionSpace(options.actionSpace ?? { kind: "discrete" }, lib);
      this.#extraBuffers = [depth, labels, automap];
      this.#bind();
      const rgb = options.screenFormat === undefined || options.screenFormat === "RGB24" ||
        options.screenFormat === "CRCGCB";
      this.metadata = { renderModes: rgb ? ["rgb_array"] : [], renderFps: Math.round(35 / this.frameskip) };
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /**
   * Provisions ViZDoom if needed (`ensureVizdoom()`), then constructs the env.
   *
   * @example
   * ```ts
   * import { DoomEnv } from "./mod.ts";
   * using env = await DoomEnv.create("health_gathering_supreme", { frameskip: 4 });
   * env.reset({ seed: 0 });
   * ```
   */
  static async create(scenario: string, options: DoomEnvOptions = {}): Promise<DoomEnv> {
    const { ensureVizdoom } = await import("./provision.ts");
    await ensureVizdoom();
    return new DoomEnv(scenario, options);
  }

  /** The engine's process id (Linux), or undefined when it is not running. For diagnostics and tests. */
  get enginePid(): number | undefined {
    if (this.#closed || !this.#instanceId) return undefined;
    return findEnginePids(this.#instanceId)[0];
  }

  override reset(options: ResetOptions = {}): ResetResult<DoomObservation> {
    this.seedFromReset(options);
    const lib = this.#lib, handle = this.#live("reset");
    if (options.seed !== undefined) this.#check(lib.avz_set_seed(handle, options.seed >>> 0), "seeding");
    this.#check(lib.avz_new_episode(handle), "starting an episode");
    if (this.#bots > 0) {
      // Like Sample Factory: fresh bots every episode (they join at the next tic).
      this.#check(lib.avz_send_game_command(handle, cString("removebots")), "removing bots");
      for (let i = 0; i < this.#bots; i++) {
        this.#check(lib.avz_send_game_command(handle, cString("addbot")), "adding a bot");
      }
    }
    this.#needsReset = false;
    this.#prevHealth = undefined;
    this.#objective = 0;
    return [this.#observation(), this.#info()];
  }

  override step(action: DoomAction): StepResult<DoomObservation> {
    const handle = this.#beginStep(action);
    return this.#finishStep(handle, this.#lib.avz_step(handle, this.frameskip));
  }

  /**
   * `step()` with the engine's work on a Deno pool thread: start several envs' steps, then await them together, and
   * their engines (separate processes) run at the same time instead of one after another. Do not call anything else
   * on this env until the promise settles.
   *
   * @example
   * ```ts ignore
   * import { DoomEnv } from "./doom_env.ts";
   * const envs = [new DoomEnv("basic"), new DoomEnv("basic")];
   * for (const env of envs) env.reset({ seed: 0 });
   * const results = await Promise.all(envs.map((env) => env.stepAsync(0)));
   * for (const env of envs) env.close();
   * ```
   */
  async stepAsync(action: DoomAction): Promise<StepResult<DoomObservation>> {
    const handle = this.#beginStep(action);
    this.#stepping = true;
    let rc: number;
    try {
      rc = await this.#lib.avz_step_nonblocking(handle, this.frameskip);
    } finally {
      this.#stepping = false;
      if (this.#closeAfterStep) this.close();
    }
    if (this.#closed) throw new Error("DoomEnv: closed while stepAsync() was running");
    return this.#finishStep(handle, rc, true);
  }

  #beginStep(action: DoomAction): Deno.PointerValue {
    const handle = this.#live("step");
    if (this.#stepping) throw new Error("DoomEnv: step() while a stepAsync() is in flight; await it first");
    if (this.#needsReset) {
      throw new Error("DoomEnv: call reset() before step() (at the start and after an episode ends)");
    }
    this.actionSpace.assertContains(action, "action");
    this.#writeAction(action);
    return handle;
  }

  #finishStep(handle: Deno.PointerValue, rc: number, offThread = false): StepResult<DoomObservation> {
    if (rc < 0) {
      this.#needsReset = true;
      const p = offThread ? this.#lib.avz_step_error(handle) : null;
      const message = offThread ? (p ? Deno.UnsafePointerView.getCString(p) : "") : lastError(this.#lib);
      throw new Error(
        `DoomEnv: step() failed: ${message} (engine ${this.#instanceId}; ` +
          `if the engine process died, close() this env and create a new one)`,
      );
    }
    const out = this.#out, done = rc === 1;
    if (!done && this.#bots > 0 && out[OUT_DEAD] === 1) {
      // Deathmatch: the episode goes on after a death; the reward of the fatal step is kept.
      const reward = out[OUT_REWARD];
      this.#check(this.#lib.avz_respawn_player(handle), "respawning");
      out[OUT_REWARD] = reward;
    }
    let reward = out[OUT_REWARD] * this.#rewardScale;
    const timeout = done && out[OUT_TIMEOUT] === 1 && out[OUT_DEAD] === 0;
    if (done) this.#needsReset = true;
    const info = this.#info();
    if (this.#shaping === "gathering") {
      // Sample Factory's gathering wrapper: the shaped reward trains; the engine's own score, `true_objective` at the
      // episode's end, is what its evaluation (and the Hugging Face course) reports.
      this.#objective += out[OUT_REWARD];
      if (done) info.true_objective = this.#objective;
      else {
        const health = this.#vars[this.#healthIndex];
        if (this.#prevHealth !== undefined && health > this.#prevHealth) reward += 1;
        this.#prevHealth = health;
      }
    }
    return [this.#observation(), reward, done && !timeout, timeout, info];
  }

  /** The current screen as an RGB frame (`rgb_array`; RGB24 or CRCGCB screens only). */
  override render(): RgbFrame | undefined {
    if (!this.metadata.renderModes.includes("rgb_array") || this.#closed) return undefined;
    const { width, height, layout } = this.#screenShape;
    const src = this.#screen, plane = width * height;
    const data = this.#rgbFrame ??= new Uint8Array(plane * 3);
    if (layout === "HWC") data.set(src);
    else {
      for (let i = 0; i < plane; i++) {
        data[3 * i] = src[i], data[3 * i + 1] = src[plane + i], data[3 * i + 2] = src[2 * plane + i];
      }
    }
    return { data, width, height };
  }

  /** Stops the engine and frees the native game. Safe to call more than once. */
  override close(): void {
    if (this.#stepping) {
      this.#closeAfterStep = true; // the pool thread is inside the native game: free it when the step returns
      return;
    }
    if (this.#closed) return;
    this.#closed = true;
    finalizer.unregister(this);
    if (this.#handle) {
      const rc = this.#lib.avz_destroy(this.#handle);
      this.#handle = null;
      if (rc < 0) removeSharedMemory(this.#instanceId); // the engine died: its objects may be left behind
    }
    removeDir(this.#dir);
  }

  /**
   * Zero-copy into a vector env's buffer (`ObservationTarget` of `envs/vector`): from now on the engine's frames are
   * written into `out` and `out` is returned as the observation. Only for screen-only observations of the same size.
   */
  setObservationTarget(out: Uint8Array | Float32Array): void {
    if (!(out instanceof Uint8Array) || out.length !== this.#screen.length || this.#obs !== this.#screen) return;
    out.set(this.#screen);
    this.#screen = this.#obs = out;
    this.#bind();
  }

  /** Hands the buffers' addresses to native code; the env keeps references, so they stay alive and unmoved. */
  #bind(): void {
    const ptr = (b: ArrayBufferView | undefined) => (b ? Deno.UnsafePointer.of(b as Uint8Array<ArrayBuffer>) : null);
    const [depth, labels, automap] = this.#extraBuffers;
    this.#check(
      this.#lib.avz_bind(
        this.#live("bind"),
        ptr(this.#action),
        ptr(this.#screen),
        ptr(depth),
        ptr(labels),
        ptr(automap),
        ptr(this.#vars),
        ptr(this.#out),
      ),
      "binding the observation buffers",
    );
  }

  #configure(paths: VizdoomPaths, options: DoomEnvOptions): void {
    const lib = this.#lib, h = this.#handle;
    const set = (rc: number, what: string) => this.#check(rc, what);
    set(lib.avz_load_config(h, cString(this.configPath)), `loading ${this.configPath}`);
    if (options.configOverrides) {
      set(lib.avz_set_config(h, cString(options.configOverrides)), "applying configOverrides");
    }
    if (paths.launcher) {
      // The launcher sets a parent-death signal and execs the real engine (see shim.cpp); it strips these args.
      set(lib.avz_set_vizdoom_path(h, cString(paths.launcher)), "setting the engine path");
    } else {
      set(lib.avz_set_vizdoom_path(h, cString(paths.engine)), "setting the engine path");
    }
    set(lib.avz_set_doom_game_path(h, cString(paths.iwad)), "setting the IWAD path");
    set(lib.avz_set_doom_config_path(h, cString(`${this.#dir}/_vizdoom.ini`)), "setting the engine config path");
    set(lib.avz_set_screen_format(h, SCREEN_FORMATS[options.screenFormat ?? "RGB24"]), "setting the screen format");
    const res = RESOLUTIONS.indexOf(options.resolution ?? "160X120");
    if (res < 0) throw new RangeError(`DoomEnv: unknown resolution ${options.resolution}; use one of ${RESOLUTIONS}`);
    set(lib.avz_set_screen_resolution(h, res), "setting the resolution");
    set(lib.avz_set_window_visible(h, options.windowVisible ? 1 : 0), "setting window visibility");
    set(lib.avz_set_mode(h, 0), "setting PLAYER mode");
    if (options.buttons) {
      set(lib.avz_clear_buttons(h), "clearing buttons");
      for (const b of options.buttons) {
        set(lib.avz_add_button(h, lookup(b, buttonIds(lib), "button"), -1), `adding ${b}`);
      }
    }
    if (options.gameVariables) {
      set(lib.avz_clear_game_variables(h), "clearing game variables");
      for (const v of options.gameVariables) {
        set(lib.avz_add_game_variable(h, lookup(v, variableIds(lib), "game variable")), `adding ${v}`);
      }
    }
    if (options.depth) set(lib.avz_set_depth_buffer_enabled(h, 1), "enabling the depth buffer");
    if (options.labels) set(lib.avz_set_labels_buffer_enabled(h, 1), "enabling the labels buffer");
    if (options.automap) set(lib.avz_set_automap_buffer_enabled(h, 1), "enabling the automap buffer");
    if (options.episodeTimeout !== undefined) {
      set(lib.avz_set_episode_timeout(h, options.episodeTimeout >>> 0), "setting the episode timeout");
    }
    if (options.seed !== undefined) set(lib.avz_set_seed(h, options.seed >>> 0), "seeding");
    if (options.bots !== undefined) {
      const minutes = options.deathmatchMinutes ?? 4;
      // A random port: parallel hosts must not collide (one-player hosts accept no connections anyway).
      const port = 20000 + Math.floor(Math.random() * 40000);
      const args = ["-host", "1", "-port", String(port), "-deathmatch", "+timelimit", String(minutes)];
      for (const flag of ["forcerespawn", "noautoaim", "respawnprotect", "spawnfarthest", "nocrouch", "nojump"]) {
        args.push(`+sv_${flag}`, "1");
      }
      args.push("+sv_nofreelook", "1", "+sv_noexit", "1", "+viz_respawn_delay", "0", "+viz_connect_timeout", "4");
      args.push("+name", "AI0_host", "+colorset", "0");
      for (const arg of args) set(lib.avz_add_game_arg(h, cString(arg)), `adding deathmatch arg ${arg}`);
      set(lib.avz_set_episode_timeout(h, Math.round(minutes * 60 * 35)), "setting the deathmatch timeout");
    }
    for (const arg of options.gameArgs ?? []) set(lib.avz_add_game_arg(h, cString(arg)), `adding game arg ${arg}`);
    if (paths.launcher) {
      for (
        const arg of ["-arcadia-engine", paths.engine, "-arcadia-parent", String(Deno.pid), "-arcadia-cwd", this.#dir]
      ) {
        set(lib.avz_add_game_arg(h, cString(arg)), "adding launcher args");
      }
    }
  }

  #makeActionSpace(spec: DoomActionSpace, lib: VizdoomLibrary): Space<DoomAction> {
    const n = this.buttons.length;
    if (spec.kind === "discrete") {
      const combos = spec.combinations ??
        [new Array(n).fill(0), ...Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => +(i === j)))];
      for (const c of combos) {
        if (c.length !== n) throw new RangeError(`DoomEnv: combination [${c}] must have ${n} values (${this.buttons})`);
      }
      this.#actionTable = combos.map((c) => Float64Array.from(c));
      return new Discrete(combos.length) as Space<DoomAction>;
    }
    if (spec.kind === "multi_discrete") {
      let offset = 0;
      const nvec: number[] = [];
      for (const g of spec.groups) {
        if (typeof g === "number") {
          this.#groups.push({ offset, size: g - 1 });
          offset += g - 1;
          nvec.push(g);
        } else {
          this.#groups.push({ offset, size: 1, delta: { min: g.min, step: (g.max - g.min) / (g.bins - 1) } });
          offset += 1;
          nvec.push(g.bins);
        }
      }
      if (offset !== n) {
        throw new RangeError(`DoomEnv: the action groups drive ${offset} buttons, the game has ${n} (${this.buttons})`);
      }
      return new MultiDiscrete(nvec) as Space<DoomAction>;
    }
    const scale = spec.deltaScale ?? 1;
    const ids = this.#readIds((b, c) => lib.avz_get_buttons(this.#handle, b, c));
    this.#boxDelta = Float64Array.from(ids, (id) => (lib.avz_is_delta_button(id) === 1 ? scale : 0));
    const low = Array.from(this.#boxDelta, (d) => (d ? -1 : 0));
    return new Box(low, new Array(n).fill(1)) as Space<DoomAction>;
  }

  #writeAction(action: DoomAction): void {
    const buf = this.#action;
    if (typeof action === "number") {
      buf.set(this.#actionTable[action]);
    } else if (action instanceof Int32Array) {
      buf.fill(0);
      for (let i = 0; i < this.#groups.length; i++) {
        const g = this.#groups[i], a = action[i];
        if (g.delta) buf[g.offset] = g.delta.min + a * g.delta.step;
        else if (a > 0) buf[g.offset + a - 1] = 1;
      }
    } else {
      const delta = this.#boxDelta;
      for (let i = 0; i < buf.length; i++) buf[i] = delta[i] ? action[i] * delta[i] : action[i] >= 0.5 ? 1 : 0;
    }
  }

  #observation(): DoomObservation {
    if (this.#obs !== this.#screen) this.#varsF32.set(this.#vars.subarray(0, this.#varsF32.length));
    return this.#obs;
  }

  #info(): Info {
    const info: Info = { num_frames: this.frameskip };
    const names = this.gameVariables, vars = this.#vars;
    for (let i = 0; i < names.length; i++) info[names[i]] = vars[i];
    return info;
  }

  #live(what: string): Deno.PointerValue {
    if (this.#closed || !this.#handle) throw new Error(`DoomEnv: ${what}() on a closed env; create a new one`);
    return this.#handle;
  }

  #check(rc: number, what: string): void {
    if (rc < 0) throw new Error(`DoomEnv: ${what} failed: ${lastError(this.#lib)} (config ${this.configPath})`);
  }

  #readIds(read: (buf: Int32Array<ArrayBuffer>, cap: number) => number): number[] {
    const buf = new Int32Array(128);
    const n = read(buf, buf.length);
    if (n < 0) throw new Error(`DoomEnv: ${lastError(this.#lib)}`);
    return Array.from(buf.subarray(0, Math.min(n, buf.length)));
  }

  #readString(read: (buf: Uint8Array<ArrayBuffer>, cap: number) => number): string {
    const buf = new Uint8Array(256);
    const n = read(buf, buf.length);
    if (n < 0) throw new Error(`DoomEnv: ${lastError(this.#lib)}`);
    return new TextDecoder().decode(buf.subarray(0, Math.min(n, buf.length - 1)));
  }
}

function resolveConfig(scenario: string, dir: string): string {
  const isPath = scenario.includes("/") || scenario.endsWith(".cfg");
  const path = isPath ? scenario : `${dir}/${scenario}.cfg`;
  const absolute = path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
  try {
    if (Deno.statSync(absolute).isFile) return absolute;
  } catch { /* reported below */ }
  let known = "";
  try {
    known = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".cfg")).map((e) => e.name.slice(0, -4))
      .sort().join(", ");
  } catch { /* no listing */ }
  throw new Error(
    `DoomEnv: no scenario config at ${absolute}` + (known ? `; scenarios in ${dir}: ${known}` : ""),
  );
}

function positiveInt(x: number, what: string): number {
  if (!Number.isInteger(x) || x < 1) throw new RangeError(`DoomEnv: ${what} must be a positive integer, got ${x}`);
  return x;
}

let buttonTable: Map<string, number> | undefined;
let variableTable: Map<string, number> | undefined;

function nameTable(read: (id: number, buf: Uint8Array<ArrayBuffer>, cap: number) => number, count: number) {
  const table = new Map<string, number>();
  const buf = new Uint8Array(64), dec = new TextDecoder();
  for (let id = 0; id < count; id++) {
    const n = read(id, buf, buf.length);
    if (n > 0) table.set(dec.decode(buf.subarray(0, n)), id);
  }
  return table;
}

function buttonIds(lib: VizdoomLibrary): Map<string, number> {
  return buttonTable ??= nameTable((id, b, c) => lib.avz_button_name(id, b, c), 43);
}

function variableIds(lib: VizdoomLibrary): Map<string, number> {
  return variableTable ??= nameTable((id, b, c) => lib.avz_game_variable_name(id, b, c), 132);
}

function buttonName(lib: VizdoomLibrary): (id: number) => string {
  const names = [...buttonIds(lib)].reduce((m, [k, v]) => m.set(v, k), new Map<number, string>());
  return (id) => names.get(id) ?? `BUTTON${id}`;
}

function variableName(lib: VizdoomLibrary): (id: number) => string {
  const names = [...variableIds(lib)].reduce((m, [k, v]) => m.set(v, k), new Map<number, string>());
  return (id) => names.get(id) ?? `VARIABLE${id}`;
}

function lookup(name: string, table: Map<string, number>, what: string): number {
  const id = table.get(name.toUpperCase());
  if (id === undefined) throw new RangeError(`DoomEnv: unknown ${what} "${name}"; known: ${[...table.keys()]}`);
  return id;
}

function removeDir(dir: string): void {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch { /* already gone */ }
}

/**
 * Pids of running engines whose command line carries `+viz_instance_id <id>` (all engines without an id; Linux
 * only, [] elsewhere).
 *
 * @example
 * ```ts
 * import { findEnginePids } from "./doom_env.ts";
 * console.log(`${findEnginePids().length} ViZDoom engines are running on this machine`);
 * ```
 */
export function findEnginePids(instanceId?: string): number[] {
  if (Deno.build.os !== "linux") return [];
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    let cmd: string;
    try {
      cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`);
    } catch {
      continue;
    }
    const args = cmd.split("\0");
    const at = args.indexOf("+viz_instance_id");
    if (at < 0) continue;
    if (instanceId === undefined || args[at + 1] === instanceId) pids.push(Number(e.name));
  }
  return pids;
}

function removeSharedMemory(instanceId: string): void {
  if (!instanceId) return;
  for (const prefix of ["ViZDoomSM", "ViZDoomMQCtr", "ViZDoomMQDoom"]) {
    try {
      Deno.removeSync(`/dev/shm/${prefix}${instanceId}`);
    } catch { /* absent */ }
  }
}

/**
 * Removes what dead engines left behind: shared-memory objects `/dev/shm/ViZDoom*` whose engine is gone (older
 * than a minute, so engines starting right now are never touched) and private directories of dead Deno processes.
 * Every `DoomEnv` constructor calls it.
 *
 * @example
 * ```ts
 * import { cleanStaleEngineFiles } from "./doom_env.ts";
 * cleanStaleEngineFiles();
 * ```
 */
export function cleanStaleEngineFiles(): void {
  if (Deno.build.os !== "linux") return;
  let live: Set<string> | undefined;
  const now = Date.now();
  try {
    for (const e of Deno.readDirSync("/dev/shm")) {
      const m = /^ViZDoom(?:SM|MQCtr|MQDoom)(.+)$/.exec(e.name);
      if (!m) continue;
      const path = `/dev/shm/${e.name}`;
      const mtime = Deno.statSync(path).mtime?.getTime() ?? now;
      if (now - mtime < 60_000) continue;
      live ??= new Set(
        findEnginePids().map((pid) => {
          const args = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
          return args[args.indexOf("+viz_instance_id") + 1];
        }),
      );
      if (!live.has(m[1])) Deno.removeSync(path);
    }
  } catch { /* best effort */ }
  try {
    const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
    for (const e of Deno.readDirSync(tmp)) {
      const m = /^arcadia-vizdoom-(\d+)-/.exec(e.name);
      if (m && !pidAlive(Number(m[1]))) removeDir(`${tmp}/${e.name}`);
    }
  } catch { /* best effort */ }
}

function pidAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

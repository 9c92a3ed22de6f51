/**
 * Videos of selected episodes from `render()` frames (Gymnasium's `RecordVideo`), written as H.264 MP4.
 *
 * @module
 */

import { type Env, type ResetOptions, type ResetResult, type RgbFrame, type StepResult, Wrapper } from "../core.ts";
import { Mp4Writer } from "../video/mp4_writer.ts";

/** Options of `RecordVideo`. */
export interface RecordVideoOptions {
  /** Which episodes (0, 1, 2, ... counted by `reset()`) to record (default `cappedCubicVideoSchedule`). */
  episodeTrigger?: (episode: number) => boolean;
  /** File names start with this (default `"rl-video"`). */
  namePrefix?: string;
  /**
   * Write all recorded episodes one after another into `<dir>/<namePrefix>.mp4` instead of one file per episode
   * (default false). The file is finished by `close()`.
   */
  singleFile?: boolean;
  /** At most this many frames per episode (default: the whole episode). */
  maxFramesPerEpisode?: number;
  /** Frames per second of the video (default `env.metadata.renderFps`, else 30). */
  fps?: number;
  /** x264 constant rate factor, lower is better (default 23). */
  crf?: number;
  /** x264 preset (default `veryfast`). */
  preset?: string;
}

/**
 * Gymnasium's default schedule: episodes 0, 1, 8, 27, ... (perfect cubes) below 1000, then every 1000th.
 *
 * @example
 * ```ts
 * import { cappedCubicVideoSchedule } from "./record_video.ts";
 * const picked = [0, 1, 2, 8, 27, 999, 1000, 2000].filter(cappedCubicVideoSchedule);
 * console.assert(picked.join() === "0,1,8,27,1000,2000");
 * ```
 */
export function cappedCubicVideoSchedule(episode: number): boolean {
  if (episode < 1000) return Math.round(Math.cbrt(episode)) ** 3 === episode;
  return episode % 1000 === 0;
}

/**
 * Records the `render()` frames of selected episodes to `<dir>/<namePrefix>-episode-<k>.mp4` (the frame after
 * `reset()` and one after every `step()`), or into one file for all of them with `singleFile`. A per-episode file
 * is finished when its episode ends (or at the next `reset()`/`close()`), and written atomically. The env must
 * render RGB frames (`rgb_array`) of a constant size.
 *
 * @example
 * ```ts
 * import { RecordVideo } from "./record_video.ts";
 * import { CartPoleEnv } from "../classic/cartpole.ts";
 *
 * const dir = Deno.makeTempDirSync();
 * {
 *   using env = new RecordVideo(new CartPoleEnv(), dir, { episodeTrigger: (k) => k === 0 });
 *   env.reset({ seed: 0 });
 *   for (let t = 0; t < 5; t++) env.step(t % 2);
 * }
 * console.assert(Deno.statSync(`${dir}/rl-video-episode-0.mp4`).size > 0);
 * ```
 */
export class RecordVideo<O = unknown, A = unknown> extends Wrapper<O, A> {
  /** Directory the videos go to. */
  readonly videoFolder: string;
  /** Paths of the videos finished so far. */
  readonly videoPaths: string[] = [];
  readonly #trigger: (episode: number) => boolean;
  readonly #prefix: string;
  readonly #single: boolean;
  readonly #maxFrames: number;
  readonly #fps: number;
  readonly #crf: number | undefined;
  readonly #preset: string | undefined;
  #episode = -1;
  #recording = false;
  #episodeFrames = 0;
  #writer: Mp4Writer | undefined;
  #closed = false;

  constructor(env: Env<O, A>, videoFolder: string, options: RecordVideoOptions = {}) {
    super(env);
    this.videoFolder = videoFolder;
    this.#trigger = options.episodeTrigger ?? cappedCubicVideoSchedule;
    this.#prefix = options.namePrefix ?? "rl-video";
    this.#single = options.singleFile ?? false;
    this.#maxFrames = options.maxFramesPerEpisode ?? Infinity;
    this.#fps = options.fps ?? env.metadata.renderFps ?? 30;
    this.#crf = options.crf;
    this.#preset = options.preset;
    if (!(this.#maxFrames >= 1)) {
      throw new RangeError(`RecordVideo: maxFramesPerEpisode must be >= 1, got ${this.#maxFrames}`);
    }
    if (!env.metadata.renderModes.includes("rgb_array")) {
      throw new Error(
        `RecordVideo: the env must support rgb_array rendering (its render modes: [${env.metadata.renderModes}])`,
      );
    }
    Deno.mkdirSync(videoFolder, { recursive: true });
  }

  /** Whether the current episode is being recorded. */
  get recording(): boolean {
    return this.#recording;
  }

  override reset(options?: ResetOptions): ResetResult<O> {
    const result = this.env.reset(options);
    this.#stopEpisode();
    this.#episode++;
    if (this.#trigger(this.#episode)) {
      this.#recording = true;
      this.#episodeFrames = 0;
      this.#capture();
    }
    return result;
  }

  override step(action: A): StepResult<O> {
    const result = this.env.step(action);
    if (this.#recording) {
      this.#capture();
      if (result[2] || result[3]) this.#stopEpisode();
    }
    return result;
  }

  /** Finishes the video being written, then closes the env. Safe to call twice. */
  override close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#stopEpisode();
      this.#finishWriter();
    } finally {
      this.env.close();
    }
  }

  #capture(): void {
    if (this.#episodeFrames >= this.#maxFrames) return;
    const frame = this.env.render();
    if (!frame) {
      throw new Error(
        `RecordVideo: render() returned no frame in episode ${this.#episode}; the env must render rgb_array frames`,
      );
    }
    this.#writerFor(frame).addFrame(frame);
    this.#episodeFrames++;
  }

  #writerFor(frame: RgbFrame): Mp4Writer {
    if (!this.#writer) {
      const name = this.#single ? this.#prefix : `${this.#prefix}-episode-${this.#episode}`;
      this.#writer = new Mp4Writer(`${this.videoFolder}/${name}.mp4`, {
        width: frame.width,
        height: frame.height,
        fps: this.#fps,
        crf: this.#crf,
        preset: this.#preset,
      });
    }
    return this.#writer;
  }

  #stopEpisode(): void {
    if (!this.#recording) return;
    this.#recording = false;
    if (!this.#single) this.#finishWriter();
  }

  #finishWriter(): void {
    const writer = this.#writer;
    if (!writer) return;
    this.#writer = undefined;
    const wrote = writer.frameCount > 0;
    writer.close();
    if (wrote) this.videoPaths.push(writer.path);
  }
}

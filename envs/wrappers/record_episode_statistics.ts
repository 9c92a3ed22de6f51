/**
 * Episode return, length and duration in `info.episode` (Gymnasium's `RecordEpisodeStatistics`).
 *
 * @module
 */

import { type Env, type ResetOptions, type ResetResult, type StepResult, Wrapper } from "../core.ts";

/** Options of `RecordEpisodeStatistics`. */
export interface RecordEpisodeStatisticsOptions {
  /** How many finished episodes `returnQueue`, `lengthQueue` and `timeQueue` keep (default 100). */
  bufferLength?: number;
  /** The info key the statistics go under (default `"episode"`). */
  statsKey?: string;
}

/** What `info.episode` holds on the last step of an episode. */
export interface EpisodeStatistics {
  /** The episode's return (sum of rewards). */
  r: number;
  /** The episode's length in steps. */
  l: number;
  /** Seconds since the episode's reset, rounded to microseconds. */
  t: number;
}

/**
 * On the step that ends an episode (terminated or truncated), adds `info.episode = { r, l, t }` and appends to the
 * recent-episode queues. Put it inside reward-changing wrappers to record the env's own return.
 *
 * @example
 * ```ts
 * import { RecordEpisodeStatistics, type EpisodeStatistics } from "./record_episode_statistics.ts";
 * import { CartPoleEnv } from "../classic/cartpole.ts";
 *
 * using env = new RecordEpisodeStatistics(new CartPoleEnv());
 * env.reset({ seed: 0 });
 * for (;;) {
 *   const [, , terminated, truncated, info] = env.step(1);
 *   if (terminated || truncated) {
 *     const { r, l } = info.episode as EpisodeStatistics;
 *     console.assert(r === l && env.episodeCount === 1);
 *     break;
 *   }
 * }
 * ```
 */
export class RecordEpisodeStatistics<O = unknown, A = unknown> extends Wrapper<O, A> {
  /** Returns of the last `bufferLength` episodes, oldest first. */
  readonly returnQueue: number[] = [];
  /** Lengths of the last `bufferLength` episodes, oldest first. */
  readonly lengthQueue: number[] = [];
  /** Durations (seconds) of the last `bufferLength` episodes, oldest first. */
  readonly timeQueue: number[] = [];
  /** Episodes finished since construction. */
  episodeCount = 0;
  readonly #bufferLength: number;
  readonly #statsKey: string;
  #return = 0;
  #length = 0;
  #start = performance.now();

  constructor(env: Env<O, A>, options: RecordEpisodeStatisticsOptions = {}) {
    super(env);
    this.#bufferLength = options.bufferLength ?? 100;
    this.#statsKey = options.statsKey ?? "episode";
    if (!Number.isInteger(this.#bufferLength) || this.#bufferLength < 1) {
      throw new RangeError(
        `RecordEpisodeStatistics: bufferLength must be a positive integer, got ${this.#bufferLength}`,
      );
    }
  }

  override reset(options?: ResetOptions): ResetResult<O> {
    const result = this.env.reset(options);
    this.#start = performance.now();
    this.#return = 0;
    this.#length = 0;
    return result;
  }

  override step(action: A): StepResult<O> {
    const result = this.env.step(action);
    this.#return += result[1];
    this.#length++;
    if (result[2] || result[3]) {
      const key = this.#statsKey;
      if (key in result[4]) {
        throw new Error(`RecordEpisodeStatistics: info already has a "${key}" key; pass another statsKey`);
      }
      const t = Math.round((performance.now() - this.#start) * 1000) / 1e6; // ms → s, to the microsecond
      const stats: EpisodeStatistics = { r: this.#return, l: this.#length, t };
      // A new info object: the env may reuse its own between steps.
      result[4] = { ...result[4], [key]: stats };
      push(this.returnQueue, stats.r, this.#bufferLength);
      push(this.lengthQueue, stats.l, this.#bufferLength);
      push(this.timeQueue, stats.t, this.#bufferLength);
      this.episodeCount++;
      this.#start = performance.now();
    }
    return result;
  }
}

function push(queue: number[], value: number, max: number): void {
  queue.push(value);
  if (queue.length > max) queue.shift();
}

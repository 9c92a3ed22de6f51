/**
 * `SyncVectorEnv`: the vector env API stepping every env in the calling thread.
 *
 * @module
 */

import type { Env } from "../core.ts";
import { make, type MakeOptions } from "../registry.ts";
import type { Space } from "../spaces.ts";
import { EnvBlock, envError } from "./_block.ts";
import {
  allocateBuffers,
  batchSpace,
  copyActions,
  describeSpace,
  sameSpace,
  type VectorBuffers,
  type VectorShape,
  vectorShape,
} from "./_layout.ts";
import type { VectorEnv, VectorInfo, VectorResetOptions, VectorResetResult, VectorStepResult } from "./vector_env.ts";

/**
 * Builds one env of a vector env.
 *
 * @example
 * ```ts
 * import { CartPoleEnv } from "../classic/cartpole.ts";
 * import { TimeLimit } from "../wrappers/time_limit.ts";
 * import { type EnvFactory, SyncVectorEnv } from "./sync_vector_env.ts";
 *
 * const factory: EnvFactory = () => new TimeLimit(new CartPoleEnv(), { maxEpisodeSteps: 100 });
 * using envs = new SyncVectorEnv([factory, factory]);
 * console.assert(envs.numEnvs === 2);
 * ```
 */
export type EnvFactory = () => Env<unknown, unknown>;

/** Options of `SyncVectorEnv`. */
export interface SyncVectorEnvOptions extends MakeOptions {
  /** Number of envs; required when the envs are given by id, must match the factories' count otherwise. */
  numEnvs?: number;
  /** Allocate the buffers in a `SharedArrayBuffer` (to hand them to Workers yourself); default false. */
  shared?: boolean;
}

/**
 * Steps `numEnvs` envs one after another in the calling thread. Same API, buffers layout, autoreset and seeding as
 * `WorkerVectorEnv`, so both give identical results for the same seeds and actions; use it for tests, debugging and
 * envs so cheap that Workers do not pay off. `reset`/`recv`/`step` return Promises (the shared `VectorEnv`
 * interface); `resetSync`/`stepSync` do the same work without them.
 *
 * @example
 * ```ts
 * import "../classic/mod.ts"; // registers CartPole-v1
 * import { SyncVectorEnv } from "./sync_vector_env.ts";
 *
 * using envs = new SyncVectorEnv("CartPole-v1", { numEnvs: 3 });
 * envs.resetSync({ seed: 0 }); // env i is seeded with 0 + i
 * const [obs, rewards, terminated, truncated, infos] = envs.stepSync(Int32Array.of(0, 1, 0));
 * console.assert(obs.length === 3 * 4 && rewards[0] === 1);
 * for (let i = 0; i < envs.numEnvs; i++) {
 *   if (terminated[i] || truncated[i]) console.log(infos.episodeReturn[i], infos.finalObservation[i * 4]);
 * }
 * ```
 */
export class SyncVectorEnv implements VectorEnv {
  readonly numEnvs: number;
  readonly singleObservationSpace: Space<unknown>;
  readonly singleActionSpace: Space<unknown>;
  readonly buffers: VectorBuffers;
  /** The underlying buffer (shared when `options.shared`). */
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  readonly #shape: VectorShape;
  readonly #block: EnvBlock;
  readonly #infos: VectorInfo;
  readonly #stepResult: VectorStepResult;
  #observationSpace?: Space<unknown>;
  #actionSpace?: Space<unknown>;
  #state: "new" | "ready" | "sent" | "closed" = "new";

  /**
   * Builds the envs (closing those already built if one fails) and allocates the buffers.
   *
   * @param envs an env id for `make` (then `options.numEnvs` is required), or one factory per env.
   */
  constructor(envs: string | EnvFactory[], options: SyncVectorEnvOptions = {}) {
    const factories = typeof envs === "string" ? idFactories(envs, options) : envs;
    if (options.numEnvs !== undefined && options.numEnvs !== factories.length) {
      throw new RangeError(`SyncVectorEnv: numEnvs is ${options.numEnvs} but ${factories.length} factories were given`);
    }
    const built: Env<unknown, unknown>[] = [];
    try {
      for (const factory of factories) built.push(factory());
      if (built.length === 0) throw new RangeError("SyncVectorEnv: give at least one env");
      const obs = describeSpace(built[0].observationSpace, "observation");
      const act = describeSpace(built[0].actionSpace, "action");
      for (let i = 1; i < built.length; i++) {
        if (
          !sameSpace(obs, describeSpace(built[i].observationSpace, "observation")) ||
          !sameSpace(act, describeSpace(built[i].actionSpace, "action"))
        ) {
          throw new TypeError(
            `SyncVectorEnv: env ${i} has spaces ${built[i].observationSpace} / ${built[i].actionSpace}, env 0 has ` +
              `${built[0].observationSpace} / ${built[0].actionSpace}; all envs must share their spaces`,
          );
        }
      }
      this.#shape = vectorShape(built.length, built[0].observationSpace, built[0].actionSpace);
    } catch (e) {
      for (const env of built) env.close();
      throw e;
    }
    this.numEnvs = built.length;
    this.singleObservationSpace = built[0].observationSpace;
    this.singleActionSpace = built[0].actionSpace;
    const { buffer, views } = allocateBuffers(this.#shape, options.shared ?? false);
    this.buffer = buffer;
    this.buffers = views;
    this.#block = new EnvBlock(built, 0, this.#shape, views);
    this.#infos = {
      finalObservation: views.finalObservation,
      episodeReturn: views.episodeReturn,
      episodeLength: views.episodeLength,
    };
    this.#stepResult = [views.observations, views.rewards, views.terminated, views.truncated, this.#infos];
  }

  /** The envs, in order (for inspection; do not step them yourself). */
  get envs(): readonly Env<unknown, unknown>[] {
    return this.#block.envs;
  }

  get observationSpace(): Space<unknown> {
    return (this.#observationSpace ??= batchSpace(this.singleObservationSpace, this.numEnvs));
  }

  get actionSpace(): Space<unknown> {
    return (this.#actionSpace ??= batchSpace(this.singleActionSpace, this.numEnvs));
  }

  get closed(): boolean {
    return this.#state === "closed";
  }

  /** `reset()` without the Promise. */
  resetSync(options: VectorResetOptions = {}): VectorResetResult {
    this.#assertOpen("reset");
    if (this.#state === "sent") throw new Error("SyncVectorEnv: call recv() for the step in flight before reset()");
    this.#run(() => this.#block.reset(options.seed), "reset");
    this.#state = "ready";
    return [this.buffers.observations, this.#infos];
  }

  reset(options: VectorResetOptions = {}): Promise<VectorResetResult> {
    return attempt(() => this.resetSync(options));
  }

  send(actions?: ArrayLike<number>): void {
    this.#assertOpen("send");
    if (this.#state === "new") throw new Error("SyncVectorEnv: call reset() before step()");
    if (this.#state === "sent") throw new Error("SyncVectorEnv: call recv() for the step in flight before send()");
    copyActions(actions ?? this.buffers.actions, this.buffers.actions, this.singleActionSpace, this.#shape);
    this.#state = "sent";
  }

  /** `recv()` without the Promise. */
  recvSync(): VectorStepResult {
    this.#assertOpen("recv");
    if (this.#state !== "sent") throw new Error("SyncVectorEnv: call send(actions) before recv()");
    // Envs step here rather than in send() so that env errors surface from recv() in both backends.
    this.#run(() => this.#block.step(), "step");
    this.#state = "ready";
    return this.#stepResult;
  }

  recv(): Promise<VectorStepResult> {
    return attempt(() => this.recvSync());
  }

  /** `step()` without the Promise. */
  stepSync(actions?: ArrayLike<number>): VectorStepResult {
    this.send(actions);
    return this.recvSync();
  }

  step(actions?: ArrayLike<number>): Promise<VectorStepResult> {
    return attempt(() => this.stepSync(actions));
  }

  /** Closes every env; throws the first env's `close()` error, if any, after closing all of them. */
  close(): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    const failure = this.#block.close();
    if (failure) throw envError(failure.index, "close", failure.error);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return attempt(() => this.close());
  }

  #run(work: () => void, phase: "reset" | "step"): void {
    try {
      work();
    } catch (e) {
      const index = this.#block.current;
      this.#state = "closed";
      this.#block.close(); // the failing env's error is the one to report
      throw envError(index, phase, e);
    }
  }

  #assertOpen(what: string): void {
    if (this.#state === "closed") throw new Error(`SyncVectorEnv: ${what}() after close()`);
  }
}

function idFactories(id: string, options: SyncVectorEnvOptions): EnvFactory[] {
  const n = options.numEnvs;
  if (n === undefined) throw new TypeError(`SyncVectorEnv: pass options.numEnvs with an env id ("${id}")`);
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`SyncVectorEnv: numEnvs must be a positive integer, got ${n}`);
  }
  const makeOptions: MakeOptions = { kwargs: options.kwargs, maxEpisodeSteps: options.maxEpisodeSteps };
  return Array.from({ length: n }, () => () => make(id, makeOptions));
}

/** Runs `work` and turns its result or exception into a Promise. */
function attempt<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (e) {
    return Promise.reject(e);
  }
}

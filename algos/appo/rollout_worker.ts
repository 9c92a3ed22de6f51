/**
 * The rollout worker role: steps a few envs, split into groups for double buffering (while one group steps, the
 * other waits for its actions), and writes observations, rewards, done flags and episode stats straight into the
 * shared rollout buffer. Per step it only flips a group's state word with `Atomics` (no postMessage).
 *
 * The same `RolloutWorker` object is driven by `serveRolloutWorker` inside a Deno Worker, or called directly by the
 * serial runner on the main thread.
 *
 * @module
 */

import type { Env, StepResult } from "../../envs/core.ts";
import { make } from "../../envs/registry.ts";

/** Sizes that fix the rollout buffer layout. */
export interface RolloutLayout {
  numWorkers: number;
  envsPerWorker: number;
  /** Groups per worker (2 = double buffering; 1 when a worker has a single env). */
  numSplits: number;
  obsSize: number;
  obsDtype: "uint8" | "float32";
  /** Integers per action (1 for Discrete, n for MultiDiscrete). */
  actSize: number;
}

/** Group states (one Int32 per group). */
export const GROUP_WORKER = 0, GROUP_READY = 1, GROUP_ACTIONS = 2, GROUP_STOP = 3;
/** Worker states (one Int32 per worker). */
export const WORKER_STARTING = 0, WORKER_RUNNING = 1, WORKER_CRASHED = 2, WORKER_CLOSED = 3;
/** Int32 stride of each state word, so that words of different threads sit on different cache lines. */
const STRIDE = 16;
/** Bytes of each worker's error area. */
export const ERROR_BYTES = 8192;

/** Views of the rollout buffer. Env `i` of the whole run is worker `floor(i / envsPerWorker)`'s env. */
export interface RolloutBuffers {
  readonly layout: RolloutLayout;
  readonly buffer: SharedArrayBuffer | ArrayBuffer;
  /** `[numEnvs, obsSize]`: the observation each env is in now. */
  readonly obs: Uint8Array | Float32Array;
  /** `[numEnvs, actSize]`: written by inference, read by the worker. */
  readonly actions: Int32Array;
  /** Reward of each env's last step. */
  readonly rewards: Float32Array;
  /** `TERMINATED | TRUNCATED` bits of each env's last step (the current observation starts a new episode). */
  readonly dones: Uint8Array;
  /** Return and length of the episode that just ended (valid where `dones` is set). */
  readonly episodeReturn: Float32Array;
  readonly episodeLength: Int32Array;
  /** State words: `[0]` counts group hand-overs to inference (it waits on it); groups and workers follow. */
  readonly ints: Int32Array;
  /** One error area per worker (JSON of the error that crashed it). */
  readonly errors: Uint8Array;
}

/** Int32 index of group `k`'s state word. */
export function groupIndex(k: number): number {
  return STRIDE * (1 + k);
}

/** Int32 index of worker `w`'s state word. */
export function workerIndex(layout: RolloutLayout, w: number): number {
  return STRIDE * (1 + layout.numWorkers * layout.numSplits + w);
}

/** Int32 index of the counter inference waits on. */
export const READY_COUNTER = 0;
/** Int32 index of the published policy version (the learner stores it after each optimizer step). */
export const POLICY_VERSION = 1;

/** First env (within the worker) and env count of each group of a worker. */
export function groupRanges(layout: RolloutLayout): { start: number; count: number }[] {
  const E = layout.envsPerWorker, G = layout.numSplits, out = [];
  let start = 0;
  for (let g = 0; g < G; g++) {
    const count = Math.floor(E / G) + (g < E % G ? 1 : 0);
    out.push({ start, count });
    start += count;
  }
  return out;
}

function byteOffsets(l: RolloutLayout): Record<string, number> {
  const N = l.numWorkers * l.envsPerWorker;
  const align = (n: number) => Math.ceil(n / 64) * 64;
  const parts: [string, number][] = [
    ["obs", N * l.obsSize * (l.obsDtype === "uint8" ? 1 : 4)],
    ["actions", N * l.actSize * 4],
    ["rewards", N * 4],
    ["dones", N],
    ["episodeReturn", N * 4],
    ["episodeLength", N * 4],
    ["ints", 4 * STRIDE * (2 + l.numWorkers * (l.numSplits + 1))],
    ["errors", l.numWorkers * ERROR_BYTES],
  ];
  const out: Record<string, number> = {};
  let at = 0;
  for (const [name, bytes] of parts) {
    out[name] = at;
    at += align(bytes);
  }
  out.byteLength = at;
  return out;
}

/**
 * Allocates the rollout buffer (a `SharedArrayBuffer` unless `shared` is false).
 *
 * @example
 * ```ts
 * import { allocateRolloutBuffers } from "./rollout_worker.ts";
 * const b = allocateRolloutBuffers({
 *   numWorkers: 2, envsPerWorker: 4, numSplits: 2, obsSize: 4, obsDtype: "float32", actSize: 1,
 * });
 * console.assert(b.rewards.length === 8);
 * ```
 */
export function allocateRolloutBuffers(layout: RolloutLayout, shared = true): RolloutBuffers {
  const n = byteOffsets(layout).byteLength;
  return viewRolloutBuffers(shared ? new SharedArrayBuffer(n) : new ArrayBuffer(n), layout);
}

/** Views of a buffer made by `allocateRolloutBuffers(layout)`. */
export function viewRolloutBuffers(buffer: SharedArrayBuffer | ArrayBuffer, layout: RolloutLayout): RolloutBuffers {
  const o = byteOffsets(layout), N = layout.numWorkers * layout.envsPerWorker;
  return {
    layout,
    buffer,
    obs: layout.obsDtype === "uint8"
      ? new Uint8Array(buffer, o.obs, N * layout.obsSize)
      : new Float32Array(buffer, o.obs, N * layout.obsSize),
    actions: new Int32Array(buffer, o.actions, N * layout.actSize),
    rewards: new Float32Array(buffer, o.rewards, N),
    dones: new Uint8Array(buffer, o.dones, N),
    episodeReturn: new Float32Array(buffer, o.episodeReturn, N),
    episodeLength: new Int32Array(buffer, o.episodeLength, N),
    ints: new Int32Array(buffer, o.ints, STRIDE * (2 + layout.numWorkers * (layout.numSplits + 1))),
    errors: new Uint8Array(buffer, o.errors, layout.numWorkers * ERROR_BYTES),
  };
}

/** A seed per (run seed, env, episode): every episode is reset with its own seed, so an episode can be replayed. */
export function episodeSeed(seed: number, env: number, episode: number): number {
  let h = (seed >>> 0) ^ 0x9e3779b9;
  h = Math.imul(h ^ (env + 0x7f4a7c15), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13) ^ (episode * 0x27d4eb2d), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Options of `RolloutWorker`. */
export interface RolloutWorkerOptions {
  /** The worker's envs (`envsPerWorker` of them), in order. */
  envs: Env<unknown, unknown>[];
  /** Worker index. */
  worker: number;
  /** Views of the shared rollout buffer. */
  buffers: RolloutBuffers;
  /** Run seed; episode `k` of env `i` is reset with `episodeSeed(seed, i, k)`. */
  seed: number;
  /** Keep each env's actions since its episode began, so a checkpoint can replay the episode (serial runner). */
  recordHistory?: boolean;
}

/**
 * The rollout worker role. `start()` resets every env and hands every group to inference; `stepGroup(g)` steps
 * group `g` with the actions inference wrote and hands it back. Episodes end with same-step autoreset.
 *
 * @example
 * ```ts
 * import { make } from "../../envs/mod.ts";
 * import { allocateRolloutBuffers, GROUP_ACTIONS, groupIndex, RolloutWorker } from "./rollout_worker.ts";
 * const buffers = allocateRolloutBuffers({
 *   numWorkers: 1, envsPerWorker: 2, numSplits: 2, obsSize: 4, obsDtype: "float32", actSize: 1,
 * });
 * const worker = new RolloutWorker({ envs: [make("CartPole-v1"), make("CartPole-v1")], worker: 0, buffers, seed: 1 });
 * worker.start();
 * buffers.actions[0] = 1;
 * Atomics.store(buffers.ints, groupIndex(0), GROUP_ACTIONS);
 * worker.stepGroup(0); // env 0 stepped; group 0 is ready again
 * worker.close();
 * ```
 */
export class RolloutWorker {
  readonly envs: Env<unknown, unknown>[];
  readonly worker: number;
  readonly buffers: RolloutBuffers;
  readonly seed: number;
  /** Episodes begun per env of this worker. */
  readonly episodes: Int32Array;
  /** Actions since each env's episode began, `actSize` integers per step (when `recordHistory`). */
  readonly history: number[][];
  readonly #record: boolean;
  readonly #first: number;
  readonly #groups: { start: number; count: number }[];
  readonly #returns: Float64Array;
  readonly #lengths: Int32Array;
  readonly #actionViews: Int32Array[] = [];

  constructor(options: RolloutWorkerOptions) {
    const l = options.buffers.layout;
    if (options.envs.length !== l.envsPerWorker) {
      throw new RangeError(`RolloutWorker: got ${options.envs.length} envs, the layout has ${l.envsPerWorker}`);
    }
    this.envs = options.envs;
    this.worker = options.worker;
    this.buffers = options.buffers;
    this.seed = options.seed;
    this.#record = options.recordHistory ?? false;
    this.#first = options.worker * l.envsPerWorker;
    this.#groups = groupRanges(l);
    this.episodes = new Int32Array(l.envsPerWorker);
    this.history = options.envs.map(() => []);
    this.#returns = new Float64Array(l.envsPerWorker);
    this.#lengths = new Int32Array(l.envsPerWorker);
    if (l.actSize > 1) {
      for (let j = 0; j < l.envsPerWorker; j++) {
        const at = (this.#first + j) * l.actSize;
        this.#actionViews.push(this.buffers.actions.subarray(at, at + l.actSize));
      }
    }
  }

  /** Global index of this worker's first env. */
  get firstEnv(): number {
    return this.#first;
  }

  /** Resets every env (each with its episode seed), then hands every group to inference. */
  start(): void {
    const b = this.buffers;
    for (let j = 0; j < this.envs.length; j++) {
      const i = this.#first + j;
      this.#resetEnv(j);
      b.rewards[i] = 0;
      b.dones[i] = 0;
    }
    for (let g = 0; g < this.#groups.length; g++) this.#handOver(g);
  }

  /**
   * Rebuilds each env's state from `episodes` and `history` (set them first) by resetting with the episode's seed
   * and replaying its actions; used when the serial runner resumes. Does not touch the shared buffer.
   */
  replay(): void {
    for (let j = 0; j < this.envs.length; j++) {
      const actions = this.history[j], k = this.buffers.layout.actSize;
      this.episodes[j]--; // #resetEnv counts the episode again
      this.#resetEnv(j, false);
      this.history[j] = actions;
      let ret = 0;
      for (let t = 0; t < actions.length; t += k) {
        const r = this.envs[j].step(k > 1 ? Int32Array.from(actions.slice(t, t + k)) : actions[t]);
        ret += r[1];
      }
      this.#returns[j] = ret;
      this.#lengths[j] = actions.length / k;
    }
  }

  /** Steps group `g` with the actions in the buffer and hands it back to inference. */
  stepGroup(g: number): void {
    const { start, count } = this.#groups[g];
    for (let j = start; j < start + count; j++) this.#store(j, this.envs[j].step(this.#action(j)));
    this.#handOver(g);
  }

  /** True when every env can step off-thread (`stepAsync`, e.g. `DoomEnv`): use `stepGroupAsync`. */
  get canStepAsync(): boolean {
    return this.envs.every((env) => typeof (env as Partial<AsyncStepper>).stepAsync === "function");
  }

  /**
   * `stepGroup` with the group's envs stepping at once (`stepAsync`): their engines are separate processes, so the
   * group takes about as long as its slowest env instead of the sum. Same results as `stepGroup`, in the same order.
   */
  async stepGroupAsync(g: number): Promise<void> {
    const { start, count } = this.#groups[g];
    const pending: Promise<StepResult<unknown>>[] = [];
    for (let j = start; j < start + count; j++) {
      pending.push((this.envs[j] as unknown as AsyncStepper).stepAsync(this.#action(j)));
    }
    // Every step must have returned before an error propagates: a closing env must not be inside its engine call.
    const settled = await Promise.allSettled(pending);
    for (const r of settled) if (r.status === "rejected") throw r.reason;
    for (let j = start; j < start + count; j++) {
      this.#store(j, (settled[j - start] as PromiseFulfilledResult<StepResult<unknown>>).value);
    }
    this.#handOver(g);
  }

  /** Env `j`'s action from the shared buffer (recorded when replaying is on). */
  #action(j: number): unknown {
    const b = this.buffers, i = this.#first + j, discrete = b.layout.actSize === 1;
    if (this.#record) {
      if (discrete) this.history[j].push(b.actions[i]);
      else this.history[j].push(...this.#actionViews[j]);
    }
    return discrete ? b.actions[i] : this.#actionViews[j];
  }

  /** Writes env `j`'s step result into the shared buffer, resetting the env when its episode ended. */
  #store(j: number, result: StepResult<unknown>): void {
    const b = this.buffers, i = this.#first + j;
    const reward = result[1];
    b.rewards[i] = reward;
    this.#returns[j] += reward;
    this.#lengths[j]++;
    if (result[2] || result[3]) {
      b.dones[i] = (result[2] ? 1 : 0) | (result[3] ? 2 : 0);
      b.episodeReturn[i] = this.#returns[j];
      b.episodeLength[i] = this.#lengths[j];
      this.#resetEnv(j);
    } else {
      b.dones[i] = 0;
      writeObs(b.obs, i, b.layout.obsSize, result[0]);
    }
  }

  /** Closes every env; returns the first error, if any. */
  close(): unknown {
    let first: unknown;
    for (const env of this.envs) {
      try {
        env.close();
      } catch (e) {
        first ??= e;
      }
    }
    return first;
  }

  #resetEnv(j: number, write = true): void {
    const i = this.#first + j;
    const [obs] = this.envs[j].reset({ seed: episodeSeed(this.seed, i, this.episodes[j]++) });
    this.#returns[j] = 0;
    this.#lengths[j] = 0;
    if (this.#record) this.history[j] = [];
    if (write) writeObs(this.buffers.obs, i, this.buffers.layout.obsSize, obs);
  }

  /** Publishes the group's writes to inference: the atomic store orders them before the state change. */
  #handOver(g: number): void {
    const ints = this.buffers.ints, k = this.worker * this.buffers.layout.numSplits + g;
    Atomics.store(ints, groupIndex(k), GROUP_READY);
    Atomics.add(ints, READY_COUNTER, 1);
    Atomics.notify(ints, READY_COUNTER);
  }
}

function writeObs(out: Uint8Array | Float32Array, i: number, size: number, obs: unknown): void {
  const o = obs as ArrayLike<number>;
  if (o === null || typeof o !== "object" || o.length !== size) {
    throw new TypeError(`rollout worker: observation must be an array of ${size} numbers`);
  }
  out.set(o, i * size);
}

/** An env that can step off the calling thread (`DoomEnv.stepAsync`). */
interface AsyncStepper {
  stepAsync(action: unknown): Promise<StepResult<unknown>>;
}

/** What the main thread posts to start a rollout Worker. */
export interface RolloutInitMessage {
  /** Registered env id. */
  envId: string;
  kwargs?: Record<string, unknown>;
  maxEpisodeSteps?: number;
  /** Modules imported before `make` (they register env ids). */
  envModules: string[];
  worker: number;
  layout: RolloutLayout;
  buffer: SharedArrayBuffer;
  seed: number;
}

/**
 * The Worker side: imports `envModules`, makes the envs, then serves groups until told to stop. Blocks the Worker's
 * thread in `Atomics.wait` between groups. An exception (env crash) is written to the worker's error area, its
 * state word becomes `WORKER_CRASHED`, and the Worker closes; the main thread restarts it.
 */
export async function serveRolloutWorker(message: RolloutInitMessage): Promise<void> {
  const buffers = viewRolloutBuffers(message.buffer, message.layout);
  const ints = buffers.ints, w = message.worker, l = message.layout;
  let role: RolloutWorker | undefined;
  try {
    for (const url of message.envModules) await import(url);
    const envs = [];
    for (let j = 0; j < l.envsPerWorker; j++) {
      envs.push(make(message.envId, { kwargs: message.kwargs, maxEpisodeSteps: message.maxEpisodeSteps }));
    }
    role = new RolloutWorker({ envs, worker: w, buffers, seed: message.seed });
    Atomics.store(ints, workerIndex(l, w), WORKER_RUNNING);
    role.start();
    const G = l.numSplits, async = role.canStepAsync;
    for (let g = 0;; g = (g + 1) % G) {
      const at = groupIndex(w * G + g);
      let state: number;
      while ((state = Atomics.load(ints, at)) === GROUP_READY) Atomics.wait(ints, at, GROUP_READY);
      if (state === GROUP_STOP) break;
      if (async) await role.stepGroupAsync(g);
      else role.stepGroup(g);
    }
    role.close();
    Atomics.store(ints, workerIndex(l, w), WORKER_CLOSED);
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    const text = JSON.stringify({ name: e.name, message: e.message, stack: e.stack?.slice(0, ERROR_BYTES / 2) });
    const area = buffers.errors.subarray(w * ERROR_BYTES, (w + 1) * ERROR_BYTES);
    area.fill(0);
    new TextEncoder().encodeInto(text.slice(0, ERROR_BYTES / 4), area);
    try {
      role?.close();
    } catch { /* the crash is the error to report */ }
    Atomics.store(ints, workerIndex(l, w), WORKER_CRASHED);
  }
  Atomics.add(ints, READY_COUNTER, 1);
  Atomics.notify(ints, READY_COUNTER);
}

/** Reads the error a crashed worker wrote. */
export function readWorkerError(buffers: RolloutBuffers, w: number): { name: string; message: string; stack?: string } {
  const area = buffers.errors.subarray(w * ERROR_BYTES, (w + 1) * ERROR_BYTES);
  const end = area.indexOf(0);
  try {
    return JSON.parse(new TextDecoder().decode(area.slice(0, end < 0 ? area.length : end)));
  } catch {
    return { name: "Error", message: "(no error record)" };
  }
}

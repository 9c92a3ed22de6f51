/**
 * Run plumbing shared by the learners (DQN, A2C, PPO, APPO): CleanRL run names, the run directory with its config
 * written atomically, a seedable generator whose state can be saved, training checkpoints (model + optimizer + step
 * counters + generator state in one safetensors file, written atomically), resume, and a Ctrl-C handler that asks the
 * training loop to stop cleanly (write a checkpoint, then return).
 *
 * Checkpoints are restart points: at each checkpoint boundary the learners reseed their envs from
 * `seed + globalStep` (the unfinished episodes are cut, like a truncation), in straight runs and resumed runs alike,
 * so resuming from a checkpoint reproduces the straight run bit for bit without saving env internals.
 *
 * @module
 */

import { type Module, Module as ModuleBase, type Optimizer } from "../models/mod.ts";
import { loadCheckpoint, saveCheckpoint, writeFileAtomic } from "../models/mod.ts";
import { Box, Discrete, makeVectorEnv, type VectorEnv } from "../envs/mod.ts";

// ---------------------------------------------------------------------------------------------------------------
// Run names and directories

/** Parts of a CleanRL run name. */
export interface RunNameParts {
  /** Env id, e.g. `CartPole-v1` (`/` is replaced, ids like `ALE/Pong-v5` stay one path segment). */
  envId: string;
  /** Experiment name, e.g. `ppo`. */
  expName: string;
  /** Seed of the run. */
  seed: number;
  /** Unix time in seconds (default: now). */
  time?: number;
}

/**
 * CleanRL's run name `env__exp__seed__time`.
 *
 * @example
 * ```ts
 * import { runName } from "./_training.ts";
 * runName({ envId: "CartPole-v1", expName: "ppo", seed: 1, time: 1700000000 }); // "CartPole-v1__ppo__1__1700000000"
 * ```
 */
export function runName(parts: RunNameParts): string {
  const time = parts.time ?? Math.floor(Date.now() / 1000);
  return `${parts.envId.replaceAll("/", "-")}__${parts.expName}__${parts.seed}__${time}`;
}

/** Serialize `value` as pretty JSON and write it atomically (temp file, fsync, rename). */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(value, null, 2) + "\n"));
}

/** File names inside a run directory. */
export const RUN_FILES = {
  /** The resolved options of the run. */
  config: "config.json",
  /** The latest training checkpoint (overwritten atomically). */
  checkpoint: "checkpoint.safetensors",
  /** The best policy so far by recent mean return (APPO's `saveBestEverySec`; model only). */
  best: "best.safetensors",
} as const;

/** Creates `runDir` and writes `config.json` into it atomically. */
export async function prepareRunDir(runDir: string, config: Record<string, unknown>): Promise<void> {
  await Deno.mkdir(runDir, { recursive: true });
  await writeJsonAtomic(`${runDir}/${RUN_FILES.config}`, jsonSafe(config));
}

/** Drops values JSON cannot represent (functions, env objects, abort signals) so a config can always be written. */
function jsonSafe(config: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    if (v === undefined || typeof v === "function") continue;
    if (v !== null && typeof v === "object" && !Array.isArray(v) && Object.getPrototypeOf(v) !== Object.prototype) {
      continue;
    }
    out[k] = v;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Seeded generator with saveable state

/**
 * xoshiro128** for the learners' own randomness (action sampling, ε-greedy, minibatch shuffles, replay sampling).
 * Unlike the models' `Rng` its state can be read and restored, which checkpoints need.
 *
 * @example
 * ```ts
 * import { TrainRng } from "./_training.ts";
 * const rng = new TrainRng(1);
 * const saved = rng.state();
 * const a = rng.uniform();
 * rng.setState(saved);
 * console.assert(rng.uniform() === a);
 * ```
 */
export class TrainRng {
  #s = new Uint32Array(4);

  constructor(seed = 0) {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** Next uint32. */
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextUint32() >>> 5, lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Shuffle `a` in place (Fisher–Yates). */
  shuffle(a: Int32Array | Uint32Array): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
  }

  /** A copy of the 128-bit state. */
  state(): number[] {
    return Array.from(this.#s);
  }

  /** Restore a state from `state()`. */
  setState(state: readonly number[]): void {
    if (state.length !== 4) throw new RangeError(`TrainRng.setState: need 4 uint32 words, got ${state.length}`);
    for (let i = 0; i < 4; i++) this.#s[i] = state[i] >>> 0;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * Sample one action per row from logits `[rows, n]` by inverse CDF of the softmax (stable: subtracts the row max).
 * Writes into `out` and returns it.
 */
export function sampleCategorical(logits: Float32Array, n: number, rng: TrainRng, out: Int32Array): Int32Array {
  const rows = logits.length / n;
  for (let r = 0; r < rows; r++) {
    const base = r * n;
    let max = -Infinity;
    for (let k = 0; k < n; k++) if (logits[base + k] > max) max = logits[base + k];
    let total = 0;
    for (let k = 0; k < n; k++) total += Math.exp(logits[base + k] - max);
    let u = rng.uniform() * total, k = 0;
    for (; k < n - 1; k++) {
      u -= Math.exp(logits[base + k] - max);
      if (u < 0) break;
    }
    out[r] = k;
  }
  return out;
}

/** Index of the largest value of each row of `[rows, n]` (first on ties), into `out`. */
export function argmaxRows(values: Float32Array, n: number, out: Int32Array): Int32Array {
  const rows = values.length / n;
  for (let r = 0; r < rows; r++) {
    let best = 0, bestV = values[r * n];
    for (let k = 1; k < n; k++) {
      if (values[r * n + k] > bestV) bestV = values[r * n + (best = k)];
    }
    out[r] = best;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Checkpoints

/** Several modules saved as one (`<name>.<param>`), e.g. a Q-network and its target network. */
export class ModuleGroup extends ModuleBase {
  constructor(parts: Record<string, Module>) {
    super();
    for (const [name, m] of Object.entries(parts)) this.registerModule(name, m);
  }
}

/** Everything a learner needs to continue exactly. */
export interface TrainingState {
  /** Model parameters (use `ModuleGroup` for several networks). */
  model: Module;
  /** Optimizer state (moments, step count, current learning rate). */
  optimizer: Optimizer;
  /** The learner's generator. */
  rng: TrainRng;
  /** Integer counters such as `globalStep` and `iteration`. */
  counters: Record<string, number>;
}

/**
 * Write a training checkpoint atomically: parameters and optimizer buffers as safetensors tensors, counters and the
 * generator state in the metadata.
 */
export async function saveTrainingCheckpoint(path: string, state: TrainingState): Promise<void> {
  await saveCheckpoint(path, {
    model: state.model,
    optimizer: state.optimizer,
    metadata: {
      counters: JSON.stringify(state.counters),
      rng_state: JSON.stringify(state.rng.state()),
    },
  });
}

/** The checkpoint kept for step `globalStep` with `keepCheckpoints`. */
export function stepCheckpointPath(runDir: string, globalStep: number): string {
  return `${runDir}/checkpoints/step_${globalStep}.safetensors`;
}

/**
 * Write the run's checkpoint (`runDir/checkpoint.safetensors`, atomically) and, with `keep`, a copy that later
 * checkpoints do not overwrite (`runDir/checkpoints/step_<globalStep>.safetensors`). Returns the latest's path.
 */
export async function writeRunCheckpoint(runDir: string, state: TrainingState, keep: boolean): Promise<string> {
  const path = `${runDir}/${RUN_FILES.checkpoint}`;
  await saveTrainingCheckpoint(path, state);
  if (keep) {
    await Deno.mkdir(`${runDir}/checkpoints`, { recursive: true });
    await saveTrainingCheckpoint(stepCheckpointPath(runDir, state.counters.globalStep), state);
  }
  return path;
}

/**
 * Load a checkpoint written by `saveTrainingCheckpoint` into `state` (model, optimizer, generator) and return its
 * counters. Shapes are checked before anything is modified.
 */
export async function loadTrainingCheckpoint(
  path: string,
  state: Omit<TrainingState, "counters">,
): Promise<Record<string, number>> {
  const meta = await loadCheckpoint(path, { model: state.model, optimizer: state.optimizer });
  if (meta.counters === undefined || meta.rng_state === undefined) {
    throw new Error(
      `checkpoint ${path} has no training state (metadata 'counters'/'rng_state'); was it written by a learner?`,
    );
  }
  state.rng.setState(JSON.parse(meta.rng_state));
  return JSON.parse(meta.counters);
}

/**
 * Resolve a `resume` option: a checkpoint file, or a run directory holding `checkpoint.safetensors`. Returns the
 * checkpoint path and the run directory to keep logging into.
 */
export async function resolveResume(resume: string): Promise<{ checkpoint: string; runDir: string }> {
  const stat = await Deno.stat(resume).catch(() => null);
  if (!stat) throw new Error(`resume: '${resume}' does not exist (give a run directory or a checkpoint file)`);
  if (stat.isDirectory) {
    const checkpoint = `${resume.replace(/\/+$/, "")}/${RUN_FILES.checkpoint}`;
    if (!(await Deno.stat(checkpoint).catch(() => null))) {
      throw new Error(`resume: run directory '${resume}' has no ${RUN_FILES.checkpoint}`);
    }
    return { checkpoint, runDir: resume.replace(/\/+$/, "") };
  }
  const slash = resume.lastIndexOf("/");
  return { checkpoint: resume, runDir: slash >= 0 ? resume.slice(0, slash) : "." };
}

// ---------------------------------------------------------------------------------------------------------------
// Clean stop on Ctrl-C

/** A stop request shared by the training loop and whoever may ask it to stop. */
export interface StopRequest extends Disposable {
  /** True once Ctrl-C was pressed or the abort signal fired. */
  readonly requested: boolean;
  /** Why the stop was requested (`"SIGINT"`, `"abort"`), if it was. */
  readonly reason: string | undefined;
}

/**
 * Listen for SIGINT (and an optional `AbortSignal`) and turn them into a stop request the loop polls; dispose to
 * remove the listener. The first Ctrl-C requests a clean stop; a second one exits at once with code 130.
 *
 * @example
 * ```ts
 * import { stopRequest } from "./_training.ts";
 * const controller = new AbortController();
 * using stop = stopRequest({ signal: controller.signal, sigint: false });
 * controller.abort();
 * console.assert(stop.requested && stop.reason === "abort");
 * ```
 */
export function stopRequest(options: { signal?: AbortSignal; sigint?: boolean } = {}): StopRequest {
  let reason: string | undefined = options.signal?.aborted ? "abort" : undefined;
  const onAbort = () => reason ??= "abort";
  options.signal?.addEventListener("abort", onAbort);
  let onSigint: (() => void) | undefined;
  if (options.sigint ?? true) {
    onSigint = () => {
      if (reason === "SIGINT") Deno.exit(130);
      reason = "SIGINT";
      console.error(
        "\nstop requested (Ctrl-C): finishing this iteration and writing a checkpoint; Ctrl-C again to quit now",
      );
    };
    try {
      Deno.addSignalListener("SIGINT", onSigint);
    } catch {
      onSigint = undefined; // no signal support here (e.g. Windows without console): rely on the abort signal
    }
  }
  return {
    get requested() {
      return reason !== undefined;
    },
    get reason() {
      return reason;
    },
    [Symbol.dispose]() {
      options.signal?.removeEventListener("abort", onAbort);
      if (onSigint) Deno.removeSignalListener("SIGINT", onSigint);
    },
  };
}

/**
 * Lets timers and signal handlers run (a macrotask turn). CPU-bound loops that only await resolved promises never
 * give Ctrl-C a chance; call this every so often (it costs well under a millisecond).
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

// ---------------------------------------------------------------------------------------------------------------
// Options every learner shares

/** Run options shared by every learner. */
export interface RunOptions {
  /** Registered env id. */
  envId: string;
  /** Seed for envs, weights and sampling. */
  seed: number;
  /** Env steps to train for (summed over envs). */
  totalTimesteps: number;
  /** Experiment name in the run name (default: the algorithm). */
  expName?: string;
  /** Parent directory of run directories. */
  runsDir: string;
  /** Explicit run directory (default: `runsDir/env__exp__seed__time`). */
  runDir?: string;
  /** Write a checkpoint every this many env steps (0: only the final one). */
  checkpointEvery: number;
  /** Also keep every checkpoint as `checkpoints/step_<globalStep>.safetensors` (default: only the latest). */
  keepCheckpoints: boolean;
  /** Continue from a checkpoint file or a run directory (logs keep going into that directory). */
  resume?: string;
  /** Write TensorBoard event files besides metrics.jsonl. */
  tensorboard: boolean;
  /** Handle Ctrl-C as a clean stop request. */
  handleSigint: boolean;
  /** Stop cleanly (checkpoint, then return) when this signal aborts. */
  signal?: AbortSignal;
  /** Called with one progress line per log interval (e.g. `console.log`). */
  log?: (line: string) => void;
}

/** What every learner returns. */
export interface TrainResult<P> {
  /** The trained policy. */
  policy: P;
  /** The run directory (config, metrics, checkpoint). */
  runDir: string;
  /** Env steps done in total (including those before a resume). */
  globalStep: number;
  /** Path of the final checkpoint. */
  checkpoint: string;
  /** Why training ended before `totalTimesteps`, if it did (`"SIGINT"`, `"abort"`). */
  stoppedBy?: string;
}

/** Resolve the run directory of a fresh or resumed run, write the config, and return the checkpoint to resume. */
export async function startRun(
  options: RunOptions,
  config: Record<string, unknown>,
): Promise<{ runDir: string; resumeFrom?: string }> {
  if (options.resume) {
    const { checkpoint, runDir } = await resolveResume(options.resume);
    const dir = options.runDir ?? runDir;
    await prepareRunDir(dir, config);
    return { runDir: dir, resumeFrom: checkpoint };
  }
  const runDir = options.runDir ??
    `${options.runsDir}/${runName({ envId: options.envId, expName: options.expName ?? "run", seed: options.seed })}`;
  await prepareRunDir(runDir, config);
  return { runDir };
}

/** Whether a checkpoint boundary was crossed going from `before` to `after` env steps. */
export function crossedBoundary(before: number, after: number, every: number): boolean {
  return every > 0 && Math.floor(before / every) !== Math.floor(after / every);
}

// ---------------------------------------------------------------------------------------------------------------
// Envs

/** Shapes a learner needs from a vector env with a Box observation space and a Discrete action space. */
export interface EnvShapes {
  /** Shape of one observation. */
  obsShape: number[];
  /** Whether observations are uint8 (frames). */
  uint8Obs: boolean;
  /** Number of discrete actions. */
  numActions: number;
}

/** Read observation and action shapes, refusing spaces the learners do not handle with a message saying which. */
export function envShapes(envs: VectorEnv, algo: string): EnvShapes {
  const obs = envs.singleObservationSpace, act = envs.singleActionSpace;
  if (!(act instanceof Discrete)) {
    throw new TypeError(`${algo}: needs a Discrete action space, got ${act}`);
  }
  if (!(obs instanceof Box)) throw new TypeError(`${algo}: needs a Box observation space, got ${obs}`);
  return { obsShape: [...obs.shape], uint8Obs: obs.dtype === "uint8", numActions: act.n };
}

/** Options for building a learner's vector env. */
export interface EnvOptions {
  /** Registered env id. */
  envId: string;
  /** Number of envs. */
  numEnvs: number;
  /** `"sync"`: envs in this thread; `"worker"`: Deno Workers. */
  vectorBackend: "sync" | "worker";
  /** A ready vector env to train on instead (e.g. Atari with its wrappers); the learner does not close it. */
  envs?: VectorEnv;
}

/** The vector env to train on and whether the learner owns (must close) it. */
export async function openEnvs(options: EnvOptions): Promise<{ envs: VectorEnv; owned: boolean }> {
  if (options.envs) return { envs: options.envs, owned: false };
  return { envs: await makeVectorEnv(options.envId, options.numEnvs, { backend: options.vectorBackend }), owned: true };
}

/** Lets a loop yield to the event loop (Ctrl-C, timers) at most every `intervalMs` of wall time. */
export function eventLoopTicker(intervalMs = 100): () => Promise<void> {
  let last = performance.now();
  return async () => {
    const now = performance.now();
    if (now - last < intervalMs) return;
    last = now;
    await yieldToEventLoop();
  };
}

/** Prints a progress line through `log` at most every `intervalMs` (and always when `force`). */
export function progressPrinter(log: ((line: string) => void) | undefined, intervalMs = 1000) {
  let last = -Infinity;
  return (line: () => string, force = false): void => {
    if (!log) return;
    const now = performance.now();
    if (!force && now - last < intervalMs) return;
    last = now;
    log(line());
  };
}

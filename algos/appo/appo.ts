/**
 * Asynchronous PPO in Sample Factory's architecture: rollout workers (Deno Workers) step envs into a shared buffer,
 * batched inference and the learner run on the main thread, complete trajectories flow through a shared ring.
 * `trainAppo` wires the roles; with `serial: true` the very same role code runs in one thread, deterministically.
 *
 * @module
 */

import type { Env, RgbFrame } from "../../envs/core.ts";
import { make } from "../../envs/registry.ts";
import { Box, Discrete, MultiDiscrete, type Space } from "../../envs/spaces.ts";
import {
  Adam,
  cpuInfo,
  loadSafetensors,
  type MatmulPrecision,
  noGrad,
  type SafeTensor,
  safeTensor,
  saveSafetensors,
  setBlasThreads,
  setMatmulPrecision,
  Tensor,
} from "../../models/mod.ts";
import { MetricsLogger } from "../logger.ts";
import { prepareRunDir, resolveResume, RUN_FILES, runName, stopRequest, yieldToEventLoop } from "../_training.ts";
import { Inference } from "./inference.ts";
import { Learner, type LearnerStats } from "./learner.ts";
import { allocateWeights, AppoModel, publishWeights, pullWeights } from "./model.ts";
import type { LearnerInitMessage, LearnerReply } from "./_learner_entry.ts";
import {
  allocateRolloutBuffers,
  GROUP_STOP,
  GROUP_WORKER,
  groupIndex,
  readWorkerError,
  READY_COUNTER,
  type RolloutBuffers,
  type RolloutInitMessage,
  type RolloutLayout,
  RolloutWorker,
  WORKER_CLOSED,
  WORKER_CRASHED,
  WORKER_STARTING,
  workerIndex,
} from "./rollout_worker.ts";
import { allocateTrajectoryBuffer, TrajectoryRing } from "./trajectory_buffer.ts";

/** Options of `trainAppo`; every field but `envId` has a default in `APPO_DEFAULTS`. */
export interface AppoOptions {
  /** Registered env id (Box observations; Discrete or MultiDiscrete actions). */
  envId: string;
  /** Keyword arguments for `make`. */
  envKwargs?: Record<string, unknown>;
  /** Episode step limit override for `make`. */
  maxEpisodeSteps?: number;
  /** Modules imported (here and in every worker) before `make`, so their env ids are registered (default: `envs/mod.ts`). */
  envModules: (string | URL)[];
  /**
   * Frames each env step counts for, for `totalFrames` and `charts/SPS`; 0 (default) reads the unwrapped env's
   * `frameskip` property (4 for the `doom_*` ids), else 1.
   */
  frameskip: number;
  /** Training budget in frames (env steps × frameskip). */
  totalFrames: number;
  /** Rollout worker count (Deno Workers; the serial runner makes the same number of in-thread roles). */
  numWorkers: number;
  /** Envs per rollout worker. */
  numEnvsPerWorker: number;
  /** Env groups per worker for double buffering (2: one group steps while the other waits for actions). */
  workerNumSplits: number;
  /** Rollout length T: steps per trajectory. */
  rollout: number;
  /** Samples per optimizer step (a multiple of `rollout`). */
  batchSize: number;
  /** Optimizer steps per batch. */
  numEpochs: number;
  /** Trajectories per gradient-accumulation chunk (inference is served between chunks); 0 = whole batch. */
  learnerChunk: number;
  /** Trajectory slots in the ring; 0 = `2 * batch trajectories + envs`. */
  numTrajectorySlots: number;
  /** Adam learning rate. */
  learningRate: number;
  /**
   * `"constant"` (Sample Factory's default) or `"linear"`: decayed to 0 over `totalFrames` (CleanRL's `anneal_lr`), which
   * settles an asynchronous run on its last policy instead of letting it drift.
   */
  lrSchedule: "constant" | "linear";
  /** Adam epsilon. */
  adamEps: number;
  /** Adam betas. */
  adamBetas: [number, number];
  /** Discount. */
  gamma: number;
  /** GAE λ. */
  gaeLambda: number;
  /** PPO ratio clip c: ratio kept in `[1/(1+c), 1+c]`. */
  clipRatio: number;
  /** Value clip around the behaviour value. */
  clipValue: number;
  /** Value loss weight. */
  valueLossCoeff: number;
  /** Exploration loss weight. */
  explorationLossCoeff: number;
  /** Exploration loss: entropy bonus or symmetric KL to the uniform policy. */
  explorationLoss: "entropy" | "symmetric_kl";
  /** Global gradient norm clip. */
  maxGradNorm: number;
  /** V-trace targets/advantages instead of GAE. */
  withVtrace: boolean;
  /** V-trace ρ̄. */
  vtraceRho: number;
  /** V-trace c̄. */
  vtraceC: number;
  /** Samples more than this many policy versions old are left out of the loss. */
  maxPolicyLag: number;
  /** Bootstrap time-limit truncations with `gamma * value` instead of treating them as terminal. */
  valueBootstrap: boolean;
  /** Normalize advantages. */
  normalizeAdvantage: boolean;
  /** Running mean/std normalization of vector observations (images are always scaled by 1/255). */
  normalizeInput: boolean;
  /** Value head on normalized returns. */
  normalizeReturns: boolean;
  /** Encoder; default by observation rank ("doom" for images). */
  encoder?: "mlp" | "doom";
  /** MLP encoder hidden sizes. */
  mlpLayers: number[];
  /** Encoder activation. */
  nonlinearity: "elu" | "relu" | "tanh";
  /** Layer initialization: Sample Factory's (gain 1 everywhere) or CleanRL's (see `AppoModelOptions`). */
  initialization: "sample_factory" | "cleanrl";
  /** GRU core size, 0 for none. */
  rnnSize: number;
  /** Seed of init, env episodes and action sampling. */
  seed: number;
  /** Run every role in this thread (deterministic; for debugging and tests). */
  serial: boolean;
  /** Run directory (metrics, checkpoints); default `runs/<env>__appo__<seed>__<unix time>` (CleanRL's run name). */
  runDir?: string;
  /** Seconds between metric log lines. */
  logIntervalS: number;
  /** Also print metrics to stderr. */
  print: boolean;
  /** Receives a progress line (frames, frames/s, recent return, ETA) at each log interval. */
  log?: (line: string) => void;
  /** Write TensorBoard event files. */
  tensorboard: boolean;
  /** Seconds between periodic checkpoints (0: only the final one). */
  checkpointIntervalS: number;
  /**
   * Seconds between checks for a new best policy, 0 for none (Sample Factory's `save_best_every_sec`): when the mean
   * return of the last `saveBestEpisodes` episodes beats every earlier one, the acting policy is written to
   * `<runDir>/best.safetensors` (model only; `loadAppoModel(runDir, { kind: "best" })` reads it).
   */
  saveBestEverySec: number;
  /** Frames before the first best policy is kept (Sample Factory's `save_best_after`). */
  saveBestAfter: number;
  /** Episodes averaged for the best-policy metric (Sample Factory's `stats_avg`; at most the 100 a checkpoint keeps). */
  saveBestEpisodes: number;
  /** Resume from a checkpoint file or a run directory (true: `<runDir>/checkpoint.safetensors`). */
  resume?: string | boolean;
  /** Stop cleanly (final checkpoint, then return) when this signal aborts. */
  signal?: AbortSignal;
  /** Stop early once the mean return of the last `stopAtReturnEpisodes` episodes reaches this. */
  stopAtReturn?: number;
  /**
   * Episodes averaged for `stopAtReturn` (default 20). A longer window (Gym's CartPole "solved" counts 100) stops on a
   * policy that has been good for a while rather than on a lucky streak of an asynchronous run that may still drift.
   */
  stopAtReturnEpisodes?: number;
  /**
   * OpenBLAS threads for inference and the learner (default 1). One thread: the rollout Workers already use the other
   * cores, and OpenBLAS's fork handler deadlocks when a Worker spawns an engine process (ViZDoom) while a
   * multi-threaded GEMM is in flight — measured: `doom_basic` hung at 0 frames with 2 threads.
   */
  blasThreads?: number;
  /**
   * Internal precision of the inference and learner GEMMs (`setMatmulPrecision`): `"highest"` float32, or `"medium"`,
   * bfloat16 products summed in float32 on AMX CPUs (the learner's step 1.3x faster; "highest" where AMX is missing).
   */
  matmulPrecision: MatmulPrecision;
  /** Stop cleanly (final checkpoint) on SIGINT. */
  handleSignals: boolean;
  /** Milliseconds to let workers close their envs before terminating them. */
  closeTimeoutMs: number;
  /** Give up (throw the last worker error) after this many rollout worker restarts. */
  maxWorkerRestarts: number;
  /** Train in a learner Worker that publishes weights through a shared buffer (inference stays on this thread). */
  learnerWorker: boolean;
}

/** Sample Factory's defaults with its Doom overrides (clip value 0.2, symmetric-KL exploration 0.001). */
export const APPO_DEFAULTS: Omit<AppoOptions, "envId"> = {
  envModules: [],
  frameskip: 0,
  totalFrames: 1_000_000,
  numWorkers: 2,
  numEnvsPerWorker: 4,
  workerNumSplits: 2,
  rollout: 32,
  batchSize: 1024,
  numEpochs: 1,
  learnerChunk: 8,
  numTrajectorySlots: 0,
  learningRate: 1e-4,
  lrSchedule: "constant",
  adamEps: 1e-6,
  adamBetas: [0.9, 0.999],
  gamma: 0.99,
  gaeLambda: 0.95,
  clipRatio: 0.1,
  clipValue: 0.2,
  valueLossCoeff: 0.5,
  explorationLossCoeff: 0.001,
  explorationLoss: "symmetric_kl",
  maxGradNorm: 4,
  withVtrace: false,
  vtraceRho: 1,
  vtraceC: 1,
  maxPolicyLag: 1000,
  valueBootstrap: false,
  normalizeAdvantage: true,
  normalizeInput: true,
  normalizeReturns: true,
  mlpLayers: [512, 512],
  nonlinearity: "elu",
  initialization: "sample_factory",
  rnnSize: 512,
  seed: 0,
  serial: false,
  logIntervalS: 5,
  print: false,
  tensorboard: true,
  checkpointIntervalS: 600,
  saveBestEverySec: 5,
  saveBestAfter: 100_000,
  saveBestEpisodes: 100,
  handleSignals: true,
  closeTimeoutMs: 5000,
  maxWorkerRestarts: 100,
  blasThreads: 1,
  matmulPrecision: "highest",
  learnerWorker: true,
};

/** What `trainAppo` returns. */
export interface AppoResult {
  /** The trained policy. */
  model: AppoModel;
  /** Frames trained on (env steps × frameskip). */
  frames: number;
  /** Optimizer steps (policy version). */
  version: number;
  /** Every finished episode's return, in order. */
  episodeReturns: number[];
  /** Run directory. */
  runDir: string;
  /** Path of the final checkpoint. */
  checkpoint: string;
  /** Path of the best policy (`saveBestEverySec`) and its mean return, when one was kept. */
  best?: { checkpoint: string; meanReturn: number; frames: number };
  /** Why training stopped: budget reached, `stopAtReturn` reached, or Ctrl-C / the abort signal. */
  stoppedBy: "frames" | "return" | "signal";
  /** Rollout worker restarts after crashes. */
  workerRestarts: number;
  /** Mean frames per second over the run. */
  fps: number;
}

/** Everything the roles share; built once per run. */
interface Run {
  o: AppoOptions;
  model: AppoModel;
  optimizer: Adam;
  rollout: RolloutBuffers;
  ring: TrajectoryRing;
  inference: Inference;
  learner: Learner;
  logger: MetricsLogger;
  runDir: string;
  frames: number;
  episodeReturns: number[];
  lastStats: LearnerStats | undefined;
  restarts: number;
  /** The best policy kept so far (`saveBestEverySec`); carried across resumes in the checkpoint. */
  best: { meanReturn: number; frames: number };
  /** Main-thread milliseconds in inference, learner and waiting since the last log line. */
  timing: { inference: number; learner: number; wait: number; batches: number; served: number };
  /** The in-thread rollout roles of the serial runner. */
  serialWorkers?: RolloutWorker[];
  /** Brings model, optimizer and learner counters up to date before a checkpoint (learner Worker). */
  sync?: () => Promise<void>;
}

/**
 * Trains a policy with APPO. Rollout workers are Deno Workers (`numWorkers` of them); inference and the learner share
 * the main thread. A worker whose env throws is restarted (logged as `perf/worker_restarts`); its partial
 * trajectories are dropped. Writes `metrics.jsonl` (+ TensorBoard), periodic and final checkpoints in `runDir`.
 *
 * @example
 * ```ts
 * import { trainAppo } from "./appo.ts";
 * // Type-checked only: a real run takes a while.
 * async function cartpole() {
 *   const { model, episodeReturns } = await trainAppo({
 *     envId: "CartPole-v1",
 *     envModules: [new URL("../../envs/classic/mod.ts", import.meta.url)],
 *     totalFrames: 200_000, rnnSize: 0, mlpLayers: [64, 64], batchSize: 512, learningRate: 1e-3,
 *   });
 *   return { model, episodeReturns };
 * }
 * ```
 */
export async function trainAppo(options: Partial<AppoOptions> & { envId: string }): Promise<AppoResult> {
  const o: AppoOptions = { ...APPO_DEFAULTS, ...options };
  if (o.batchSize % o.rollout !== 0) {
    throw new RangeError(`trainAppo: batchSize ${o.batchSize} is not a multiple of rollout ${o.rollout}`);
  }
  // Like the vector envs: with none named, Workers import every built-in env module so all registered ids work.
  const envModules = (o.envModules.length ? o.envModules : [new URL("../../envs/mod.ts", import.meta.url)]).map(String);
  for (const url of envModules) await import(url);
  // Spaces from a probe env built here (the workers build their own).
  const probe = make(o.envId, { kwargs: o.envKwargs, maxEpisodeSteps: o.maxEpisodeSteps });
  const obsSpace = probe.observationSpace, actSpace = probe.actionSpace;
  const envFrameskip = (probe.unwrapped as { frameskip?: unknown }).frameskip;
  probe.close();
  if (!o.frameskip) o.frameskip = typeof envFrameskip === "number" && envFrameskip > 0 ? envFrameskip : 1;
  if (!(obsSpace instanceof Box)) throw new TypeError(`trainAppo: observation space ${obsSpace} must be a Box`);
  const nvec = actionNvec(actSpace, `trainAppo: ${o.envId}`);
  if (o.blasThreads !== undefined) setBlasThreads(o.blasThreads);
  const precisionBefore = cpuInfo().matmulPrecision; // restored when the run ends: it is this thread's setting
  setMatmulPrecision(o.matmulPrecision);

  const numEnvs = o.numWorkers * o.numEnvsPerWorker;
  const batchTrajectories = o.batchSize / o.rollout;
  const numSplits = Math.min(o.workerNumSplits, o.numEnvsPerWorker);
  const numSlots = Math.max(o.numTrajectorySlots || 2 * batchTrajectories + numEnvs, batchTrajectories + numEnvs);
  let resumePath: string | undefined;
  let runDir = o.runDir ?? `runs/${runName({ envId: o.envId, expName: "appo", seed: o.seed })}`;
  if (o.resume === true) resumePath = `${runDir}/checkpoint.safetensors`;
  else if (o.resume) {
    const resolved = await resolveResume(o.resume);
    resumePath = resolved.checkpoint;
    runDir = o.runDir ?? resolved.runDir;
  }
  const model = buildModel(o, obsSpace, nvec);
  const optimizer = new Adam(model.parameters(), { lr: o.learningRate, eps: o.adamEps, betas: o.adamBetas });
  const layout: RolloutLayout = {
    numWorkers: o.numWorkers,
    envsPerWorker: o.numEnvsPerWorker,
    numSplits,
    obsSize: obsSpace.size,
    obsDtype: obsSpace.dtype,
    actSize: nvec.length,
  };
  const rollout = allocateRolloutBuffers(layout, !o.serial);
  const ring = new TrajectoryRing(allocateTrajectoryBuffer({
    numSlots,
    rollout: o.rollout,
    obsSize: obsSpace.size,
    obsDtype: obsSpace.dtype,
    actSize: nvec.length,
    hiddenSize: model.hiddenSize,
  }, !o.serial));
  const inference = new Inference({ model, rollout, ring, seed: o.seed });
  const learner = new Learner(model, optimizer, ring, {
    learningRate: o.learningRate,
    lrDecaySamples: o.lrSchedule === "linear" ? o.totalFrames / o.frameskip : 0,
    numEpochs: o.numEpochs,
    gamma: o.gamma,
    gaeLambda: o.gaeLambda,
    clipRatio: o.clipRatio,
    clipValue: o.clipValue,
    valueLossCoeff: o.valueLossCoeff,
    explorationLossCoeff: o.explorationLossCoeff,
    explorationLoss: o.explorationLoss,
    maxGradNorm: o.maxGradNorm,
    withVtrace: o.withVtrace,
    vtraceRho: o.vtraceRho,
    vtraceC: o.vtraceC,
    maxPolicyLag: o.maxPolicyLag,
    valueBootstrap: o.valueBootstrap,
    normalizeAdvantage: o.normalizeAdvantage,
    batchTrajectories,
    chunkTrajectories: o.learnerChunk > 0 ? Math.min(o.learnerChunk, batchTrajectories) : batchTrajectories,
  });
  const logger = new MetricsLogger(runDir, { tensorboard: o.tensorboard, print: o.print });
  const run: Run = {
    o,
    model,
    optimizer,
    rollout,
    ring,
    inference,
    learner,
    logger,
    runDir,
    frames: 0,
    episodeReturns: [],
    lastStats: undefined,
    restarts: 0,
    best: { meanReturn: -Infinity, frames: 0 },
    timing: { inference: 0, learner: 0, wait: 0, batches: 0, served: 0 },
  };
  let serialState: SerialState | undefined;
  if (resumePath) serialState = await loadAppoCheckpoint(resumePath, run);
  await prepareRunDir(runDir, { ...o, envModules });
  // A fresh run in a used directory: an earlier run's best policy would load against this run's config.json.
  if (!resumePath) await Deno.remove(`${runDir}/${RUN_FILES.best}`).catch(() => {});

  using stop = stopRequest({ signal: o.signal, sigint: o.handleSignals });
  const started = performance.now(), startFrames = run.frames;
  // The return stop looks at this run's episodes only: a resumed run asked for more frames must not stop at once on
  // the window its checkpoint carried (it did, and a caller looping on resume made no progress).
  const firstEpisode = run.episodeReturns.length;
  let stoppedBy: AppoResult["stoppedBy"] = "frames";
  const shouldStop = (): boolean => {
    if (stop.requested) stoppedBy = "signal";
    else if (
      o.stopAtReturn !== undefined &&
      recentMean(run.episodeReturns, o.stopAtReturnEpisodes ?? 20, firstEpisode) >= o.stopAtReturn
    ) {
      stoppedBy = "return";
    } else return run.frames >= o.totalFrames;
    return true;
  };
  try {
    if (o.serial) await runSerial(run, shouldStop, serialState);
    else await runAsync(run, shouldStop, envModules);
  } catch (error) {
    logger.close();
    throw error;
  } finally {
    setMatmulPrecision(precisionBefore);
  }
  const seconds = (performance.now() - started) / 1000;
  const fps = (run.frames - startFrames) / Math.max(seconds, 1e-9);
  const checkpoint = `${runDir}/checkpoint.safetensors`;
  await saveAppoCheckpoint(checkpoint, run);
  logger.log(run.frames, { "charts/SPS_mean": fps, "perf/worker_restarts": run.restarts });
  logger.close();
  const best = `${runDir}/${RUN_FILES.best}`;
  return {
    model,
    frames: run.frames,
    version: learner.version,
    episodeReturns: run.episodeReturns,
    runDir,
    checkpoint,
    best: run.best.meanReturn > -Infinity && (await Deno.stat(best).catch(() => null))
      ? { checkpoint: best, ...run.best }
      : undefined,
    stoppedBy,
    workerRestarts: run.restarts,
    fps,
  };
}

/** Mean of the last `n` of `xs`, counting only entries from index `from` on (-Infinity when there are fewer). */
function recentMean(xs: number[], n: number, from = 0): number {
  if (xs.length - from < n) return -Infinity;
  let s = 0;
  for (let i = xs.length - n; i < xs.length; i++) s += xs[i];
  return s / n;
}

/** `frames 1.2M/4M (30%) | 2,150 fps | return 5.1 (last 20) | ETA 21m40s` */
function progressLine(run: Run, fps: number): string {
  const { frames } = run, total = run.o.totalFrames;
  const last = run.episodeReturns.slice(-20);
  const ret = last.length ? (last.reduce((a, b) => a + b, 0) / last.length).toFixed(2) : "-";
  const eta = fps > 0 ? Math.max(0, (total - frames) / fps) : Infinity;
  const etaText = Number.isFinite(eta)
    ? `${Math.floor(eta / 60)}m${String(Math.floor(eta % 60)).padStart(2, "0")}s`
    : "-";
  const m = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : String(x));
  return `frames ${m(frames)}/${m(total)} (${((100 * frames) / total).toFixed(0)}%) | ${fps.toFixed(0)} fps | ` +
    `return ${ret} (last ${last.length}) | v${run.learner.version} | ETA ${etaText}`;
}

/** Periodic logging and checkpointing shared by both runners. */
function makeReporter(run: Run): { learned(stats: LearnerStats | undefined): void; tick(): Promise<void> } {
  let lastLog = performance.now(), lastFrames = run.frames, lastCheckpoint = performance.now();
  let lastBest = performance.now();
  let pending: number[] = [];
  return {
    learned(stats) {
      if (stats) run.lastStats = stats;
    },
    async tick() {
      const inf = run.inference;
      for (const e of inf.episodes) {
        run.episodeReturns.push(e.return);
        pending.push(e.return, e.length);
      }
      inf.episodes.length = 0;
      const now = performance.now();
      if (now - lastLog >= run.o.logIntervalS * 1000) {
        const metrics: Record<string, number> = {
          "charts/SPS": (run.frames - lastFrames) / ((now - lastLog) / 1000),
          "charts/policy_version": run.learner.version,
          "perf/worker_restarts": run.restarts,
          // Where the main thread's time went (fractions of the interval).
          "perf/inference_fraction": run.timing.inference / (now - lastLog),
          "perf/learner_fraction": run.timing.learner / (now - lastLog),
          "perf/wait_fraction": run.timing.wait / (now - lastLog),
          "perf/inference_batch": run.timing.served / Math.max(1, run.timing.batches),
          ...run.lastStats,
        };
        if (pending.length) {
          let r = 0, l = 0;
          for (let i = 0; i < pending.length; i += 2) {
            r += pending[i];
            l += pending[i + 1];
          }
          metrics["charts/episodic_return"] = r / (pending.length / 2);
          metrics["charts/episodic_length"] = l / (pending.length / 2);
          pending = [];
        }
        run.logger.log(run.frames, metrics);
        run.o.log?.(progressLine(run, metrics["charts/SPS"]));
        run.timing = { inference: 0, learner: 0, wait: 0, batches: 0, served: 0 };
        lastLog = now;
        lastFrames = run.frames;
      }
      const { saveBestEverySec, saveBestAfter, saveBestEpisodes } = run.o;
      if (saveBestEverySec > 0 && run.frames >= saveBestAfter && now - lastBest >= saveBestEverySec * 1000) {
        lastBest = now;
        const meanReturn = recentMean(run.episodeReturns, saveBestEpisodes);
        if (meanReturn > run.best.meanReturn) {
          // The acting policy: the weights inference holds now, as Sample Factory saves the learner's current ones.
          run.best = { meanReturn, frames: run.frames };
          await saveBestPolicy(run);
        }
      }
      if (run.o.checkpointIntervalS > 0 && now - lastCheckpoint >= run.o.checkpointIntervalS * 1000) {
        await run.sync?.();
        await saveAppoCheckpoint(`${run.runDir}/checkpoint.safetensors`, run);
        lastCheckpoint = performance.now();
      }
    },
  };
}

/** One thread: step every group that has actions, run inference on every ready group, train every full batch. */
async function runSerial(run: Run, shouldStop: () => boolean, state: SerialState | undefined): Promise<void> {
  const { o, rollout, inference, learner } = run;
  const workers: RolloutWorker[] = [];
  for (let w = 0; w < o.numWorkers; w++) {
    const envs: Env<unknown, unknown>[] = [];
    for (let j = 0; j < o.numEnvsPerWorker; j++) {
      envs.push(make(o.envId, { kwargs: o.envKwargs, maxEpisodeSteps: o.maxEpisodeSteps }));
    }
    workers.push(new RolloutWorker({ envs, worker: w, buffers: rollout, seed: o.seed, recordHistory: true }));
  }
  run.serialWorkers = workers;
  try {
    if (state) {
      for (const [w, worker] of workers.entries()) {
        worker.episodes.set(state.episodes[w]);
        for (let j = 0; j < worker.envs.length; j++) worker.history[j] = state.history[w][j];
        worker.replay();
      }
    } else for (const worker of workers) worker.start();
    const reporter = makeReporter(run);
    const G = rollout.layout.numSplits;
    let lastYield = performance.now();
    while (!shouldStop()) {
      for (let k = 0; k < o.numWorkers * G; k++) {
        if (Atomics.load(rollout.ints, groupIndex(k)) === 2) workers[Math.floor(k / G)].stepGroup(k % G);
      }
      const before = inference.envSteps;
      inference.run(inference.readyGroups());
      run.frames += (inference.envSteps - before) * o.frameskip;
      while (learner.hasWork()) {
        reporter.learned(learner.trainBatch());
        inference.version = learner.version;
      }
      await reporter.tick();
      if (performance.now() - lastYield > 100) {
        await yieldToEventLoop(); // lets SIGINT and timers through
        lastYield = performance.now();
      }
    }
    await reporter.tick();
  } finally {
    for (const w of workers) w.close();
  }
}

/** Rollout Workers plus inference and learner interleaved on this thread. */
async function runAsync(run: Run, shouldStop: () => boolean, envModules: string[]): Promise<void> {
  const { o, rollout, inference, learner } = run;
  const ints = rollout.ints, G = rollout.layout.numSplits;
  const workers: (Worker | undefined)[] = new Array(o.numWorkers);
  const failed = new Uint8Array(o.numWorkers);
  const spawn = (w: number) => {
    Atomics.store(ints, workerIndex(rollout.layout, w), WORKER_STARTING);
    for (let g = 0; g < G; g++) Atomics.store(ints, groupIndex(w * G + g), GROUP_WORKER);
    const worker = new Worker(new URL("./_rollout_entry.ts", import.meta.url), { type: "module" });
    worker.onerror = (event) => {
      event.preventDefault();
      failed[w] = 1;
      Atomics.add(ints, READY_COUNTER, 1);
      Atomics.notify(ints, READY_COUNTER);
    };
    const message: RolloutInitMessage = {
      envId: o.envId,
      kwargs: o.envKwargs,
      maxEpisodeSteps: o.maxEpisodeSteps,
      envModules,
      worker: w,
      layout: rollout.layout,
      buffer: rollout.buffer as SharedArrayBuffer,
      // A restarted worker must not replay the episodes its predecessor already played.
      seed: (o.seed + 0x9e3779b9 * run.restarts) >>> 0,
    };
    worker.postMessage(message);
    workers[w] = worker;
  };
  for (let w = 0; w < o.numWorkers; w++) spawn(w);
  const reporter = makeReporter(run);
  let lastYield = performance.now();
  const remote = o.learnerWorker ? startLearnerWorker(run, reporter) : undefined;
  try {
    while (!shouldStop()) {
      const seen = Atomics.load(ints, READY_COUNTER);
      if (remote) remote.poll();
      for (let w = 0; w < o.numWorkers; w++) {
        if (failed[w] || Atomics.load(ints, workerIndex(rollout.layout, w)) === WORKER_CRASHED) {
          const error = failed[w]
            ? { name: "Error", message: "uncaught error in the worker (see stderr)" }
            : readWorkerError(rollout, w);
          if (run.restarts >= o.maxWorkerRestarts) {
            throw new Error(
              `trainAppo: rollout worker ${w} crashed (${error.name}: ${error.message}) after ${run.restarts} ` +
                `restarts (maxWorkerRestarts); giving up`,
              { cause: error },
            );
          }
          console.error(`trainAppo: rollout worker ${w} crashed (${error.name}: ${error.message}); restarting it`);
          workers[w]?.terminate();
          failed[w] = 0;
          run.restarts++;
          run.logger.log(run.frames, { "perf/worker_restarts": run.restarts });
          inference.dropEnvs(w * o.numEnvsPerWorker, o.numEnvsPerWorker);
          spawn(w);
        }
      }
      const before = inference.envSteps;
      const t0 = performance.now();
      const served = inference.run(inference.readyGroups());
      const t1 = performance.now();
      run.timing.inference += t1 - t0;
      if (served) {
        run.timing.batches++;
        run.timing.served += served;
      }
      run.frames += (inference.envSteps - before) * o.frameskip;
      let trained = false;
      if (!remote && learner.hasWork()) {
        const stats = learner.trainChunk();
        run.timing.learner += performance.now() - t1;
        trained = true;
        if (stats) {
          reporter.learned(stats);
          inference.version = learner.version;
        }
      }
      if (served === 0 && !trained) {
        const t2 = performance.now();
        Atomics.wait(ints, READY_COUNTER, seen, 20);
        run.timing.wait += performance.now() - t2;
      }
      if (performance.now() - lastYield > 50) {
        await reporter.tick();
        await yieldToEventLoop(); // lets SIGINT, timers and worker errors through
        lastYield = performance.now();
      }
    }
    await reporter.tick();
  } finally {
    await remote?.stop();
    for (let k = 0; k < o.numWorkers * G; k++) {
      Atomics.store(ints, groupIndex(k), GROUP_STOP);
      Atomics.notify(ints, groupIndex(k));
    }
    const deadline = performance.now() + o.closeTimeoutMs;
    for (let w = 0; w < o.numWorkers; w++) {
      const at = workerIndex(rollout.layout, w);
      while (performance.now() < deadline) {
        const s = Atomics.load(ints, at);
        if (s === WORKER_CLOSED || s === WORKER_CRASHED || failed[w]) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      workers[w]?.terminate();
    }
  }
}

/**
 * Starts the learner Worker: it gets the current weights (shared buffer), optimizer state and counters, then trains
 * on the shared ring. `poll()` pulls newly published weights into the inference model; `stop()` asks for a final
 * snapshot (weights + optimizer state) so the checkpoint is current, then terminates the Worker.
 */
function startLearnerWorker(
  run: Run,
  reporter: { learned(stats: LearnerStats | undefined): void },
): { poll(): void; stop(): Promise<void> } {
  const { o, model, learner, inference, optimizer } = run;
  const weights = allocateWeights(model);
  publishWeights(model, weights, learner.version);
  let held = learner.version;
  const control = new Int32Array(new SharedArrayBuffer(64));
  const worker = new Worker(new URL("./_learner_entry.ts", import.meta.url), { type: "module" });
  let failure: Error | undefined;
  let waiting: ((m: LearnerReply) => void) | undefined;
  const apply = (m: { optimizer: import("../../models/mod.ts").OptimizerState; version: number; samples: number }) => {
    optimizer.loadStateDict(m.optimizer);
    held = pullWeights(model, weights, -1);
    learner.version = m.version;
    learner.samples = m.samples;
    inference.version = held;
  };
  worker.onmessage = (event: MessageEvent<LearnerReply>) => {
    const m = event.data;
    if (m.type === "stats") {
      reporter.learned(m.stats);
      learner.samples = m.samples;
    } else if (m.type === "error") {
      failure = Object.assign(new Error(`learner Worker: ${m.message}`), { stack: m.stack });
    } else if (waiting) waiting(m);
  };
  worker.onerror = (event) => {
    event.preventDefault();
    failure = new Error(`learner Worker: ${event.message}`);
  };
  const init: LearnerInitMessage = {
    type: "init",
    model: model.options,
    adam: { lr: optimizer.lr, eps: optimizer.eps, betas: [optimizer.beta1, optimizer.beta2] },
    learner: learner.options,
    trajLayout: run.ring.buf.layout,
    trajBuffer: run.ring.buf.buffer as SharedArrayBuffer,
    weights,
    control: control.buffer as SharedArrayBuffer,
    optimizer: optimizer.stateDict(),
    version: learner.version,
    samples: learner.samples,
    blasThreads: o.blasThreads,
    matmulPrecision: o.matmulPrecision,
  };
  worker.postMessage(init);
  const reply = (ask: () => void): Promise<LearnerReply | undefined> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), Math.max(o.closeTimeoutMs, 60_000));
      waiting = (m) => {
        clearTimeout(timer);
        waiting = undefined;
        resolve(m);
      };
      ask();
    });
  run.sync = async () => {
    const m = await reply(() => worker.postMessage({ type: "snapshot" }));
    if (m && m.type !== "stats" && m.type !== "error") apply(m);
  };
  return {
    poll() {
      if (failure) throw failure;
      const v = pullWeights(model, weights, held);
      if (v !== held) {
        held = v;
        inference.version = v;
        learner.version = v;
      }
    },
    async stop() {
      const m = await reply(() => Atomics.store(control, 0, 1));
      if (m && m.type !== "stats" && m.type !== "error") apply(m);
      worker.terminate();
      run.sync = undefined;
    },
  };
}

/** What the serial runner needs beyond the model to continue bit-identically. */
interface SerialState {
  episodes: Int32Array[];
  history: number[][][];
}

function bytesOf(view: ArrayBufferView): SafeTensor {
  return safeTensor(new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength)), [
    view.byteLength,
  ]);
}

/**
 * Choices per action dimension of the action spaces APPO supports: `[n]` for `Discrete(n)` (starting at 0), `nvec`
 * for `MultiDiscrete(nvec)` (one categorical head per dimension). Anything else is refused, naming the space.
 */
function actionNvec(space: Space<unknown>, who: string): number[] {
  if (space instanceof Discrete && space.start === 0) return [space.n];
  if (space instanceof MultiDiscrete) return Array.from(space.nvec);
  throw new TypeError(
    `${who} has the action space ${space}; APPO supports Discrete(n) starting at 0 and MultiDiscrete(nvec) ` +
      `(one categorical per dimension), not continuous (Box) or other spaces`,
  );
}

/** The policy network for `o`, the observation space and the action dimensions (training and `loadAppoModel`). */
function buildModel(o: AppoOptions, obsSpace: Box, nvec: readonly number[]): AppoModel {
  return new AppoModel({
    obsShape: obsSpace.shape,
    obsDtype: obsSpace.dtype,
    numActions: nvec.reduce((a, b) => a + b, 0),
    // Left unset for Discrete, so its model options (and the learner Worker's copy) stay as they were.
    ...(nvec.length > 1 ? { actionNvec: [...nvec] } : {}),
    encoder: o.encoder,
    mlpLayers: o.mlpLayers,
    nonlinearity: o.nonlinearity,
    initialization: o.initialization,
    rnnSize: o.rnnSize,
    normalizeInput: o.normalizeInput,
    normalizeReturns: o.normalizeReturns,
    seed: o.seed,
  });
}

/** Copies weights and normalizer statistics from checkpoint tensors into `model`, checking names and shapes first. */
function loadModelTensors(
  model: AppoModel,
  tensors: Record<string, SafeTensor>,
  metadata: Record<string, string>,
  path: string,
): void {
  const problems: string[] = [];
  for (const [name, p] of model.namedParameters()) {
    const t = tensors[`model.${name}`];
    if (!t) problems.push(`model.${name} [${p.shape}] is missing`);
    else if (t.shape.join(",") !== p.shape.join(",")) {
      problems.push(`model.${name} is [${t.shape}] in the file, [${p.shape}] in the model`);
    }
  }
  if (problems.length) throw new Error(`checkpoint ${path} does not fit this model: ${problems.join(", ")}`);
  for (const [name, p] of model.namedParameters()) p.data.set(tensors[`model.${name}`].data as Float32Array);
  const f64 = (name: string, into: Float64Array) => {
    const t = tensors[name];
    // F64; checkpoints written before safetensors here had F64 hold the float64 bytes as U8.
    if (t) into.set(t.data instanceof Float64Array ? t.data : new Float64Array((t.data as Uint8Array).slice().buffer));
  };
  if (model.obsRms) {
    f64("appo.obs_rms.mean", model.obsRms.mean);
    f64("appo.obs_rms.var", model.obsRms.var);
    model.obsRms.count = Number(metadata.obs_rms_count);
  }
  if (model.retRms) {
    f64("appo.ret_rms.mean", model.retRms.mean);
    f64("appo.ret_rms.var", model.retRms.var);
    model.retRms.count = Number(metadata.ret_rms_count);
  }
}

/** A policy loaded by `loadAppoModel`, with what it was trained on. */
export interface LoadedAppoModel {
  model: AppoModel;
  /** The run's resolved options (from `config.json`). */
  options: AppoOptions;
  /** Frames the checkpoint was trained on. */
  frames: number;
  /** The checkpoint file read. */
  checkpoint: string;
}

/**
 * Loads a trained APPO policy from a run directory or checkpoint file, rebuilding the network from the run's
 * `config.json` and the env's spaces (the env modules named in the config are imported first). From a run directory,
 * `kind` picks the latest checkpoint (default) or the best policy kept during training (Sample Factory's
 * `--load_checkpoint_kind`).
 *
 * @example
 * ```ts
 * import { evaluateAppo, loadAppoModel } from "./appo.ts";
 * // Type-checked only: needs a finished run.
 * async function enjoy(runDir: string) {
 *   const { model, options } = await loadAppoModel(runDir);
 *   return evaluateAppo(model, options.envId, { episodes: 10 });
 * }
 * ```
 */
export async function loadAppoModel(
  path: string,
  options: { kind?: "latest" | "best" } = {},
): Promise<LoadedAppoModel> {
  let { checkpoint, runDir } = await resolveResume(path);
  if (options.kind === "best" && (await Deno.stat(path)).isDirectory) {
    checkpoint = `${runDir}/${RUN_FILES.best}`;
    if (!(await Deno.stat(checkpoint).catch(() => null))) {
      throw new Error(
        `loadAppoModel: run directory '${runDir}' has no ${RUN_FILES.best} (kept once saveBestAfter frames and ` +
          `saveBestEpisodes episodes are in; load kind "latest" instead)`,
      );
    }
  }
  let config: Partial<AppoOptions> & { envId?: string };
  try {
    config = JSON.parse(await Deno.readTextFile(`${runDir}/${RUN_FILES.config}`));
  } catch (e) {
    throw new Error(
      `loadAppoModel: cannot read ${runDir}/${RUN_FILES.config} (written by trainAppo next to the checkpoint)`,
      {
        cause: e,
      },
    );
  }
  if (!config.envId) throw new Error(`loadAppoModel: ${runDir}/${RUN_FILES.config} names no envId`);
  const o: AppoOptions = { ...APPO_DEFAULTS, ...config, envId: config.envId };
  for (const url of o.envModules.map(String)) await import(url);
  const probe = make(o.envId, { kwargs: o.envKwargs, maxEpisodeSteps: o.maxEpisodeSteps });
  const obsSpace = probe.observationSpace, actSpace = probe.actionSpace;
  probe.close();
  if (!(obsSpace instanceof Box)) {
    throw new TypeError(`loadAppoModel: ${o.envId} has the observation space ${obsSpace}; APPO needs a Box`);
  }
  const model = buildModel(o, obsSpace, actionNvec(actSpace, `loadAppoModel: ${o.envId}`));
  const { tensors, metadata } = await loadSafetensors(checkpoint);
  loadModelTensors(model, tensors, metadata, checkpoint);
  return { model, options: o, frames: Number(metadata.frames ?? 0), checkpoint };
}

/**
 * Writes model, optimizer, normalizers and counters (as `models/checkpoint.ts` names them, so `loadCheckpoint` reads
 * the model back). The serial runner also stores its whole state — rollout and trajectory buffers, per-env
 * inference state, each env's episode seed and actions — so that a resumed run continues bit-identically.
 */
async function saveAppoCheckpoint(path: string, run: Run): Promise<void> {
  const tensors = policyTensors(run.model);
  const state = run.optimizer.stateDict();
  for (const [key, v] of Object.entries(state.buffers)) {
    tensors[`optim.${key}`] = safeTensor(v, [...run.optimizer.params[Number(key.split(".")[0])].shape]);
  }
  const { model, inference, learner } = run;
  const metadata: Record<string, string> = {
    format: "arcadia-checkpoint-v1",
    algo: "appo",
    env_id: run.o.envId,
    action_nvec: JSON.stringify(model.actionNvec),
    optim_step: String(state.step),
    optim_lr: String(run.optimizer.lr),
    global_step: String(run.frames),
    frames: String(run.frames),
    policy_version: String(learner.version),
    learner_samples: String(learner.samples),
    inference_batches: String(inference.batches),
    inference_env_steps: String(inference.envSteps),
    obs_rms_count: String(model.obsRms?.count ?? 0),
    ret_rms_count: String(model.retRms?.count ?? 0),
    worker_restarts: String(run.restarts),
    episode_returns: JSON.stringify(run.episodeReturns.slice(-100)),
    best_mean_return: String(run.best.meanReturn),
    best_frames: String(run.best.frames),
    serial: String(run.o.serial),
  };
  const workers = run.serialWorkers;
  if (run.o.serial && workers) {
    if (learner.busy) throw new Error("saveAppoCheckpoint: the serial runner saves between batches only");
    tensors["serial.rollout"] = bytesOf(new Uint8Array(run.rollout.buffer));
    tensors["serial.trajectories"] = bytesOf(new Uint8Array(run.ring.buf.buffer));
    tensors["serial.slot"] = safeTensor(inference.slot.slice(), [inference.slot.length]);
    tensors["serial.step"] = safeTensor(inference.step.slice(), [inference.step.length]);
    tensors["serial.fresh"] = safeTensor(inference.fresh.slice(), [inference.fresh.length]);
    if (inference.h.length) tensors["serial.h"] = safeTensor(inference.h.slice(), [inference.h.length]);
    metadata.serial_ring = JSON.stringify(run.ring.snapshot());
    metadata.serial_episodes = JSON.stringify(workers.map((w) => Array.from(w.episodes)));
    metadata.serial_history = JSON.stringify(workers.map((w) => w.history));
    metadata.inference_version = String(inference.version);
  }
  await saveSafetensors(path, tensors, { metadata });
}

/** The network and its normalizers: what acting needs (`loadModelTensors` reads them back). */
function policyTensors(model: AppoModel): Record<string, SafeTensor> {
  const tensors: Record<string, SafeTensor> = {};
  for (const [name, p] of model.namedParameters()) tensors[`model.${name}`] = safeTensor(p.data, [...p.shape]);
  if (model.obsRms) {
    tensors["appo.obs_rms.mean"] = safeTensor(model.obsRms.mean.slice(), [model.obsRms.mean.length]);
    tensors["appo.obs_rms.var"] = safeTensor(model.obsRms.var.slice(), [model.obsRms.var.length]);
  }
  if (model.retRms) {
    tensors["appo.ret_rms.mean"] = safeTensor(model.retRms.mean.slice(), [model.retRms.mean.length]);
    tensors["appo.ret_rms.var"] = safeTensor(model.retRms.var.slice(), [model.retRms.var.length]);
  }
  return tensors;
}

/** Writes the acting policy to `<runDir>/best.safetensors` (atomically, like every checkpoint) with its metric. */
async function saveBestPolicy(run: Run): Promise<void> {
  const { model } = run;
  await saveSafetensors(`${run.runDir}/${RUN_FILES.best}`, policyTensors(model), {
    metadata: {
      format: "arcadia-checkpoint-v1",
      algo: "appo",
      kind: "best",
      env_id: run.o.envId,
      action_nvec: JSON.stringify(model.actionNvec),
      frames: String(run.frames),
      global_step: String(run.frames),
      policy_version: String(run.inference.version),
      best_mean_return: String(run.best.meanReturn),
      best_episodes: String(run.o.saveBestEpisodes),
      obs_rms_count: String(model.obsRms?.count ?? 0),
      ret_rms_count: String(model.retRms?.count ?? 0),
    },
  });
}

/** Loads what `saveAppoCheckpoint` wrote into `run`; returns the serial runner's extra state, if any. */
async function loadAppoCheckpoint(path: string, run: Run): Promise<SerialState | undefined> {
  const { tensors, metadata } = await loadSafetensors(path);
  if (metadata.kind === "best") {
    throw new Error(
      `trainAppo: ${path} is a best-policy file (model only, no optimizer state); resume from the run's ` +
        `${RUN_FILES.checkpoint} instead`,
    );
  }
  loadModelTensors(run.model, tensors, metadata, path);
  const buffers: Record<string, Float32Array> = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (name.startsWith("optim.")) buffers[name.slice(6)] = (t.data as Float32Array).slice();
  }
  run.optimizer.loadStateDict({ step: Number(metadata.optim_step), buffers });
  run.optimizer.lr = Number(metadata.optim_lr);
  const { inference, learner } = run;
  run.frames = Number(metadata.frames);
  learner.version = Number(metadata.policy_version);
  learner.samples = Number(metadata.learner_samples);
  inference.version = learner.version;
  inference.batches = Number(metadata.inference_batches);
  inference.envSteps = Number(metadata.inference_env_steps);
  run.restarts = Number(metadata.worker_restarts);
  run.episodeReturns = JSON.parse(metadata.episode_returns ?? "[]");
  run.best = { meanReturn: Number(metadata.best_mean_return ?? -Infinity), frames: Number(metadata.best_frames ?? 0) };
  if (!run.o.serial || metadata.serial !== "true") return undefined;
  const copy = (name: string, into: ArrayBufferView) => {
    const t = tensors[name];
    if (!t) throw new Error(`resume: serial checkpoint ${path} lacks '${name}'`);
    new Uint8Array(into.buffer, into.byteOffset, into.byteLength).set(t.data as Uint8Array);
  };
  copy("serial.rollout", new Uint8Array(run.rollout.buffer));
  copy("serial.trajectories", new Uint8Array(run.ring.buf.buffer));
  inference.slot.set(tensors["serial.slot"].data as Int32Array);
  inference.step.set(tensors["serial.step"].data as Int32Array);
  inference.fresh.set(tensors["serial.fresh"].data as Uint8Array);
  if (inference.h.length) inference.h.set(tensors["serial.h"].data as Float32Array);
  inference.version = Number(metadata.inference_version);
  run.ring.restore(JSON.parse(metadata.serial_ring));
  return {
    episodes: (JSON.parse(metadata.serial_episodes) as number[][]).map((e) => Int32Array.from(e)),
    history: JSON.parse(metadata.serial_history),
  };
}

/** Options of `evaluateAppo`. */
export interface EvaluateAppoOptions {
  /** Episodes to play (all in parallel, one env each). */
  episodes?: number;
  /** Seed of the first episode (episode `i` uses `seed + i`). */
  seed?: number;
  /** Greedy actions (default true); otherwise sampled. */
  deterministic?: boolean;
  /** Keyword arguments for `make`. */
  envKwargs?: Record<string, unknown>;
  /** Episode step limit override for `make`. */
  maxEpisodeSteps?: number;
  /** Receives every rendered frame of the first episode (e.g. to write a video). */
  onFrame?: (frame: RgbFrame) => void;
}

/**
 * Plays `episodes` episodes with the policy in this thread (batched over the episodes) and returns their scores: the
 * summed rewards, or, where the env reports one at the episode's end, `info.true_objective` (the unshaped score of
 * a reward-shaped env such as `doom_health_gathering_supreme`, as Sample Factory's evaluation and the Hugging Face
 * course report it).
 *
 * @example
 * ```ts
 * import "../../envs/classic/mod.ts";
 * import { evaluateAppo } from "./appo.ts";
 * import { AppoModel } from "./model.ts";
 * const model = new AppoModel({ obsShape: [4], obsDtype: "float32", numActions: 2, mlpLayers: [8] });
 * const returns = evaluateAppo(model, "CartPole-v1", { episodes: 2, maxEpisodeSteps: 20 });
 * console.assert(returns.length === 2);
 * ```
 */
export function evaluateAppo(model: AppoModel, envId: string, options: EvaluateAppoOptions = {}): number[] {
  const n = options.episodes ?? 20, seed = options.seed ?? 10_000, greedy = options.deterministic ?? true;
  const envs = Array.from(
    { length: n },
    () => make(envId, { kwargs: options.envKwargs, maxEpisodeSteps: options.maxEpisodeSteps }),
  );
  const size = model.obsSize, H = model.hiddenSize;
  const isU8 = model.options.obsDtype === "uint8";
  const raw = isU8 ? new Uint8Array(n * size) : new Float32Array(n * size);
  const h = new Float32Array(n * H);
  const returns = new Array<number>(n).fill(0), done = new Array<boolean>(n).fill(false);
  const nvec = model.actionNvec, D = nvec.length, multi = new Int32Array(D);
  let rngState = seed >>> 0;
  try {
    envs.forEach((env, i) => raw.set(env.reset({ seed: seed + i })[0] as ArrayLike<number>, i * size));
    const record = () => {
      const frame = options.onFrame && !done[0] ? envs[0].render() : undefined;
      if (frame) options.onFrame!(frame);
    };
    record();
    while (done.some((d) => !d)) {
      const out = noGrad(() => model.forward(model.prepareObs(raw, n), n, H ? new Tensor(h, [n, H]) : undefined));
      if (H) h.set(out.h!.data);
      const logits = out.logits.data, A = out.logits.shape[1];
      for (let i = 0; i < n; i++) {
        if (done[i]) continue;
        // Per action dimension (one for Discrete), over its slice of the logits.
        for (let d = 0, o = i * A; d < D; o += nvec[d++]) {
          const k = nvec[d];
          let choice = 0;
          if (greedy) {
            for (let a = 1; a < k; a++) if (logits[o + a] > logits[o + choice]) choice = a;
          } else {
            let m = -Infinity, z = 0;
            for (let a = 0; a < k; a++) m = Math.max(m, logits[o + a]);
            for (let a = 0; a < k; a++) z += Math.exp(logits[o + a] - m);
            rngState = (Math.imul(rngState, 1664525) + 1013904223) >>> 0;
            let u = (rngState / 4294967296) * z;
            choice = k - 1;
            for (let a = 0; a < k - 1; a++) {
              if ((u -= Math.exp(logits[o + a] - m)) < 0) {
                choice = a;
                break;
              }
            }
          }
          multi[d] = choice;
        }
        const action = D > 1 ? multi.slice() : multi[0];
        const [obs, reward, terminated, truncated, info] = envs[i].step(action);
        returns[i] += reward;
        if (terminated || truncated) {
          done[i] = true;
          if (typeof info.true_objective === "number") returns[i] = info.true_objective;
        } else raw.set(obs as ArrayLike<number>, i * size);
        if (i === 0 && !done[0]) record();
      }
    }
  } finally {
    for (const env of envs) env.close();
  }
  return returns;
}

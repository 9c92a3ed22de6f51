/**
 * Deep Q-Network (Mnih et al. 2015) following CleanRL's `dqn.py`/`dqn_atari.py`, with the usual extensions as
 * options: Double DQN (van Hasselt et al. 2016), a dueling head (Wang et al. 2016), proportional prioritized replay
 * (Schaul et al. 2016, sum-tree, β annealed to 1) and n-step returns.
 *
 * Loop: ε-greedy actions (ε linear from `startE` to `endE` over `explorationFraction` of the run), every step into
 * the replay buffer (frames stored once), after `learningStarts` one Adam step every `trainFrequency` vector steps
 * on a sampled minibatch, and a hard (τ = 1) or soft target-network update every `targetNetworkFrequency` steps.
 *
 * Checkpoints hold both networks, the optimizer, counters and the generator. The replay buffer (it can be gigabytes)
 * is saved beside them only with `saveReplayBuffer`; a resume then continues bit-identically, and without it updates
 * wait until `learningStarts` fresh steps (at most the buffer capacity) are collected again.
 *
 * @module
 */

import {
  Adam,
  clipGradNorm,
  gather,
  huberLoss,
  loadSafetensors,
  mean,
  mseLoss,
  mul,
  noGrad,
  Rng,
  saveSafetensors,
  Tensor,
} from "../models/mod.ts";
import { MetricsLogger } from "./logger.ts";
import { ReplayBuffer } from "./replay_buffer.ts";
import {
  argmaxRows,
  crossedBoundary,
  type EnvOptions,
  envShapes,
  eventLoopTicker,
  loadTrainingCheckpoint,
  ModuleGroup,
  openEnvs,
  progressPrinter,
  RUN_FILES,
  type RunOptions,
  startRun,
  stepCheckpointPath,
  stopRequest,
  type TrainResult,
  TrainRng,
  writeRunCheckpoint,
} from "./_training.ts";
import { MlpQNetwork, NatureCnnQNetwork, obsTensor, type QNetwork } from "./policies.ts";

/** Options of `trainDqn`; every field has a default in `DQN_DEFAULTS`. */
export interface DqnOptions extends RunOptions, EnvOptions {
  /** Adam learning rate. */
  learningRate: number;
  /** Replay buffer capacity in transitions. */
  bufferSize: number;
  /** Refuse a replay buffer larger than this many bytes (default: the memory the OS reports available). */
  maxReplayBytes?: number;
  /**
   * Save the replay buffer with every checkpoint (`<checkpoint>.replay_buffer.safetensors`, written atomically;
   * Stable-Baselines3's `save_replay_buffer`), so a resume continues bit-identically instead of refilling it. Costs
   * the buffer's size on disk and its write time at each checkpoint.
   */
  saveReplayBuffer: boolean;
  /** Discount factor γ. */
  gamma: number;
  /** Target network update rate: 1 copies (hard update), less blends `τ·online + (1 − τ)·target`. */
  tau: number;
  /** Env steps between target network updates. */
  targetNetworkFrequency: number;
  /** Minibatch size. */
  batchSize: number;
  /** Initial ε of ε-greedy exploration. */
  startE: number;
  /** Final ε. */
  endE: number;
  /** Fraction of `totalTimesteps` over which ε decays linearly. */
  explorationFraction: number;
  /** Env steps before learning starts. */
  learningStarts: number;
  /** Vector steps between gradient steps. */
  trainFrequency: number;
  /** TD loss: `"mse"` (CleanRL) or `"huber"` (SB3, Nature DQN's clipped error). */
  loss: "mse" | "huber";
  /** Double DQN: the online network picks the next action, the target network values it. */
  doubleDqn: boolean;
  /** Dueling head `Q = V + A − mean(A)`. */
  dueling: boolean;
  /** Proportional prioritized replay exponent α (0: uniform replay). */
  prioritizedAlpha: number;
  /** Initial importance-sampling exponent β, annealed linearly to 1 over the run. */
  prioritizedBeta: number;
  /** Added to |TD error| to form priorities. */
  prioritizedEps: number;
  /** n of the n-step returns. */
  nStep: number;
  /** Frames per observation rebuilt from single stored frames (the leading axis of a stacked observation). */
  frameStack: number;
  /** Network: `"mlp"`, `"cnn"` (Nature CNN) or `"auto"` (CNN for 3-D observations). */
  policy: "auto" | "mlp" | "cnn";
  /** Hidden sizes of the MLP Q-network (CleanRL `dqn.py`: 120, 84). */
  hidden: number[];
  /** Maximum global gradient norm (0: no clipping; CleanRL does not clip). */
  maxGradNorm: number;
}

/** CleanRL `dqn_atari.py` defaults (use with an Atari vector env of one env with its wrappers, passed as `envs`). */
export const DQN_DEFAULTS: Readonly<DqnOptions> = Object.freeze({
  envId: "BreakoutNoFrameskip-v4",
  seed: 1,
  totalTimesteps: 10_000_000,
  expName: "dqn",
  runsDir: "runs",
  checkpointEvery: 0,
  keepCheckpoints: false,
  tensorboard: true,
  handleSigint: true,
  numEnvs: 1,
  vectorBackend: "sync" as const,
  learningRate: 1e-4,
  bufferSize: 1_000_000,
  saveReplayBuffer: false,
  gamma: 0.99,
  tau: 1,
  targetNetworkFrequency: 1000,
  batchSize: 32,
  startE: 1,
  endE: 0.01,
  explorationFraction: 0.1,
  learningStarts: 80_000,
  trainFrequency: 4,
  loss: "mse" as const,
  doubleDqn: false,
  dueling: false,
  prioritizedAlpha: 0,
  prioritizedBeta: 0.4,
  prioritizedEps: 1e-6,
  nStep: 1,
  frameStack: 4,
  policy: "auto" as const,
  hidden: [120, 84],
  maxGradNorm: 0,
});

/** CleanRL `dqn.py` (classic control) changes to `DQN_DEFAULTS`. */
export const DQN_CLASSIC_DEFAULTS: Readonly<Partial<DqnOptions>> = Object.freeze({
  envId: "CartPole-v1",
  totalTimesteps: 500_000,
  learningRate: 2.5e-4,
  bufferSize: 10_000,
  targetNetworkFrequency: 500,
  batchSize: 128,
  endE: 0.05,
  explorationFraction: 0.5,
  learningStarts: 10_000,
  trainFrequency: 10,
  frameStack: 1,
  policy: "mlp" as const,
});

/** `start + (end − start) · min(1, t / duration)`. */
function linear(start: number, end: number, duration: number, t: number): number {
  return start + (end - start) * Math.min(1, t / Math.max(1, duration));
}

/**
 * Train DQN. Returns the online Q-network; stops early (after a checkpoint) on Ctrl-C or `signal`.
 *
 * @example
 * ```ts
 * import { DQN_CLASSIC_DEFAULTS, trainDqn } from "./dqn.ts";
 * const { policy } = await trainDqn({
 *   ...DQN_CLASSIC_DEFAULTS, totalTimesteps: 300, learningStarts: 100, batchSize: 16, trainFrequency: 4,
 *   runsDir: await Deno.makeTempDir(), tensorboard: false, handleSigint: false,
 * });
 * console.assert(policy.numActions === 2);
 * ```
 */
export async function trainDqn(options: Partial<DqnOptions> = {}): Promise<TrainResult<QNetwork>> {
  const args: DqnOptions = { ...DQN_DEFAULTS, ...options };
  const N = args.numEnvs;
  const numIterations = Math.floor(args.totalTimesteps / N);

  const { envs, owned } = await openEnvs(args);
  try {
    const { obsShape, uint8Obs, numActions } = envShapes(envs, "dqn");
    const frameStack = obsShape.length >= 2 && obsShape[0] === args.frameStack ? args.frameStack : 1;
    // Size the replay buffer (and refuse one that does not fit) before any run files are written.
    const rb = new ReplayBuffer({
      capacity: args.bufferSize,
      numEnvs: N,
      obsShape,
      dtype: uint8Obs ? "uint8" : "float32",
      frameStack,
      nStep: args.nStep,
      gamma: args.gamma,
      prioritizedAlpha: args.prioritizedAlpha,
      maxBytes: args.maxReplayBytes,
    });
    const { runDir, resumeFrom } = await startRun(args, { algo: "dqn", ...args, replayBytes: rb.bytes });
    using logger = new MetricsLogger(runDir, { tensorboard: args.tensorboard });
    using stop = stopRequest({ signal: args.signal, sigint: args.handleSigint });

    const initRng = new Rng(args.seed);
    const useCnn = args.policy === "cnn" || (args.policy === "auto" && obsShape.length === 3);
    const makeQ = (): QNetwork =>
      useCnn
        ? new NatureCnnQNetwork(obsShape, numActions, { rng: initRng, dueling: args.dueling })
        : new MlpQNetwork(obsShape, numActions, { rng: initRng, dueling: args.dueling, hidden: args.hidden });
    const qNetwork = makeQ();
    const targetNetwork = makeQ();
    targetNetwork.copyFrom(qNetwork);
    const model = new ModuleGroup({ q: qNetwork, target: targetNetwork });
    const optimizer = new Adam(qNetwork.parameters(), { lr: args.learningRate });
    const rng = new TrainRng(args.seed);
    const checkpointPath = `${runDir}/${RUN_FILES.checkpoint}`;

    let globalStep = 0, iteration = 0, learningStartsAt = args.learningStarts;
    if (resumeFrom) {
      ({ globalStep, iteration } = await loadTrainingCheckpoint(resumeFrom, { model, optimizer, rng }));
      if (!(await loadReplayBuffer(rb, replayBufferPath(resumeFrom), globalStep))) {
        learningStartsAt = globalStep + Math.min(args.learningStarts, args.bufferSize);
      }
    }
    // The buffer first, the checkpoint second: a crash between them leaves a checkpoint whose step the newer buffer
    // does not match, and a resume then refills the buffer rather than mix the two.
    const checkpoint = async () => {
      if (args.saveReplayBuffer) {
        const metadata = { global_step: String(globalStep) };
        await saveSafetensors(replayBufferPath(checkpointPath), rb.state(), { metadata });
        if (args.keepCheckpoints) {
          await Deno.mkdir(`${runDir}/checkpoints`, { recursive: true });
          await saveSafetensors(replayBufferPath(stepCheckpointPath(runDir, globalStep)), rb.state(), { metadata });
        }
      }
      await writeRunCheckpoint(
        runDir,
        { model, optimizer, rng, counters: { globalStep, iteration } },
        args.keepCheckpoints,
      );
    };
    const [firstObs] = await envs.reset({ seed: args.seed + globalStep });
    rb.start(firstObs);

    const B = args.batchSize;
    const actions = new Int32Array(N);
    const random = new Uint8Array(N);
    const scratch = { buf: new Float32Array(0) };
    const targets = new Float32Array(B);
    const targetsT = new Tensor(targets, [B]);
    const actionIdx = new Float32Array(B);
    const actionIdxT = new Tensor(actionIdx, [B, 1]);
    const weightsT = new Tensor(new Float32Array(B), [B]);
    const nextActions = new Int32Array(B);
    const tdErrors = new Float32Array(B);
    const tick = eventLoopTicker();
    const progress = progressPrinter(args.log);
    const startTime = performance.now(), startStep = globalStep;
    let lastReturn = NaN, tdLoss = NaN, qMean = NaN;

    while (iteration < numIterations && !stop.requested) {
      iteration++;
      const stepBefore = globalStep;
      const epsilon = linear(args.startE, args.endE, args.explorationFraction * args.totalTimesteps, globalStep);
      const obs = envs.buffers.observations;
      // Draw the exploration coins first so the greedy forward pass is skipped when every env explores.
      let explore = 0;
      for (let i = 0; i < N; i++) if ((random[i] = rng.uniform() < epsilon ? 1 : 0)) explore++;
      if (explore < N) qNetwork.act(obs, actions, { deterministic: true });
      for (let i = 0; i < N; i++) if (random[i]) actions[i] = rng.int(numActions);

      const [nextObs, rewards, terminated, truncated, infos] = await envs.step(actions);
      globalStep += N;
      for (let i = 0; i < N; i++) {
        if (terminated[i] || truncated[i]) {
          lastReturn = infos.episodeReturn[i];
          logger.log(globalStep, {
            "charts/episodic_return": infos.episodeReturn[i],
            "charts/episodic_length": infos.episodeLength[i],
            "charts/epsilon": epsilon,
          });
        }
      }
      rb.add({ actions, rewards, terminated, truncated, nextObs, finalObs: infos.finalObservation });

      if (globalStep > learningStartsAt && iteration % args.trainFrequency === 0 && rb.size >= B) {
        const beta = linear(args.prioritizedBeta, 1, args.totalTimesteps, globalStep);
        const batch = rb.sample(B, rng, { beta });
        // Targets y = R^(n) + γ^m · Q_target(s', a'), a' = argmax of the online (Double DQN) or target network.
        noGrad(() => {
          const nextT = obsTensor(batch.nextObs, obsShape, scratch);
          const qTarget = targetNetwork.forward(nextT).data;
          if (args.doubleDqn) argmaxRows(qNetwork.forward(nextT).data, numActions, nextActions);
          else argmaxRows(qTarget, numActions, nextActions);
          for (let b = 0; b < B; b++) {
            targets[b] = batch.rewards[b] + batch.discounts[b] * qTarget[b * numActions + nextActions[b]];
          }
        });
        for (let b = 0; b < B; b++) actionIdx[b] = batch.actions[b];
        weightsT.data.set(batch.weights);
        const q = qNetwork.forward(new Tensor(batch.obs, [B, ...obsShape]));
        const qTaken = gather(q, 1, actionIdxT).reshape([B]);
        const perSample = args.loss === "huber"
          ? huberLoss(qTaken, targetsT, { reduction: "none" })
          : mseLoss(qTaken, targetsT, { reduction: "none" });
        const loss = args.prioritizedAlpha > 0 ? mean(mul(perSample, weightsT)) : mean(perSample);
        optimizer.zeroGrad();
        loss.backward();
        if (args.maxGradNorm > 0) clipGradNorm(qNetwork.parameters(), args.maxGradNorm);
        optimizer.step();
        if (args.prioritizedAlpha > 0) {
          for (let b = 0; b < B; b++) tdErrors[b] = Math.abs(qTaken.data[b] - targets[b]) + args.prioritizedEps;
          rb.updatePriorities(batch.indices, tdErrors);
        }
        tdLoss = loss.item();
        let s = 0;
        for (let b = 0; b < B; b++) s += qTaken.data[b];
        qMean = s / B;
        if (crossedBoundary(stepBefore, globalStep, 100 * args.trainFrequency * N)) {
          logger.log(globalStep, {
            "losses/td_loss": tdLoss,
            "losses/q_values": qMean,
            "charts/SPS": Math.round((globalStep - startStep) / ((performance.now() - startTime) / 1000)),
          });
        }
      }

      if (crossedBoundary(stepBefore, globalStep, args.targetNetworkFrequency)) {
        if (args.tau >= 1) targetNetwork.copyFrom(qNetwork);
        else softUpdate(targetNetwork, qNetwork, args.tau);
      }
      progress(() =>
        `dqn step ${globalStep}/${args.totalTimesteps} eps ${epsilon.toFixed(3)} return ${lastReturn.toFixed(1)} ` +
        `td_loss ${tdLoss.toFixed(4)} q ${qMean.toFixed(2)} SPS ${
          Math.round((globalStep - startStep) / ((performance.now() - startTime) / 1000))
        }`
      );
      if (crossedBoundary(stepBefore, globalStep, args.checkpointEvery) && iteration < numIterations) {
        await checkpoint();
        const [obs2] = await envs.reset({ seed: args.seed + globalStep });
        rb.start(obs2);
      }
      await tick();
    }

    await checkpoint();
    progress(() => `dqn done: ${globalStep} steps${stop.reason ? ` (stopped by ${stop.reason})` : ""}`, true);
    logger.flush();
    return { policy: qNetwork, runDir, globalStep, checkpoint: checkpointPath, stoppedBy: stop.reason };
  } finally {
    if (owned) envs.close();
  }
}

/** `target ← τ·online + (1 − τ)·target`, parameter by parameter. */
function softUpdate(target: QNetwork, online: QNetwork, tau: number): void {
  const src = online.parameters(), dst = target.parameters();
  for (let p = 0; p < dst.length; p++) {
    const s = src[p].data, d = dst[p].data;
    for (let i = 0; i < d.length; i++) d[i] = tau * s[i] + (1 - tau) * d[i];
  }
}

/** Where the replay buffer of a checkpoint lives: `checkpoint.safetensors` → `checkpoint.replay_buffer.safetensors`. */
export function replayBufferPath(checkpoint: string): string {
  return `${checkpoint.replace(/\.safetensors$/, "")}.replay_buffer.safetensors`;
}

/** Loads the buffer saved with a checkpoint at `globalStep`; false (buffer untouched) when there is none or it is stale. */
async function loadReplayBuffer(rb: ReplayBuffer, path: string, globalStep: number): Promise<boolean> {
  const file = await loadSafetensors(path).catch((e) => {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  });
  if (!file) return false;
  if (Number(file.metadata.global_step) !== globalStep) {
    console.warn(
      `dqn: ${path} is from step ${file.metadata.global_step}, the checkpoint from ${globalStep}: refilling the buffer`,
    );
    return false;
  }
  rb.loadState(file.tensors);
  return true;
}

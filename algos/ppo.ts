/**
 * Proximal Policy Optimization (Schulman et al. 2017), synchronous, following CleanRL's `ppo.py` and `ppo_atari.py`:
 * a vector env collects `numSteps` steps per env, GAE gives advantages, then `updateEpochs` passes over shuffled
 * minibatches optimize the clipped surrogate, a clipped value loss and an entropy bonus with Adam (eps 1e-5), global
 * gradient-norm clipping and a linearly annealed learning rate.
 *
 * Differences from CleanRL, each deliberate: time-limit truncations bootstrap from the value of the final observation
 * (CleanRL treats them as terminal); checkpoints are restart points (see `_training.ts`).
 *
 * @module
 */

import { Adam, add, clamp, clipGradNorm, exp, maximum, mean, mul, Rng, square, sub, Tensor } from "../models/mod.ts";
import { MetricsLogger } from "./logger.ts";
import { computeGae, normalizeInPlace } from "./returns.ts";
import { type EpisodeRecord, explainedVariance, policyTerms, Rollout } from "./_rollout.ts";
import {
  crossedBoundary,
  type EnvOptions,
  envShapes,
  eventLoopTicker,
  loadTrainingCheckpoint,
  openEnvs,
  progressPrinter,
  RUN_FILES,
  type RunOptions,
  startRun,
  stopRequest,
  type TrainResult,
  TrainRng,
  writeRunCheckpoint,
} from "./_training.ts";
import { type ActorCritic, MlpActorCritic, NatureCnnActorCritic } from "./policies.ts";

/** Options of `trainPpo`; every field has a default in `PPO_DEFAULTS`. */
export interface PpoOptions extends RunOptions, EnvOptions {
  /** Adam learning rate (annealed linearly to 0 when `annealLr`). */
  learningRate: number;
  /** Env steps per env per rollout. */
  numSteps: number;
  /** Anneal the learning rate linearly to 0 over the run. */
  annealLr: boolean;
  /** Discount factor γ. */
  gamma: number;
  /** GAE λ. */
  gaeLambda: number;
  /** Minibatches per epoch (minibatch size = numEnvs · numSteps / numMinibatches). */
  numMinibatches: number;
  /** Passes over the rollout per update. */
  updateEpochs: number;
  /** Normalize advantages per minibatch. */
  normAdv: boolean;
  /** Surrogate clipping coefficient ε. */
  clipCoef: number;
  /** Clip the value loss around the old values (with `clipCoef`). */
  clipVloss: boolean;
  /** Entropy bonus coefficient. */
  entCoef: number;
  /** Value loss coefficient. */
  vfCoef: number;
  /** Maximum global gradient norm. */
  maxGradNorm: number;
  /** Stop an update's epochs early once the approximate KL exceeds this (null: never). */
  targetKl: number | null;
  /** Network: `"mlp"` (64-64 tanh), `"cnn"` (Nature CNN), or `"auto"` (CNN for 3-D observations). */
  policy: "auto" | "mlp" | "cnn";
  /** Hidden sizes of the MLP policy. */
  hidden: number[];
}

/** CleanRL `ppo.py` defaults (classic control). */
export const PPO_DEFAULTS: Readonly<PpoOptions> = Object.freeze({
  envId: "CartPole-v1",
  seed: 1,
  totalTimesteps: 500_000,
  expName: "ppo",
  runsDir: "runs",
  checkpointEvery: 0,
  keepCheckpoints: false,
  tensorboard: true,
  handleSigint: true,
  numEnvs: 4,
  vectorBackend: "sync" as const,
  learningRate: 2.5e-4,
  numSteps: 128,
  annealLr: true,
  gamma: 0.99,
  gaeLambda: 0.95,
  numMinibatches: 4,
  updateEpochs: 4,
  normAdv: true,
  clipCoef: 0.2,
  clipVloss: true,
  entCoef: 0.01,
  vfCoef: 0.5,
  maxGradNorm: 0.5,
  targetKl: null,
  policy: "auto" as const,
  hidden: [64, 64],
});

/** CleanRL `ppo_atari.py` changes to `PPO_DEFAULTS` (pass an Atari vector env with its wrappers as `envs`). */
export const PPO_ATARI_DEFAULTS: Readonly<Partial<PpoOptions>> = Object.freeze({
  envId: "BreakoutNoFrameskip-v4",
  totalTimesteps: 10_000_000,
  numEnvs: 8,
  clipCoef: 0.1,
  policy: "cnn" as const,
});

/**
 * Train PPO. Returns the trained actor-critic and where the run went; stops early (after a checkpoint) on Ctrl-C or
 * `signal`.
 *
 * @example
 * ```ts
 * import { trainPpo } from "./ppo.ts";
 * const { policy, globalStep } = await trainPpo({
 *   totalTimesteps: 512, numEnvs: 2, numSteps: 64, runsDir: await Deno.makeTempDir(), tensorboard: false,
 *   handleSigint: false,
 * });
 * console.assert(globalStep === 512 && policy.numActions === 2);
 * ```
 */
export async function trainPpo(options: Partial<PpoOptions> = {}): Promise<TrainResult<ActorCritic>> {
  const args: PpoOptions = { ...PPO_DEFAULTS, ...options };
  // Derived sizes, as in CleanRL.
  const batchSize = args.numEnvs * args.numSteps;
  const minibatchSize = Math.floor(batchSize / args.numMinibatches);
  const numIterations = Math.floor(args.totalTimesteps / batchSize);
  if (minibatchSize < 1 || numIterations < 1) {
    throw new RangeError(
      `ppo: batch ${batchSize} (numEnvs x numSteps) must be >= numMinibatches (${args.numMinibatches}) and <= ` +
        `totalTimesteps (${args.totalTimesteps})`,
    );
  }

  const { envs, owned } = await openEnvs(args);
  const { runDir, resumeFrom } = await startRun(args, { algo: "ppo", ...args, batchSize, minibatchSize });
  using logger = new MetricsLogger(runDir, { tensorboard: args.tensorboard });
  using stop = stopRequest({ signal: args.signal, sigint: args.handleSigint });
  try {
    const { obsShape, uint8Obs, numActions } = envShapes(envs, "ppo");
    const initRng = new Rng(args.seed);
    const useCnn = args.policy === "cnn" || (args.policy === "auto" && obsShape.length === 3);
    const agent: ActorCritic = useCnn
      ? new NatureCnnActorCritic(obsShape, numActions, { rng: initRng })
      : new MlpActorCritic(obsShape, numActions, { rng: initRng, hidden: args.hidden });
    const optimizer = new Adam(agent.parameters(), { lr: args.learningRate, eps: 1e-5 });
    const rng = new TrainRng(args.seed);
    const rollout = new Rollout(args.numSteps, args.numEnvs, obsShape, uint8Obs);
    const checkpointPath = `${runDir}/${RUN_FILES.checkpoint}`;

    let globalStep = 0, iteration = 0;
    if (resumeFrom) {
      ({ globalStep, iteration } = await loadTrainingCheckpoint(resumeFrom, { model: agent, optimizer, rng }));
    }
    // A run starts, and resumes, from envs seeded by `seed + globalStep` (see _training.ts: restart points).
    await envs.reset({ seed: args.seed + globalStep });

    // Minibatch buffers, allocated once.
    const S = rollout.obsSize;
    const order = new Int32Array(batchSize).map((_, i) => i);
    const mbIdx = new Int32Array(minibatchSize);
    const mbObs = new Float32Array(minibatchSize * S);
    const mbActions = new Float32Array(minibatchSize);
    const mbOldLogprob = new Float32Array(minibatchSize);
    const mbNegAdv = new Float32Array(minibatchSize);
    const mbReturns = new Float32Array(minibatchSize);
    const mbOldValues = new Float32Array(minibatchSize);
    const tensors = {
      obs: new Tensor(mbObs, [minibatchSize, ...obsShape]),
      actions: new Tensor(mbActions, [minibatchSize]),
      oldLogprob: new Tensor(mbOldLogprob, [minibatchSize]),
      negAdv: new Tensor(mbNegAdv, [minibatchSize]),
      returns: new Tensor(mbReturns, [minibatchSize]),
      oldValues: new Tensor(mbOldValues, [minibatchSize]),
    };
    const episodes: EpisodeRecord[] = [];
    const tick = eventLoopTicker();
    const progress = progressPrinter(args.log);
    const startTime = performance.now(), startStep = globalStep;
    let lastReturn = NaN;

    while (iteration < numIterations && !stop.requested) {
      iteration++;
      if (args.annealLr) optimizer.lr = (1 - (iteration - 1) / numIterations) * args.learningRate;
      const stepBefore = globalStep;
      episodes.length = 0;
      globalStep = await rollout.collect(envs, agent, rng, globalStep, episodes);
      for (const ep of episodes) {
        logger.log(ep.step, { "charts/episodic_return": ep.return, "charts/episodic_length": ep.length });
        lastReturn = ep.return;
      }

      computeGae(rollout, rollout, { gamma: args.gamma, lambda: args.gaeLambda });

      // Optimize the policy and value network.
      for (let k = 0; k < batchSize; k++) order[k] = k; // fresh each iteration (CleanRL's b_inds), so resumes match
      let clipfracSum = 0, clipfracCount = 0, approxKl = 0, oldApproxKl = 0;
      let pgLossV = 0, vLossV = 0, entropyV = 0;
      for (let epoch = 0; epoch < args.updateEpochs; epoch++) {
        rng.shuffle(order);
        for (let start = 0; start + minibatchSize <= batchSize; start += minibatchSize) {
          for (let j = 0; j < minibatchSize; j++) {
            const k = (mbIdx[j] = order[start + j]);
            mbActions[j] = rollout.actions[k];
            mbOldLogprob[j] = rollout.logprobs[k];
            mbReturns[j] = rollout.returns[k];
            mbOldValues[j] = rollout.values[k];
            mbNegAdv[j] = -rollout.advantages[k];
          }
          rollout.gatherObs(mbIdx, mbObs);
          if (args.normAdv) normalizeInPlace(mbNegAdv);

          const { logits, value } = agent.forward(tensors.obs);
          const { logprob, entropy } = policyTerms(logits, tensors.actions);
          const logratio = sub(logprob, tensors.oldLogprob);
          const ratio = exp(logratio);
          // KL estimators (http://joschu.net/blog/kl-approx.html) and clip fraction, outside the graph.
          let kl = 0, oldKl = 0, clipped = 0;
          for (let j = 0; j < minibatchSize; j++) {
            const lr = logratio.data[j], r = ratio.data[j];
            oldKl -= lr;
            kl += r - 1 - lr;
            if (Math.abs(r - 1) > args.clipCoef) clipped++;
          }
          oldApproxKl = oldKl / minibatchSize;
          approxKl = kl / minibatchSize;
          clipfracSum += clipped / minibatchSize;
          clipfracCount++;

          // Clipped surrogate: max(−A·r, −A·clip(r, 1 − ε, 1 + ε)).
          const pgLoss = mean(maximum(
            mul(tensors.negAdv, ratio),
            mul(tensors.negAdv, clamp(ratio, 1 - args.clipCoef, 1 + args.clipCoef)),
          ));
          let vLoss: Tensor;
          if (args.clipVloss) {
            const unclipped = square(sub(value, tensors.returns));
            const vClipped = add(
              tensors.oldValues,
              clamp(sub(value, tensors.oldValues), -args.clipCoef, args.clipCoef),
            );
            vLoss = mul(mean(maximum(unclipped, square(sub(vClipped, tensors.returns)))), 0.5);
          } else vLoss = mul(mean(square(sub(value, tensors.returns))), 0.5);
          const entropyLoss = mean(entropy);
          const loss = add(sub(pgLoss, mul(entropyLoss, args.entCoef)), mul(vLoss, args.vfCoef));

          optimizer.zeroGrad();
          loss.backward();
          clipGradNorm(agent.parameters(), args.maxGradNorm);
          optimizer.step();
          pgLossV = pgLoss.item();
          vLossV = vLoss.item();
          entropyV = entropyLoss.item();
        }
        if (args.targetKl !== null && approxKl > args.targetKl) break;
      }

      const sps = Math.round((globalStep - startStep) / ((performance.now() - startTime) / 1000));
      logger.log(globalStep, {
        "charts/learning_rate": optimizer.lr,
        "losses/value_loss": vLossV,
        "losses/policy_loss": pgLossV,
        "losses/entropy": entropyV,
        "losses/old_approx_kl": oldApproxKl,
        "losses/approx_kl": approxKl,
        "losses/clipfrac": clipfracSum / clipfracCount,
        "losses/explained_variance": explainedVariance(rollout.values, rollout.returns),
        "charts/SPS": sps,
      });
      progress(() =>
        `ppo step ${globalStep}/${args.totalTimesteps} iter ${iteration}/${numIterations} ` +
        `return ${lastReturn.toFixed(1)} SPS ${sps}`
      );

      if (crossedBoundary(stepBefore, globalStep, args.checkpointEvery) && iteration < numIterations) {
        await writeRunCheckpoint(runDir, {
          model: agent,
          optimizer,
          rng,
          counters: { globalStep, iteration },
        }, args.keepCheckpoints);
        await envs.reset({ seed: args.seed + globalStep });
      }
      await tick();
    }

    await writeRunCheckpoint(
      runDir,
      { model: agent, optimizer, rng, counters: { globalStep, iteration } },
      args.keepCheckpoints,
    );
    progress(() => `ppo done: ${globalStep} steps${stop.reason ? ` (stopped by ${stop.reason})` : ""}`, true);
    logger.flush();
    return { policy: agent, runDir, globalStep, checkpoint: checkpointPath, stoppedBy: stop.reason };
  } finally {
    if (owned) envs.close();
  }
}

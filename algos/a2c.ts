/**
 * Advantage Actor-Critic (Mnih et al. 2016), the synchronous variant of OpenAI Baselines / Stable-Baselines3: a
 * vector env collects `numSteps` steps per env, n-step returns (restarted at episode ends, bootstrapped from the value
 * of the last observation) give the targets, and one RMSprop step (PyTorch's: eps outside the square root, 1e-5)
 * minimizes `−A·log π + vfCoef·(R − V)² − entCoef·H` with global gradient-norm clipping and a linearly decaying
 * learning rate. Networks use orthogonal init (hidden gain √2, policy head 0.01, value head 1).
 *
 * Time-limit truncations bootstrap from the value of the final observation; checkpoints are restart points (see
 * `_training.ts`).
 *
 * @module
 */

import { add, clipGradNorm, mean, mul, neg, RMSprop, Rng, square, sub, Tensor } from "../models/mod.ts";
import { MetricsLogger } from "./logger.ts";
import { computeNStepReturns, normalizeInPlace } from "./returns.ts";
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

/** Options of `trainA2c`; every field has a default in `A2C_DEFAULTS`. */
export interface A2cOptions extends RunOptions, EnvOptions {
  /** RMSprop learning rate (decayed linearly to 0 when `linearLrDecay`). */
  learningRate: number;
  /** Decay the learning rate linearly to 0 over the run. */
  linearLrDecay: boolean;
  /** RMSprop smoothing constant α. */
  rmspropAlpha: number;
  /** RMSprop ε (added outside the square root, as in PyTorch). */
  rmspropEps: number;
  /** Env steps per env per update (the n of the n-step returns). */
  numSteps: number;
  /** Discount factor γ. */
  gamma: number;
  /** Entropy bonus coefficient. */
  entCoef: number;
  /** Value loss coefficient. */
  vfCoef: number;
  /** Maximum global gradient norm. */
  maxGradNorm: number;
  /** Normalize advantages per update (off in SB3's A2C). */
  normAdv: boolean;
  /** Network: `"mlp"` (64-64 tanh), `"cnn"` (Nature CNN), or `"auto"` (CNN for 3-D observations). */
  policy: "auto" | "mlp" | "cnn";
  /** Hidden sizes of the MLP policy. */
  hidden: number[];
}

/** Baselines/SB3 A2C defaults (16 envs, 5 steps, RMSprop 7e-4). */
export const A2C_DEFAULTS: Readonly<A2cOptions> = Object.freeze({
  envId: "CartPole-v1",
  seed: 1,
  totalTimesteps: 500_000,
  expName: "a2c",
  runsDir: "runs",
  checkpointEvery: 0,
  keepCheckpoints: false,
  tensorboard: true,
  handleSigint: true,
  numEnvs: 16,
  vectorBackend: "sync" as const,
  learningRate: 7e-4,
  linearLrDecay: true,
  rmspropAlpha: 0.99,
  rmspropEps: 1e-5,
  numSteps: 5,
  gamma: 0.99,
  entCoef: 0.01,
  vfCoef: 0.5,
  maxGradNorm: 0.5,
  normAdv: false,
  policy: "auto" as const,
  hidden: [64, 64],
});

/**
 * Train A2C. Returns the trained actor-critic; stops early (after a checkpoint) on Ctrl-C or `signal`.
 *
 * @example
 * ```ts
 * import { trainA2c } from "./a2c.ts";
 * const { policy, globalStep } = await trainA2c({
 *   totalTimesteps: 400, numEnvs: 4, runsDir: await Deno.makeTempDir(), tensorboard: false, handleSigint: false,
 * });
 * console.assert(globalStep === 400 && policy.numActions === 2);
 * ```
 */
export async function trainA2c(options: Partial<A2cOptions> = {}): Promise<TrainResult<ActorCritic>> {
  const args: A2cOptions = { ...A2C_DEFAULTS, ...options };
  const batchSize = args.numEnvs * args.numSteps;
  const numIterations = Math.floor(args.totalTimesteps / batchSize);
  if (numIterations < 1) {
    throw new RangeError(`a2c: totalTimesteps (${args.totalTimesteps}) < numEnvs x numSteps (${batchSize})`);
  }

  const { envs, owned } = await openEnvs(args);
  const { runDir, resumeFrom } = await startRun(args, { algo: "a2c", ...args, batchSize });
  using logger = new MetricsLogger(runDir, { tensorboard: args.tensorboard });
  using stop = stopRequest({ signal: args.signal, sigint: args.handleSigint });
  try {
    const { obsShape, uint8Obs, numActions } = envShapes(envs, "a2c");
    const initRng = new Rng(args.seed);
    const useCnn = args.policy === "cnn" || (args.policy === "auto" && obsShape.length === 3);
    const agent: ActorCritic = useCnn
      ? new NatureCnnActorCritic(obsShape, numActions, { rng: initRng })
      : new MlpActorCritic(obsShape, numActions, { rng: initRng, hidden: args.hidden });
    const optimizer = new RMSprop(agent.parameters(), {
      lr: args.learningRate,
      alpha: args.rmspropAlpha,
      eps: args.rmspropEps,
    });
    const rng = new TrainRng(args.seed);
    const rollout = new Rollout(args.numSteps, args.numEnvs, obsShape, uint8Obs);
    const checkpointPath = `${runDir}/${RUN_FILES.checkpoint}`;

    let globalStep = 0, iteration = 0;
    if (resumeFrom) {
      ({ globalStep, iteration } = await loadTrainingCheckpoint(resumeFrom, { model: agent, optimizer, rng }));
    }
    await envs.reset({ seed: args.seed + globalStep });

    // Whole-batch tensors over preallocated buffers (the rollout is one batch).
    const obsF32 = rollout.obs instanceof Float32Array ? rollout.obs : new Float32Array(rollout.obs.length);
    const obsT = new Tensor(obsF32, [batchSize, ...obsShape]);
    const actionsF = new Float32Array(batchSize);
    const actionsT = new Tensor(actionsF, [batchSize]);
    const negAdv = new Float32Array(batchSize);
    const negAdvT = new Tensor(negAdv, [batchSize]);
    const returnsT = new Tensor(rollout.returns, [batchSize]);
    const episodes: EpisodeRecord[] = [];
    const tick = eventLoopTicker();
    const progress = progressPrinter(args.log);
    const startTime = performance.now(), startStep = globalStep;
    let lastReturn = NaN;

    while (iteration < numIterations && !stop.requested) {
      iteration++;
      if (args.linearLrDecay) optimizer.lr = (1 - (iteration - 1) / numIterations) * args.learningRate;
      const stepBefore = globalStep;
      episodes.length = 0;
      globalStep = await rollout.collect(envs, agent, rng, globalStep, episodes);
      for (const ep of episodes) {
        logger.log(ep.step, { "charts/episodic_return": ep.return, "charts/episodic_length": ep.length });
        lastReturn = ep.return;
      }

      computeNStepReturns(rollout, rollout, { gamma: args.gamma });
      if (obsF32 !== rollout.obs) obsF32.set(rollout.obs);
      for (let k = 0; k < batchSize; k++) {
        actionsF[k] = rollout.actions[k];
        negAdv[k] = -rollout.advantages[k];
      }
      if (args.normAdv) normalizeInPlace(negAdv);

      const { logits, value } = agent.forward(obsT);
      const { logprob, entropy } = policyTerms(logits, actionsT);
      const policyLoss = mean(mul(negAdvT, logprob));
      const valueLoss = mean(square(sub(returnsT, value)));
      const entropyLoss = neg(mean(entropy));
      const loss = add(add(policyLoss, mul(valueLoss, args.vfCoef)), mul(entropyLoss, args.entCoef));
      optimizer.zeroGrad();
      loss.backward();
      clipGradNorm(agent.parameters(), args.maxGradNorm);
      optimizer.step();

      const sps = Math.round((globalStep - startStep) / ((performance.now() - startTime) / 1000));
      if (iteration % 10 === 0 || iteration === numIterations) {
        logger.log(globalStep, {
          "charts/learning_rate": optimizer.lr,
          "losses/value_loss": valueLoss.item(),
          "losses/policy_loss": policyLoss.item(),
          "losses/entropy": -entropyLoss.item(),
          "losses/explained_variance": explainedVariance(rollout.values, rollout.returns),
          "charts/SPS": sps,
        });
      }
      progress(() =>
        `a2c step ${globalStep}/${args.totalTimesteps} iter ${iteration}/${numIterations} ` +
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
    progress(() => `a2c done: ${globalStep} steps${stop.reason ? ` (stopped by ${stop.reason})` : ""}`, true);
    logger.flush();
    return { policy: agent, runDir, globalStep, checkpoint: checkpointPath, stoppedBy: stop.reason };
  } finally {
    if (owned) envs.close();
  }
}

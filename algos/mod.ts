/**
 * Learners and their building blocks: DQN, A2C and PPO (one file each, CleanRL-style), shared policy networks,
 * return estimators, the replay buffer, evaluation, run plumbing (run directories, checkpoints, resume, Ctrl-C) and
 * CleanRL-named metrics to TensorBoard and JSONL.
 *
 * @example
 * ```ts
 * import { evaluate, trainPpo } from "./mod.ts";
 * import { make } from "../envs/mod.ts";
 * const { policy } = await trainPpo({
 *   totalTimesteps: 256, numEnvs: 2, numSteps: 64, runsDir: await Deno.makeTempDir(), tensorboard: false,
 *   handleSigint: false,
 * });
 * using env = make("CartPole-v1");
 * const { mean } = evaluate(policy, env, { episodes: 2, deterministic: true, seed: 0 });
 * console.assert(mean > 0);
 * ```
 *
 * @module
 */

export { DQN_CLASSIC_DEFAULTS, DQN_DEFAULTS, type DqnOptions, trainDqn } from "./dqn.ts";
export { A2C_DEFAULTS, type A2cOptions, trainA2c } from "./a2c.ts";
export { PPO_ATARI_DEFAULTS, PPO_DEFAULTS, type PpoOptions, trainPpo } from "./ppo.ts";
export {
  type ActOptions,
  type ActorCritic,
  MlpActorCritic,
  type MlpActorCriticOptions,
  MlpQNetwork,
  NatureCnnActorCritic,
  NatureCnnQNetwork,
  type NetworkOptions,
  type ObsBatch,
  obsTensor,
  type Policy,
  type QNetwork,
  type QNetworkOptions,
} from "./policies.ts";
export {
  computeGae,
  computeNStepReturns,
  type GaeOptions,
  type NStepOptions,
  type ReturnsOutput,
  type RolloutReturnsInput,
} from "./returns.ts";
export {
  ReplayBuffer,
  type ReplayBufferOptions,
  replayMemoryBytes,
  type ReplaySample,
  SumTree,
} from "./replay_buffer.ts";
export { evaluate, type EvaluateOptions, type EvaluateResult, meanStd } from "./evaluate.ts";
export {
  APPO_DEFAULTS,
  AppoModel,
  type AppoModelOptions,
  type AppoOptions,
  type AppoResult,
  evaluateAppo,
  type EvaluateAppoOptions,
  loadAppoModel,
  type LoadedAppoModel,
  MultiCategorical,
  trainAppo,
} from "./appo/mod.ts";
export { plotMetricsSvg, writePlots } from "./plots.ts";
export {
  type AppoModelLike,
  evaluateOnnx,
  type ExportablePolicy,
  exportPolicyOnnx,
  type OnnxActOptions,
  type OnnxActResult,
  OnnxPolicy,
  type OnnxPolicyNames,
  type OnnxPolicyOptions,
  type PolicyExportOptions,
  policyToOnnx,
} from "./onnx_policy.ts";
export {
  loadTrainingCheckpoint,
  ModuleGroup,
  RUN_FILES,
  runName,
  type RunOptions,
  saveTrainingCheckpoint,
  type StopRequest,
  stopRequest,
  type TrainingState,
  type TrainResult,
  TrainRng,
} from "./_training.ts";
export { MetricsLogger, type MetricsLoggerOptions, readMetrics } from "./logger.ts";

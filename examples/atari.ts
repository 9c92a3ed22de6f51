/**
 * Train an agent on Atari: DQN on Pong/Breakout (CleanRL `dqn_atari.py`), A2C on SpaceInvaders (SB3 / RL Zoo),
 * or PPO (CleanRL `ppo_atari.py`); then evaluate it and record a video.
 *
 * ```sh
 * deno run -A examples/atari.ts --env pong                            # DQN, 10M agent steps
 * deno run -A examples/atari.ts --env space_invaders                  # A2C, 16 envs in Workers
 * deno run -A examples/atari.ts --env breakout --algo ppo --train-for-env-steps 2000000
 * deno run -A examples/atari.ts --env pong --resume                   # continue train_dir/<experiment>
 * deno run -A examples/atari.ts --env pong --enjoy --save-video --max-num-episodes 3
 * ```
 *
 * Envs are the Nature-DQN stack (`makeAtari`, registered as `ALE/<Game>-nature-v5`): no-op reset, frameskip 4 with
 * max-pooling, 84x84 grayscale, 4 stacked frames, FIRE on reset where the game has it, v5 sticky actions (0.25).
 * Rewards are clipped to [-1, 1] for learning only: the logged `charts/episodic_return` is the game score. Episodes
 * end at game over, not at each lost life (Machado et al. 2018), unlike CleanRL's `EpisodicLifeEnv`.
 *
 * The run directory `<train-dir>/<experiment>` receives `config.json`, `atari.json`, `checkpoint.safetensors`,
 * TensorBoard event files, `metrics.jsonl`, `plots/*.svg`, `eval.json` and `replay.mp4`. Ctrl-C stops training after
 * writing a checkpoint; `--resume` continues it (DQN refills its replay buffer first: it is not checkpointed).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fail, intFlag, oneOf, PLAY_FLAGS } from "./_cli.ts";
import { A2C_DEFAULTS, type A2cOptions, trainA2c } from "../algos/a2c.ts";
import { DQN_DEFAULTS, type DqnOptions, trainDqn } from "../algos/dqn.ts";
import { meanStd } from "../algos/evaluate.ts";
import { type ActorCritic, NatureCnnActorCritic, NatureCnnQNetwork, type Policy } from "../algos/policies.ts";
import { PPO_ATARI_DEFAULTS, PPO_DEFAULTS, type PpoOptions, trainPpo } from "../algos/ppo.ts";
import { writePlots } from "../algos/plots.ts";
import { replayMemoryBytes } from "../algos/replay_buffer.ts";
import { ModuleGroup, type TrainResult, TrainRng, writeJsonAtomic } from "../algos/_training.ts";
import { ATARI_V5_IDS, AtariEnv, ensureAle, makeAtari, ROM_IDS, romIdToName } from "../envs/ale/mod.ts";
import type { Discrete } from "../envs/spaces.ts";
import { closeMatches } from "../envs/registry.ts";
import {
  makeVectorEnv,
  type VectorEnv,
  type VectorResetOptions,
  type VectorResetResult,
  type VectorStepResult,
} from "../envs/vector/mod.ts";
import { Mp4Writer } from "../envs/video/mod.ts";
import { loadCheckpoint, Rng, setBlasThreads, useBackend } from "../models/mod.ts";

const ALGOS = ["dqn", "a2c", "ppo"] as const;
type Algo = typeof ALGOS[number];
const BACKENDS = ["cpu", "webgpu", "auto"] as const;
const VECTOR_BACKENDS = ["sync", "worker"] as const;
const ALE_MODULE = new URL("../envs/ale/mod.ts", import.meta.url).href;
/** Single-player games: ROM ids that have an `ALE/<Game>-v5` id. */
const GAMES = ROM_IDS.filter((rom) => ATARI_V5_IDS.includes(`ALE/${romIdToName(rom)}-v5`));
/** The recipe each game trains with unless `--algo` says otherwise. */
const DEFAULT_ALGO: Record<string, Algo> = { pong: "dqn", breakout: "dqn", space_invaders: "a2c" };
/** Envs per algorithm: CleanRL DQN 1, SB3 A2C 16, CleanRL PPO 8. */
const DEFAULT_NUM_ENVS: Record<Algo, number> = { dqn: 1, a2c: 16, ppo: 8 };
/** CleanRL's 1M-transition replay buffer (6.6 GiB of 84x84 frames), shrunk by 100k steps until it fits memory. */
const DQN_BUFFER = 1_000_000;
/** Agent steps are 4 emulator frames; 60 frames a second. */
const VIDEO_FPS = 15;

/** DQN on Atari: CleanRL `dqn_atari.py` (Nature CNN, Adam 1e-4, ε 1 → 0.01 over 10%, 80k steps before learning). */
export const ATARI_DQN: Partial<DqnOptions> = { ...DQN_DEFAULTS, numEnvs: 1, policy: "cnn" };

/** A2C on Atari: SB3 / RL Zoo (16 envs x 5 steps, RMSprop 7e-4 with eps 1e-5, value coefficient 0.25). */
export const ATARI_A2C: Partial<A2cOptions> = {
  ...A2C_DEFAULTS,
  totalTimesteps: 10_000_000,
  numEnvs: 16,
  vfCoef: 0.25,
  policy: "cnn",
};

/** PPO on Atari: CleanRL `ppo_atari.py` (8 envs x 128 steps, clip 0.1, Adam 2.5e-4 annealed). */
export const ATARI_PPO: Partial<PpoOptions> = { ...PPO_DEFAULTS, ...PPO_ATARI_DEFAULTS };

const USAGE = `Usage: deno run -A examples/atari.ts [options]

Training (default):
  --env <game>                   Atari game: pong, breakout, space_invaders, ... or an id such as ALE/Pong-v5
                                 (default pong)
  --algo <dqn|a2c|ppo>           learner (default: dqn for pong and breakout, a2c for space_invaders, else dqn)
  --train-for-env-steps <int>    agent steps to train for, each 4 emulator frames (default 10000000)
  --num-envs <int>               envs (default: dqn 1, a2c 16, ppo 8)
  --vector-backend <sync|worker> step envs in this thread or in Workers (default: worker for 2+ envs)
  --experiment <name>            run name (default: <game>__<algo>__<seed>)
  --train-dir <dir>              parent of run directories (default train_dir)
  --seed <int>                   seed (default 1)
  --resume                       continue <train-dir>/<experiment> from its checkpoint
  --checkpoint-every <int>       also write a checkpoint every this many agent steps (default 200000; 0: at the end)
  --buffer-size <int>            DQN replay buffer, transitions (default 1000000, less when memory is short)
  --learning-starts <int>        DQN: agent steps before learning (default 80000)
  --sticky-actions <p>           repeat-action probability (default 0.25, as v5; 0 as NoFrameskip-v4)
  --backend <cpu|webgpu|auto>    tensor backend (default cpu)
  --no-video                     skip the evaluation and replay.mp4 after training

Evaluation:
  --enjoy, --eval                evaluate a trained policy instead of training
  --checkpoint <path>            run directory or checkpoint file (default <train-dir>/<experiment>)
  --max-num-episodes <int>       evaluation episodes (default 10)
  --save-video                   record the first episode to replay.mp4 in the run directory
  --no-render                    accepted for Sample Factory compatibility (we never open a window)
  -h, --help                     show this help`;

/** `pong`, `Pong`, `ALE/Pong-v5` or `ALE/Pong-nature-v5` → the ROM id `pong`. */
function parseGame(value: string): string {
  const id = /^ALE\/([A-Za-z0-9]+)-(?:nature-)?v5$/.exec(value)?.[1] ?? value;
  const rom = GAMES.find((g) => g === id || romIdToName(g) === id || g === id.toLowerCase());
  if (rom) return rom;
  const close = closeMatches(value, [...GAMES, ...ATARI_V5_IDS]);
  fail(
    `--env must be an Atari game (pong, breakout, space_invaders, ... or ALE/Pong-v5), ` +
      `got '${value}'${close.length ? `; did you mean ${close.join(", ")}?` : ""} (all: ${GAMES.join(", ")})`,
  );
}

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      options: {
        env: { type: "string", default: "pong" },
        algo: { type: "string" },
        "train-for-env-steps": { type: "string", default: "10000000" },
        "num-envs": { type: "string" },
        "vector-backend": { type: "string" },
        experiment: { type: "string" },
        "train-dir": { type: "string", default: "train_dir" },
        seed: { type: "string", default: "1" },
        resume: { type: "boolean", default: false },
        "checkpoint-every": { type: "string", default: "200000" },
        "buffer-size": { type: "string" },
        "learning-starts": { type: "string" },
        "sticky-actions": { type: "string", default: "0.25" },
        ...PLAY_FLAGS,
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    // node:util names the offending flag ("Unknown option '--x'").
    fail((e as Error).message);
  }
}

/** What the example itself records in the run directory, so `--enjoy` rebuilds the same env and network. */
interface AtariRun {
  game: string;
  envId: string;
  algo: Algo;
  kwargs: Record<string, unknown>;
  dueling: boolean;
}

/** `makeAtari` kwargs: the stack unclipped (the vector env clips), FIRE on reset where the game needs it. */
function envKwargs(game: string, stickyActions: number): Record<string, unknown> {
  using probe = new AtariEnv(game, { obsType: "ram" });
  const meanings = probe.getActionMeanings();
  return {
    fireReset: meanings[1] === "FIRE" && meanings.length >= 3,
    clipReward: false,
    repeatActionProbability: stickyActions,
  };
}

/**
 * Clips rewards to their sign in place after each step, so learners train on clipped rewards while the vector env's
 * episode returns (`charts/episodic_return`) stay the game score.
 */
class SignRewards implements VectorEnv {
  readonly #envs: VectorEnv;
  constructor(envs: VectorEnv) {
    this.#envs = envs;
  }
  get numEnvs() {
    return this.#envs.numEnvs;
  }
  get singleObservationSpace() {
    return this.#envs.singleObservationSpace;
  }
  get singleActionSpace() {
    return this.#envs.singleActionSpace;
  }
  get observationSpace() {
    return this.#envs.observationSpace;
  }
  get actionSpace() {
    return this.#envs.actionSpace;
  }
  get buffers() {
    return this.#envs.buffers;
  }
  get closed() {
    return this.#envs.closed;
  }
  reset(options?: VectorResetOptions): Promise<VectorResetResult> {
    return this.#envs.reset(options);
  }
  resetSync(options?: VectorResetOptions): VectorResetResult {
    return this.#envs.resetSync(options);
  }
  send(actions?: ArrayLike<number>): void {
    this.#envs.send(actions);
  }
  async recv(): Promise<VectorStepResult> {
    return clip(await this.#envs.recv());
  }
  recvSync(): VectorStepResult {
    return clip(this.#envs.recvSync());
  }
  async step(actions?: ArrayLike<number>): Promise<VectorStepResult> {
    this.#envs.send(actions);
    return clip(await this.#envs.recv());
  }
  stepSync(actions?: ArrayLike<number>): VectorStepResult {
    this.#envs.send(actions);
    return clip(this.#envs.recvSync());
  }
  close(): void {
    this.#envs.close();
  }
  [Symbol.dispose](): void {
    this.#envs.close();
  }
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#envs[Symbol.asyncDispose]();
  }
}

function clip(result: VectorStepResult): VectorStepResult {
  const rewards = result[1];
  for (let i = 0; i < rewards.length; i++) rewards[i] = Math.sign(rewards[i]);
  return result;
}

/** The largest buffer of at most `DQN_BUFFER` transitions (in 100k steps) that takes at most half the free memory. */
function defaultBufferSize(numEnvs: number): number {
  let free = Infinity;
  try {
    free = Deno.systemMemoryInfo().available;
  } catch { /* no --allow-sys: keep CleanRL's size; the replay buffer still refuses what cannot fit */ }
  const bytes = (capacity: number) =>
    replayMemoryBytes({ capacity, numEnvs, obsShape: [4, 84, 84], dtype: "uint8", frameStack: 4 });
  let size = DQN_BUFFER;
  while (size > 100_000 && bytes(size) > free / 2) size -= 100_000;
  return size;
}

/** Resolves `--checkpoint` (run directory or checkpoint file) to the run directory and the checkpoint file. */
function runPaths(path: string): { runDir: string; checkpoint: string } {
  if (path.endsWith(".safetensors")) {
    const slash = path.lastIndexOf("/");
    return { runDir: slash >= 0 ? path.slice(0, slash) || "/" : ".", checkpoint: path };
  }
  const runDir = path.replace(/\/+$/, "");
  return { runDir, checkpoint: `${runDir}/checkpoint.safetensors` };
}

/** Rebuilds the trained network of a run from `atari.json` and its checkpoint. */
async function loadPolicy(run: AtariRun, checkpoint: string, numActions: number): Promise<Policy> {
  const obsShape = [4, 84, 84], rng = new Rng(0);
  if (run.algo === "dqn") {
    const q = new NatureCnnQNetwork(obsShape, numActions, { rng, dueling: run.dueling });
    const target = new NatureCnnQNetwork(obsShape, numActions, { rng, dueling: run.dueling });
    await loadCheckpoint(checkpoint, { model: new ModuleGroup({ q, target }) });
    return q;
  }
  const agent: ActorCritic = new NatureCnnActorCritic(obsShape, numActions, { rng });
  await loadCheckpoint(checkpoint, { model: agent });
  return agent;
}

/**
 * Plays `episodes` episodes (DQN ε-greedy with ε 0.05 as CleanRL evaluates; actor-critics sample), records the
 * first to `video` from the emulator's RGB screen, and writes `eval.json`.
 */
async function evaluateRun(
  path: string,
  options: { episodes: number; video: boolean; seed: number },
): Promise<void> {
  const { runDir, checkpoint } = runPaths(path);
  const runFile = `${runDir}/atari.json`;
  const run: AtariRun = JSON.parse(
    await Deno.readTextFile(runFile).catch(() => {
      console.error(`error: ${runFile} not found: --checkpoint must name a run directory written by examples/atari.ts`);
      Deno.exit(1);
    }),
  );
  using env = makeAtari(run.game, run.kwargs);
  const atari = env.unwrapped as AtariEnv;
  const policy = await loadPolicy(run, checkpoint, (env.actionSpace as Discrete).n);
  console.log(`evaluating ${checkpoint} (${run.algo}) on ${run.envId} for ${options.episodes} episodes`);
  const videoPath = `${runDir}/replay.mp4`;
  let writer: Mp4Writer | undefined;
  const rng = new TrainRng(options.seed);
  const action = new Int32Array(1);
  const returns: number[] = [], lengths: number[] = [];
  try {
    for (let ep = 0; ep < options.episodes; ep++) {
      let [obs] = env.reset(ep === 0 ? { seed: options.seed } : {});
      const record = options.video && ep === 0;
      const frame = () => {
        const f = atari.render();
        writer ??= new Mp4Writer(videoPath, { width: f.width, height: f.height, fps: VIDEO_FPS });
        writer.addFrame(f);
      };
      if (record) frame();
      let total = 0, length = 0;
      for (;;) {
        policy.act(obs, action, { deterministic: false, rng });
        const [next, reward, terminated, truncated] = env.step(action[0]);
        if (record) frame();
        total += reward;
        length++;
        obs = next;
        if (terminated || truncated) break;
      }
      returns.push(total);
      lengths.push(length);
      console.log(`episode ${ep + 1}: return ${total} in ${length} steps`);
    }
    writer?.close();
  } finally {
    writer?.close();
  }
  const { mean, std } = meanStd(returns);
  console.log(`reward: ${mean.toFixed(2)} ± ${std.toFixed(2)} over ${returns.length} episodes`);
  if (writer) console.log(`video: ${videoPath} (${writer.frameCount} frames)`);
  await writeJsonAtomic(`${runDir}/eval.json`, { checkpoint, returns, lengths, mean, std });
}

async function main(argv: string[]): Promise<void> {
  const v = parse(argv);
  if (v.help) {
    console.log(USAGE);
    return;
  }
  const game = parseGame(v.env);
  const algo = v.algo === undefined ? DEFAULT_ALGO[game] ?? "dqn" : oneOf("algo", v.algo, ALGOS);
  const backend = oneOf("backend", v.backend, BACKENDS);
  const seed = intFlag("seed", v.seed, 0)!;
  const steps = intFlag("train-for-env-steps", v["train-for-env-steps"], 1)!;
  const numEnvs = intFlag("num-envs", v["num-envs"], 1) ?? DEFAULT_NUM_ENVS[algo];
  const vectorBackend = v["vector-backend"] === undefined
    ? (numEnvs > 1 && navigator.hardwareConcurrency > 1 ? "worker" : "sync")
    : oneOf("vector-backend", v["vector-backend"], VECTOR_BACKENDS);
  const checkpointEvery = intFlag("checkpoint-every", v["checkpoint-every"], 0)!;
  const bufferSize = intFlag("buffer-size", v["buffer-size"], 1);
  const learningStarts = intFlag("learning-starts", v["learning-starts"], 0);
  const episodes = intFlag("max-num-episodes", v["max-num-episodes"], 1)!;
  const sticky = Number(v["sticky-actions"]);
  if (v["sticky-actions"].trim() === "" || !(sticky >= 0 && sticky <= 1)) {
    fail(`--sticky-actions must be a probability in [0, 1], got '${v["sticky-actions"]}'`);
  }
  if (algo !== "dqn") {
    if (bufferSize !== undefined) fail(`--buffer-size applies to --algo dqn only (got --algo ${algo})`);
    if (learningStarts !== undefined) fail(`--learning-starts applies to --algo dqn only (got --algo ${algo})`);
  }
  const runDir = v.checkpoint ?? `${v["train-dir"]}/${v.experiment ?? `${game}__${algo}__${seed}`}`;
  try {
    useBackend(backend);
  } catch (e) {
    fail(`--backend ${backend}: ${(e as Error).message}`);
  }
  await ensureAle();

  if (v.enjoy || v.eval) {
    await evaluateRun(runDir, { episodes, video: v["save-video"], seed: seed + 1000 });
    return;
  }
  if (v.resume && !(await Deno.stat(`${runDir}/checkpoint.safetensors`).catch(() => null))) {
    console.error(`error: --resume: ${runDir}/checkpoint.safetensors not found (train without --resume first)`);
    Deno.exit(1);
  }

  const envId = `ALE/${romIdToName(game)}-nature-v5`;
  const kwargs = envKwargs(game, sticky);
  const run: AtariRun = { game, envId, algo, kwargs, dueling: false };
  if (v.resume) {
    const before: Partial<AtariRun> = JSON.parse(await Deno.readTextFile(`${runDir}/atari.json`).catch(() => "{}"));
    for (const [flag, key] of [["env", "game"], ["algo", "algo"]] as const) {
      if (before[key] !== undefined && before[key] !== run[key]) {
        fail(`--${flag} ${run[key]} differs from the run being resumed (${runDir}: ${before[key]})`);
      }
    }
  }
  await Deno.mkdir(runDir, { recursive: true });
  await writeJsonAtomic(`${runDir}/atari.json`, run);
  // Workers import only the ALE module: it registers the `-nature-v5` ids they build their envs from.
  const inner = await makeVectorEnv(envId, numEnvs, { backend: vectorBackend, kwargs, envModules: [ALE_MODULE] });
  await using envs = new SignRewards(inner);
  // The learner has the main thread; Workers (or the sync envs) share the cores: one BLAS thread avoids oversubscribing.
  if (vectorBackend === "worker" || navigator.hardwareConcurrency <= 2) setBlasThreads(1);
  const common = {
    envId,
    envs,
    numEnvs,
    seed,
    totalTimesteps: steps,
    runDir,
    expName: algo,
    resume: v.resume ? runDir : undefined,
    checkpointEvery,
    log: (line: string) => console.log(line),
  };
  console.log(
    `training ${envId} with ${algo.toUpperCase()}: ${numEnvs} envs (${vectorBackend}), ${steps} steps -> ${runDir}`,
  );
  let result: TrainResult<Policy>;
  if (algo === "dqn") {
    const size = bufferSize ?? defaultBufferSize(numEnvs);
    if (bufferSize === undefined && size < DQN_BUFFER) {
      console.log(`replay buffer: ${size} transitions (CleanRL's ${DQN_BUFFER} needs more than half the free memory)`);
    }
    try {
      result = await trainDqn({
        ...ATARI_DQN,
        ...common,
        bufferSize: size,
        ...(learningStarts !== undefined ? { learningStarts } : {}),
      });
    } catch (e) {
      // The replay buffer refuses a size that does not fit in memory before anything is allocated.
      if (e instanceof RangeError && e.message.startsWith("ReplayBuffer:")) fail(`--buffer-size ${size}: ${e.message}`);
      throw e;
    }
  } else if (algo === "a2c") {
    result = await trainA2c({ ...ATARI_A2C, ...common });
  } else {
    result = await trainPpo({ ...ATARI_PPO, ...common });
  }
  console.log(`trained ${result.globalStep} steps; checkpoint ${result.checkpoint}`);
  const plots = await writePlots(result.runDir);
  console.log(`plots: ${plots.join(", ")}`);
  if (result.stoppedBy) {
    console.log(
      `stopped by ${result.stoppedBy}; resume with: deno run -A examples/atari.ts --env ${game} --algo ${algo} ` +
        `--resume --train-dir ${v["train-dir"]} --experiment ${runDir.split("/").pop()}`,
    );
    return;
  }
  if (!v["no-video"]) await evaluateRun(result.runDir, { episodes, video: true, seed: seed + 1000 });
}

if (import.meta.main) await main(Deno.args);

/**
 * `deno task bench:learn`: learning speed against wall time (not part of CI; runs take minutes to hours).
 *
 * ```sh
 * deno task bench:learn                                   # every run below
 * deno task bench:learn --only cartpole                   # CartPole-v1: DQN, A2C, PPO, APPO vs the 60 s goal
 * deno task bench:learn --only doom_basic,sf --doom-minutes 2 --sf-minutes 3
 * deno task bench:learn --only doom_health_gathering_supreme --frames 4000000 --eval-every 300
 * deno task bench:learn --only pong_dqn,pong_a2c --minutes 30
 * ```
 *
 * Runs (`--only`):
 * - `cartpole`: each learner with its tuned settings (those of the learning tests), timed until its 20-episode
 *   greedy evaluation; `ratio = 60 / wall` against the 60 s goal.
 * - `doom_basic`: APPO for `--doom-minutes`, then a 10-episode evaluation.
 * - `doom_health_gathering_supreme`: APPO for `--frames` (or `--hgs-minutes`), evaluated every `--eval-every` s in a
 *   separate process on the latest checkpoint: mean, std and mean − std against the Hugging Face course bar (≥ 5),
 *   wall time against the 30 minute goal.
 * - `pong_dqn`, `pong_a2c`: the learners on `makeAtari("pong")` vector envs for `--minutes` each.
 * - `sf`: Sample Factory 2.1.1 (`sf_examples.vizdoom.train_vizdoom`, its own venv in the cache) on `--sf-env` with
 *   the same workers, envs, resolution, frameskip, rollout and batch, for `--sf-minutes`; our APPO frames/s beside
 *   it (from this invocation's run of that env, else a run of the same length) and the ratio against the 1.5x goal.
 *   With `--sf-rounds n` the two sides alternate n times (ours, Sample Factory, ours, ...) and the median of the
 *   per-round ratios is reported: the machine's speed drifts by 20-30% over minutes, and a ratio taken from
 *   neighbouring runs, repeated, is what stays put.
 *
 * Every result line ends with the load average: other work on the machine moves these numbers.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { trainA2c } from "../algos/a2c.ts";
import { evaluateAppo, loadAppoModel, trainAppo } from "../algos/appo/mod.ts";
import type { AppoOptions, AppoResult } from "../algos/appo/mod.ts";
import { DQN_DEFAULTS, trainDqn } from "../algos/dqn.ts";
import { evaluate } from "../algos/evaluate.ts";
import { readMetrics } from "../algos/logger.ts";
import { trainPpo } from "../algos/ppo.ts";
import type { Policy } from "../algos/policies.ts";
import type { TrainResult } from "../algos/_training.ts";
import { A2C_DEFAULTS } from "../algos/a2c.ts";
import { make } from "../envs/mod.ts";
import { ensureAle, makeAtari } from "../envs/ale/mod.ts";
import { SyncVectorEnv } from "../envs/vector/mod.ts";
import { ensureVizdoom } from "../envs/vizdoom/mod.ts";
import { type MatmulPrecision, setBlasThreads } from "../models/mod.ts";
import { CARTPOLE_A2C, CARTPOLE_DQN, CARTPOLE_PPO } from "../examples/cartpole.ts";
import { ensureSampleFactory, runSampleFactory } from "./_sample_factory.ts";
import { median } from "./_stats.ts";

const RUNS = ["cartpole", "doom_basic", "doom_health_gathering_supreme", "pong_dqn", "pong_a2c", "sf"] as const;
type RunName = typeof RUNS[number];

const CLASSIC_MODULE = new URL("../envs/classic/mod.ts", import.meta.url).href;
const DOOM_MODULE = new URL("../envs/vizdoom/mod.ts", import.meta.url).href;
const CARTPOLE_GOAL_S = 60;
const HGS_GOAL_MIN = 30;
const HF_BAR = 5;
const SF_GOAL = 1.5;
/** Our Doom APPO runs' GEMM precision (`--matmul-precision`). */
let matmulPrecision: MatmulPrecision = "highest";
/** Seed of the Doom APPO runs (`--seed`). */
let doomSeed = 0;
/** Frame budget of the runs bounded by wall time only. */
const UNBOUNDED_FRAMES = 1e9;
/** Rollout layout shared by our Doom runs and Sample Factory's. */
const DOOM_WORKERS = navigator.hardwareConcurrency || 2;
const DOOM_ENVS_PER_WORKER = 8;

/** APPO on CartPole-v1: the settings of `tests/algos_appo_test.ts`. */
const CARTPOLE_APPO: Partial<AppoOptions> & { envId: string } = {
  envId: "CartPole-v1",
  envModules: [CLASSIC_MODULE],
  numWorkers: 2,
  numEnvsPerWorker: 8,
  totalFrames: 250_000,
  stopAtReturn: 500,
  stopAtReturnEpisodes: 100,
  rnnSize: 0,
  mlpLayers: [64, 64],
  nonlinearity: "tanh",
  initialization: "cleanrl",
  batchSize: 512,
  numEpochs: 4,
  learnerChunk: 0,
  learningRate: 1e-3,
  lrSchedule: "linear",
  valueBootstrap: true,
  clipRatio: 0.2,
  clipValue: 1,
  explorationLoss: "entropy",
  explorationLossCoeff: 0,
  seed: 1,
};

const USAGE = `Usage: deno task bench:learn [options]

  --only <runs>         comma-separated subset of: ${RUNS.join(", ")} (default: all)
  --doom-minutes <n>    doom_basic APPO wall time (default 2)
  --frames <n>          doom_health_gathering_supreme frames (default 4000000)
  --hgs-minutes <n>     also stop doom_health_gathering_supreme after this wall time (default: no limit)
  --eval-every <s>      seconds between doom_health_gathering_supreme evaluations (default 300)
  --eval-episodes <n>   Doom evaluation episodes (default 10)
  --minutes <n>         wall time of each Pong run (default 10)
  --sf-env <id>         Doom env of the Sample Factory comparison (default doom_basic)
  --sf-minutes <n>      wall time of each side of the comparison (default 3)
  --sf-rounds <n>       alternate the two sides this many times and report the median ratio (default 1)
  --matmul-precision <highest|medium>
                        our Doom APPO runs' GEMM precision (default highest: float32; medium: bfloat16 products)
  --seed <n>            seed of our Doom APPO runs (default 0)
  -h, --help            show this help`;

/** `load 1.23 0.98 0.75` from /proc/loadavg (empty elsewhere). */
function load(): string {
  try {
    return `load ${Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ")}`;
  } catch {
    return "load n/a";
  }
}

function meanStd(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { mean, std: Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length) };
}

/** A `log` that prefixes each progress line with the run and its wall time. */
function prefixed(name: string, start: number): (line: string) => void {
  return (line) => console.log(`  [${name} ${((performance.now() - start) / 1000).toFixed(0)}s] ${line}`);
}

function num(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`--${name} must be a positive number, got '${value}'`);
    Deno.exit(2);
  }
  return n;
}

// ---------------------------------------------------------------- CartPole

async function cartpoleRun(
  name: string,
  train: (runsDir: string) => Promise<TrainResult<Policy>>,
): Promise<void> {
  const runsDir = await Deno.makeTempDir({ prefix: "learn_bench_" });
  try {
    const start = performance.now();
    const result = await train(runsDir);
    const trainS = (performance.now() - start) / 1000;
    using env = make("CartPole-v1");
    const { mean, std } = evaluate(result.policy, env, { episodes: 20, deterministic: true, seed: 10_000 });
    report(name, mean, std, (performance.now() - start) / 1000, trainS, result.globalStep);
  } finally {
    await Deno.remove(runsDir, { recursive: true });
  }
}

function report(name: string, mean: number, std: number, wall: number, trainS: number, steps: number): void {
  const solved = mean >= 475;
  console.log(
    `cartpole ${name.padEnd(4)}: ${solved ? "solved" : "NOT solved"} (eval ${mean.toFixed(1)} ± ${std.toFixed(1)}, ` +
      `20 episodes) at ${wall.toFixed(1)} s wall (train ${trainS.toFixed(1)} s, ${steps} steps, ` +
      `${(steps / trainS).toFixed(0)} steps/s) | ratio = 60 / wall = ${
        solved ? (CARTPOLE_GOAL_S / wall).toFixed(2) : "n/a"
      } (goal >= 1) | ${load()}`,
  );
}

async function cartpole(): Promise<void> {
  setBlasThreads(1); // tiny networks: BLAS threads cost more than they save
  const quiet = { seed: 1, tensorboard: false, handleSigint: false };
  await cartpoleRun("dqn", (runsDir) => trainDqn({ ...CARTPOLE_DQN, ...quiet, runsDir }));
  await cartpoleRun("a2c", (runsDir) => trainA2c({ ...CARTPOLE_A2C, ...quiet, runsDir }));
  await cartpoleRun("ppo", (runsDir) => trainPpo({ ...CARTPOLE_PPO, ...quiet, runsDir }));
  const runDir = await Deno.makeTempDir({ prefix: "learn_bench_" });
  try {
    const start = performance.now();
    const result = await trainAppo({ ...CARTPOLE_APPO, runDir, tensorboard: false, handleSignals: false });
    const trainS = (performance.now() - start) / 1000;
    const { mean, std } = meanStd(evaluateAppo(result.model, "CartPole-v1", { episodes: 20 }));
    report("appo", mean, std, (performance.now() - start) / 1000, trainS, result.frames);
  } finally {
    await Deno.remove(runDir, { recursive: true });
  }
}

// ---------------------------------------------------------------- Doom

/** Evaluates a run's latest checkpoint or best policy in a separate process (so training keeps its threads). */
async function evalInProcess(
  runDir: string,
  episodes: number,
  kind: "latest" | "best" = "latest",
): Promise<{ frames: number; returns: number[] }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      "--eval-appo",
      runDir,
      "--eval-episodes",
      String(episodes),
      "--eval-kind",
      kind,
    ],
    stdout: "piped",
    stderr: "piped",
    env: { ARCADIA_QUIET: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    throw new Error(`evaluation failed (exit ${out.code}): ${new TextDecoder().decode(out.stderr).slice(-2000)}`);
  }
  return JSON.parse(text.split("\n").pop()!);
}

/** `--eval-appo <runDir>`: the evaluation process; prints `{ frames, returns }` as its last line. */
async function evalMain(runDir: string, episodes: number, kind: "latest" | "best"): Promise<void> {
  setBlasThreads(1);
  await ensureVizdoom();
  const { model, options, frames } = await loadAppoModel(runDir, { kind });
  // Sampled actions and the unshaped score (`true_objective`): what Sample Factory's enjoy script, whose numbers the
  // Hugging Face course bar is set against, reports by default.
  const returns = evaluateAppo(model, options.envId, { episodes, envKwargs: options.envKwargs, deterministic: false });
  console.log(JSON.stringify({ frames, returns }));
}

interface DoomRun {
  env: string;
  frames: number;
  minutes?: number;
  evalEveryS: number;
  episodes: number;
  /** Print mean − std against the course bar and the 30 minute goal. */
  course: boolean;
}

/** Trains APPO on a Doom env with periodic evaluations; returns its result (frames/s in `fps`). */
async function doomAppo(r: DoomRun): Promise<AppoResult> {
  await ensureVizdoom();
  setBlasThreads(1); // the learner shares two cores with the rollout Workers
  const runDir = await Deno.makeTempDir({ prefix: `learn_bench_${r.env}_` });
  const start = performance.now();
  const controller = new AbortController();
  const timer = r.minutes ? setTimeout(() => controller.abort(), r.minutes * 60_000) : undefined;
  const evalLine = (at: string, frames: number, returns: number[]) => {
    const { mean, std } = meanStd(returns);
    const min = (performance.now() - start) / 60_000;
    const course = r.course
      ? ` mean-std ${(mean - std).toFixed(2)} (course bar >= ${HF_BAR}: ${mean - std >= HF_BAR ? "passed" : "not yet"})`
      : "";
    console.log(
      `${r.env} eval (${at}) @ ${(frames / 1e6).toFixed(2)}M frames, ${min.toFixed(1)} min wall: ` +
        `mean ${mean.toFixed(2)} std ${std.toFixed(2)} over ${returns.length} episodes${course} | ${load()}`,
    );
  };
  // Periodic evaluations of each new checkpoint, one at a time, beside training.
  let training = true, lastMtime = 0, inFlight: Promise<void> | undefined;
  const checkpoint = `${runDir}/checkpoint.safetensors`;
  const poll = setInterval(() => {
    if (!training || inFlight) return;
    let mtime = 0;
    try {
      mtime = Deno.statSync(checkpoint).mtime?.getTime() ?? 0;
    } catch { /* none yet */ }
    if (mtime <= lastMtime) return;
    lastMtime = mtime;
    inFlight = evalInProcess(runDir, r.episodes)
      .then(({ frames, returns }) => evalLine("periodic", frames, returns))
      .catch((e) => console.log(`${r.env} eval failed: ${(e as Error).message}`))
      .finally(() => inFlight = undefined);
  }, 2000);
  let result: AppoResult;
  try {
    result = await trainAppo({
      envId: r.env,
      envModules: [DOOM_MODULE],
      totalFrames: r.frames,
      numWorkers: DOOM_WORKERS,
      numEnvsPerWorker: DOOM_ENVS_PER_WORKER,
      runDir,
      tensorboard: false,
      checkpointIntervalS: r.evalEveryS,
      signal: controller.signal,
      log: prefixed(r.env, start),
      matmulPrecision,
      seed: doomSeed,
    });
  } finally {
    training = false;
    clearTimeout(timer);
    clearInterval(poll);
  }
  const wallS = (performance.now() - start) / 1000;
  await inFlight;
  try {
    const { frames, returns } = await evalInProcess(runDir, r.episodes);
    evalLine("final", frames, returns);
    // Sample Factory keeps the policy with the best 100-episode training return too; the course evaluates either.
    if (r.course && result.best) {
      const best = await evalInProcess(runDir, r.episodes, "best");
      evalLine(`best policy, training mean ${result.best.meanReturn.toFixed(2)}`, best.frames, best.returns);
    }
  } catch (e) {
    console.log(`${r.env} final eval failed: ${(e as Error).message}`);
  }
  const goal = r.course
    ? ` | 4M frames at this rate: ${(4e6 / result.fps / 60).toFixed(1)} min vs the ${HGS_GOAL_MIN} min goal, ratio = ${
      (HGS_GOAL_MIN * 60 * result.fps / 4e6).toFixed(2)
    }`
    : "";
  console.log(
    `${r.env} appo: ${result.frames} frames in ${(wallS / 60).toFixed(1)} min wall at ${result.fps.toFixed(0)} ` +
      `frames/s (${DOOM_WORKERS} workers x ${DOOM_ENVS_PER_WORKER} envs, matmul precision ${matmulPrecision}, ` +
      `seed ${doomSeed}, ` +
      `stopped by ${result.stoppedBy})${goal} | ` +
      load(),
  );
  await Deno.remove(runDir, { recursive: true });
  return result;
}

// ---------------------------------------------------------------- Pong

async function pong(algo: "dqn" | "a2c", minutes: number): Promise<void> {
  await ensureAle();
  setBlasThreads(2);
  const runsDir = await Deno.makeTempDir({ prefix: "learn_bench_pong_" });
  const numEnvs = algo === "dqn" ? 1 : A2C_DEFAULTS.numEnvs;
  const envs = new SyncVectorEnv(Array.from({ length: numEnvs }, () => () => makeAtari("pong")));
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), minutes * 60_000);
  const start = performance.now();
  try {
    const common = {
      envId: "ALE/Pong-v5",
      envs,
      numEnvs,
      runsDir,
      totalTimesteps: 10_000_000,
      tensorboard: false,
      handleSigint: false,
      signal: controller.signal,
      log: prefixed(`pong ${algo}`, start),
    };
    const result = algo === "dqn"
      ? await trainDqn({ ...DQN_DEFAULTS, ...common })
      : await trainA2c({ ...A2C_DEFAULTS, ...common });
    const wallS = (performance.now() - start) / 1000;
    const returns = readMetrics(result.runDir).map((m) => m["charts/episodic_return"]).filter((x) => x !== undefined);
    const last = returns.slice(-10);
    const score = last.length ? meanStd(last).mean.toFixed(2) : "n/a";
    console.log(
      `pong ${algo}: ${result.globalStep} steps (${result.globalStep * 4} frames) in ${(wallS / 60).toFixed(1)} min ` +
        `at ${(result.globalStep * 4 / wallS).toFixed(0)} frames/s | ${returns.length} episodes, mean return of the ` +
        `last ${last.length}: ${score} | ${load()}`,
    );
  } finally {
    clearTimeout(timer);
    envs.close();
    await Deno.remove(runsDir, { recursive: true });
  }
}

// ---------------------------------------------------------------- Sample Factory

async function sampleFactory(env: string, minutes: number, rounds: number, ours: AppoResult | undefined) {
  await ensureVizdoom();
  const sf = await ensureSampleFactory();
  if ("error" in sf) {
    console.log(`sf ${env}: Sample Factory cannot run here: ${sf.error} | ${load()}`);
    return;
  }
  const ratios: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    // Ours first (this invocation's run of the env counts as round 1's), then Sample Factory right after it.
    if (round > 1 || !ours) {
      ours = await doomAppo({ env, frames: UNBOUNDED_FRAMES, minutes, evalEveryS: 0, episodes: 10, course: false });
    }
    const trainDir = await Deno.makeTempDir({ prefix: "learn_bench_sf_" });
    const start = performance.now();
    let res;
    try {
      res = await runSampleFactory(sf.python, {
        env,
        seconds: Math.round(minutes * 60),
        numWorkers: DOOM_WORKERS,
        numEnvsPerWorker: DOOM_ENVS_PER_WORKER,
        rollout: 32,
        batchSize: 1024,
        trainDir,
        onProgress: prefixed(`sf ${env}`, start),
      });
    } finally {
      await Deno.remove(trainDir, { recursive: true });
    }
    if (!Number.isFinite(res.fps) && !res.window) {
      console.log(`sf ${env}: Sample Factory reported no frames/s (exit ${res.code}); its last lines:\n${res.tail}`);
      return;
    }
    const sfFps = Number.isFinite(res.fps) ? res.fps : res.window!.s300;
    ratios.push(ours.fps / sfFps);
    console.log(
      `sf ${env}${rounds > 1 ? ` (round ${round}/${rounds})` : ""}: Sample Factory ${sf.versions}: ` +
        `${sfFps.toFixed(0)} frames/s (${res.frames} frames, ${res.wallS.toFixed(0)} s process wall; last window ` +
        `10s/60s/300s ${res.window?.s10}/${res.window?.s60}/${res.window?.s300}) | Arcadia APPO ` +
        `${ours.fps.toFixed(0)} frames/s (matmul precision ${matmulPrecision}) | ratio = ${
          (ours.fps / sfFps).toFixed(2)
        } (goal >= ${SF_GOAL}) | ${load()}`,
    );
  }
  if (rounds > 1) {
    console.log(
      `sf ${env}: median ratio over ${rounds} alternating rounds = ${median(ratios).toFixed(2)} (goal >= ${SF_GOAL}; ` +
        `per round ${ratios.map((r) => r.toFixed(2)).join(", ")}) | ${load()}`,
    );
  }
}

// ---------------------------------------------------------------- main

async function main(argv: string[]): Promise<number> {
  let v;
  try {
    v = parseArgs({
      args: argv,
      options: {
        only: { type: "string" },
        "doom-minutes": { type: "string", default: "2" },
        frames: { type: "string", default: "4000000" },
        "hgs-minutes": { type: "string" },
        "eval-every": { type: "string", default: "300" },
        "eval-episodes": { type: "string", default: "10" },
        minutes: { type: "string", default: "10" },
        "sf-env": { type: "string", default: "doom_basic" },
        "sf-minutes": { type: "string", default: "3" },
        "sf-rounds": { type: "string", default: "1" },
        "matmul-precision": { type: "string", default: "highest" },
        "eval-appo": { type: "string" },
        "eval-kind": { type: "string", default: "latest" },
        seed: { type: "string", default: "0" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    }).values;
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  const episodes = num("eval-episodes", v["eval-episodes"]);
  if (v["matmul-precision"] !== "highest" && v["matmul-precision"] !== "medium") {
    console.error(`--matmul-precision: "${v["matmul-precision"]}" is not highest or medium`);
    return 2;
  }
  matmulPrecision = v["matmul-precision"];
  doomSeed = Number(v.seed);
  if (!Number.isInteger(doomSeed) || doomSeed < 0) {
    console.error(`--seed must be a non-negative integer, got '${v.seed}'`);
    return 2;
  }
  if (v["eval-appo"]) {
    await evalMain(v["eval-appo"], episodes, v["eval-kind"] === "best" ? "best" : "latest");
    return 0;
  }
  const only = v.only?.split(",").map((s) => s.trim()).filter(Boolean);
  const unknown = only?.filter((n) => !(RUNS as readonly string[]).includes(n)) ?? [];
  if (unknown.length) {
    console.error(`--only: unknown run ${unknown.join(", ")}; valid: ${RUNS.join(", ")}`);
    return 2;
  }
  const selected = (name: RunName) => !only || only.includes(name);
  const ours = new Map<string, AppoResult>();
  console.log(`bench:learn on ${navigator.hardwareConcurrency} cores | ${load()}`);
  if (selected("cartpole")) await cartpole();
  if (selected("doom_basic")) {
    const minutes = num("doom-minutes", v["doom-minutes"]);
    ours.set(
      "doom_basic",
      await doomAppo({ env: "doom_basic", frames: UNBOUNDED_FRAMES, minutes, evalEveryS: 0, episodes, course: false }),
    );
  }
  if (selected("doom_health_gathering_supreme")) {
    const env = "doom_health_gathering_supreme";
    ours.set(
      env,
      await doomAppo({
        env,
        frames: num("frames", v.frames),
        minutes: v["hgs-minutes"] ? num("hgs-minutes", v["hgs-minutes"]) : undefined,
        evalEveryS: num("eval-every", v["eval-every"]),
        episodes,
        course: true,
      }),
    );
  }
  if (selected("pong_dqn")) await pong("dqn", num("minutes", v.minutes));
  if (selected("pong_a2c")) await pong("a2c", num("minutes", v.minutes));
  if (selected("sf")) {
    const rounds = Math.max(1, Math.floor(num("sf-rounds", v["sf-rounds"])));
    await sampleFactory(v["sf-env"], num("sf-minutes", v["sf-minutes"]), rounds, ours.get(v["sf-env"]));
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));

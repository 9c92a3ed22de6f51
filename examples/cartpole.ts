/**
 * Train CartPole-v1 in seconds with DQN, A2C or PPO, then evaluate the greedy policy.
 *
 * ```sh
 * deno run -A examples/cartpole.ts --algo ppo
 * deno run -A examples/cartpole.ts --algo dqn --seed 2 --total-timesteps 40000
 * deno run -A examples/cartpole.ts --algo a2c --resume runs/CartPole-v1__a2c__1__1700000000
 * ```
 *
 * Ctrl-C stops training cleanly: the run's checkpoint is written first, and `--resume <run dir>` continues it.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fail as failWith, intFlag } from "./_cli.ts";
import { type A2cOptions, trainA2c } from "../algos/a2c.ts";
import { type DqnOptions, trainDqn } from "../algos/dqn.ts";
import { evaluate } from "../algos/evaluate.ts";
import { type PpoOptions, trainPpo } from "../algos/ppo.ts";
import { make } from "../envs/mod.ts";
import { setBlasThreads } from "../models/mod.ts";

/** Hyperparameters tuned to solve CartPole-v1 (mean return >= 475) quickly on 2 CPU cores. */
export const CARTPOLE_PPO: Partial<PpoOptions> = {
  envId: "CartPole-v1",
  totalTimesteps: 100_000,
  numEnvs: 8,
  numSteps: 128,
  learningRate: 1.5e-3,
  numMinibatches: 8,
  updateEpochs: 4,
};

/** A2C on CartPole: a larger learning rate than the Atari defaults (16 of 16 seeds tried solve it). */
export const CARTPOLE_A2C: Partial<A2cOptions> = {
  envId: "CartPole-v1",
  totalTimesteps: 100_000,
  numEnvs: 8,
  learningRate: 2e-3,
};

/** DQN on CartPole: CleanRL `dqn.py` settings, shortened, with 3-step returns and Double DQN. */
export const CARTPOLE_DQN: Partial<DqnOptions> = {
  envId: "CartPole-v1",
  totalTimesteps: 32_000,
  bufferSize: 10_000,
  learningRate: 1e-3,
  batchSize: 64,
  learningStarts: 1000,
  trainFrequency: 1,
  targetNetworkFrequency: 250,
  startE: 1,
  endE: 0.02,
  explorationFraction: 0.25,
  nStep: 3,
  doubleDqn: true,
  frameStack: 1,
  policy: "mlp",
  hidden: [64, 64],
};

const ALGOS = ["dqn", "a2c", "ppo"] as const;
type Algo = typeof ALGOS[number];

const USAGE = `Usage: deno run -A examples/cartpole.ts [options]

Options:
  --algo <dqn|a2c|ppo>       learner (default ppo)
  --seed <int>               seed (default 1)
  --total-timesteps <int>    env steps to train (default: tuned per algorithm)
  --eval-episodes <int>      greedy evaluation episodes afterwards (default 20)
  --runs-dir <dir>           parent of run directories (default runs)
  --resume <path>            continue a run directory or checkpoint file
  --checkpoint-every <int>   write a checkpoint every this many steps (default 0: only at the end)
  --no-tensorboard           write metrics.jsonl only
  -h, --help                 show this help`;

/** Exits with code 2, naming the bad flag, then prints the usage. */
function fail(message: string): never {
  failWith(message, USAGE);
}

async function main(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        algo: { type: "string", default: "ppo" },
        seed: { type: "string", default: "1" },
        "total-timesteps": { type: "string" },
        "eval-episodes": { type: "string", default: "20" },
        "runs-dir": { type: "string", default: "runs" },
        resume: { type: "string" },
        "checkpoint-every": { type: "string", default: "0" },
        "no-tensorboard": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (e) {
    // node:util names the offending flag ("Unknown option '--x'", "Option '--seed <value>' argument missing").
    fail((e as Error).message);
  }
  const v = parsed.values;
  if (v.help) {
    console.log(USAGE);
    return;
  }
  if (!ALGOS.includes(v.algo as Algo)) fail(`--algo must be one of ${ALGOS.join(", ")}, got '${v.algo}'`);
  const algo = v.algo as Algo;
  const seed = intFlag("seed", v.seed, 0)!;
  const totalTimesteps = intFlag("total-timesteps", v["total-timesteps"], 1);
  const evalEpisodes = intFlag("eval-episodes", v["eval-episodes"], 0)!;
  const checkpointEvery = intFlag("checkpoint-every", v["checkpoint-every"], 0)!;

  setBlasThreads(1); // these networks are tiny: BLAS threads cost more than they save
  const common = {
    envId: "CartPole-v1",
    seed,
    runsDir: v["runs-dir"],
    resume: v.resume,
    checkpointEvery,
    tensorboard: !v["no-tensorboard"],
    log: (line: string) => console.log(line),
    ...(totalTimesteps !== undefined ? { totalTimesteps } : {}),
  };
  const start = performance.now();
  const result = algo === "dqn"
    ? await trainDqn({ ...CARTPOLE_DQN, ...common })
    : algo === "a2c"
    ? await trainA2c({ ...CARTPOLE_A2C, ...common })
    : await trainPpo({ ...CARTPOLE_PPO, ...common });
  const seconds = (performance.now() - start) / 1000;
  console.log(`trained ${result.globalStep} steps in ${seconds.toFixed(1)} s; run: ${result.runDir}`);
  if (result.stoppedBy) {
    console.log(`stopped by ${result.stoppedBy}; resume with --resume ${result.runDir}`);
    return;
  }
  if (evalEpisodes > 0) {
    using env = make("CartPole-v1");
    const ev = evaluate(result.policy, env, { episodes: evalEpisodes, deterministic: true, seed: seed + 1000 });
    console.log(`evaluation over ${evalEpisodes} episodes: ${ev.mean.toFixed(1)} ± ${ev.std.toFixed(1)}`);
  }
}

if (import.meta.main) await main(Deno.args);

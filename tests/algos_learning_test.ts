/**
 * Learning tests: each learner solves CartPole-v1 (mean greedy return >= 475 over 20 episodes) from a fixed seed
 * within a fixed step budget, with the tuned settings of examples/cartpole.ts. The 60 s wall-time goal is measured by
 * `deno task bench:learn` (a timed assertion here would fail on a loaded machine without the code being wrong).
 */
import assert from "node:assert/strict";
import { evaluate } from "../algos/evaluate.ts";
import { trainA2c } from "../algos/a2c.ts";
import { trainDqn } from "../algos/dqn.ts";
import { trainPpo } from "../algos/ppo.ts";
import type { Policy } from "../algos/policies.ts";
import type { TrainResult } from "../algos/_training.ts";
import { make } from "../envs/mod.ts";
import { setBlasThreads } from "../models/mod.ts";
import { CARTPOLE_A2C, CARTPOLE_DQN, CARTPOLE_PPO } from "../examples/cartpole.ts";

async function solves(name: string, train: (runsDir: string) => Promise<TrainResult<Policy>>): Promise<void> {
  setBlasThreads(1); // tiny networks: BLAS threading only adds overhead (and tests run in parallel)
  const runsDir = await Deno.makeTempDir();
  const start = performance.now();
  const { policy } = await train(runsDir);
  const trainS = (performance.now() - start) / 1000;
  using env = make("CartPole-v1");
  const { mean, std } = evaluate(policy, env, { episodes: 20, deterministic: true, seed: 10_000 });
  console.log(`${name}: train ${trainS.toFixed(1)} s, eval ${mean.toFixed(1)} ± ${std.toFixed(1)}`);
  await Deno.remove(runsDir, { recursive: true });
  assert.ok(mean >= 475, `${name}: mean return ${mean} ± ${std} over 20 episodes, need >= 475`);
}

const quiet = { seed: 1, tensorboard: false, handleSigint: false };

Deno.test("PPO solves CartPole-v1 within its step budget", async () => {
  await solves("ppo", (runsDir) => trainPpo({ ...CARTPOLE_PPO, ...quiet, runsDir }));
});

Deno.test("A2C solves CartPole-v1 within its step budget", async () => {
  await solves("a2c", (runsDir) => trainA2c({ ...CARTPOLE_A2C, ...quiet, runsDir }));
});

Deno.test("DQN solves CartPole-v1 within its step budget", async () => {
  await solves("dqn", (runsDir) => trainDqn({ ...CARTPOLE_DQN, ...quiet, runsDir }));
});

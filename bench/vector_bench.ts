/**
 * Vector env throughput on CartPole-v1: `deno run -A bench/vector_bench.ts [--seconds 2] [--rounds 10]`.
 *
 * For 1, 8 and 64 envs it prints steps/s (env steps, i.e. batched steps x numEnvs) of:
 * - `in-thread`: the same envs (`make("CartPole-v1")`, TimeLimit included) stepped in a plain loop with same-step
 *   autoreset and no vector machinery (the baseline);
 * - `SyncVectorEnv` (`stepSync`, and `await step`);
 * - `WorkerVectorEnv` with 1 Worker, with the default Worker count, and with 1 Worker + the main thread stepping.
 *
 * Overhead of the Worker backend per batched step, in µs:
 * - `vs in-thread`: time per batched step with ONE Worker minus time per batched step of the same envs in-thread.
 *   One Worker does exactly the in-thread work in another thread, so the difference is the cost of going through
 *   the Worker (action validation and copy, Atomics signalling both ways, wake-ups, cache traffic).
 * - `vs ideal split`: time per batched step of the default configuration minus the in-thread time of its largest
 *   block of envs (what perfectly parallel threads with zero communication would take).
 *
 * @module
 */

import { parseArgs } from "node:util";
import "../envs/classic/mod.ts";
import { make } from "../envs/registry.ts";
import type { Env } from "../envs/core.ts";
import { SyncVectorEnv, type VectorEnv, WorkerVectorEnv, type WorkerVectorEnvOptions } from "../envs/vector/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { seconds: { type: "string", default: "2" }, rounds: { type: "string", default: "10" } },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const ID = "CartPole-v1";
const BATCHES = 64; // distinct pre-drawn action batches, cycled

function actionBatches(numEnvs: number): Int32Array[] {
  let x = 12345;
  return Array.from({ length: BATCHES }, () =>
    Int32Array.from({ length: numEnvs }, () => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x >>> 31;
    }));
}

/**
 * Runs `step` for about SECONDS after a warm-up, in ROUNDS rounds; returns the best round's µs per call (the
 * minimum is the least disturbed by other processes on a shared machine).
 */
async function timeIt(step: (k: number) => unknown | Promise<unknown>): Promise<number> {
  for (let k = 0; k < 500; k++) await step(k);
  let best = Infinity, calls = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const start = performance.now(), until = start + (SECONDS * 1000) / ROUNDS;
    let now = start, n = 0;
    while (now < until) {
      for (let k = 0; k < 50; k++) await step(calls + k);
      calls += 50;
      n += 50;
      now = performance.now();
    }
    best = Math.min(best, ((now - start) * 1000) / n);
  }
  return best;
}

/** The baseline: the envs stepped in this thread with no vector machinery. */
async function inThread(numEnvs: number, actions: Int32Array[]): Promise<number> {
  const envs: Env<unknown, unknown>[] = Array.from({ length: numEnvs }, () => make(ID));
  envs.forEach((env, i) => env.reset({ seed: i }));
  const obs = new Float32Array(numEnvs * 4);
  const us = await timeIt((k) => {
    const a = actions[k % BATCHES];
    for (let i = 0; i < numEnvs; i++) {
      const [o, , terminated, truncated] = envs[i].step(a[i]);
      obs.set((terminated || truncated ? envs[i].reset()[0] : o) as Float32Array, i * 4);
    }
  });
  for (const env of envs) env.close();
  return us;
}

async function vectorTime(envs: VectorEnv, actions: Int32Array[], sync = false): Promise<number> {
  await envs.reset({ seed: 0 });
  if (sync && envs instanceof SyncVectorEnv) return await timeIt((k) => envs.stepSync(actions[k % BATCHES]));
  return await timeIt((k) => envs.step(actions[k % BATCHES]));
}

async function workerTime(numEnvs: number, actions: Int32Array[], options: Partial<WorkerVectorEnvOptions>) {
  await using envs = await WorkerVectorEnv.create(ID, { numEnvs, ...options });
  return { us: await vectorTime(envs, actions), workers: envs.numWorkers };
}

function line(name: string, numEnvs: number, us: number, extra = ""): void {
  const sps = (numEnvs * 1e6) / us;
  console.log(
    `${ID} envs=${String(numEnvs).padStart(2)} ${name.padEnd(34)} ${sps.toFixed(0).padStart(9)} steps/s ` +
      `${us.toFixed(2).padStart(8)} µs/batch${extra}`,
  );
}

console.log(
  `# ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}; each figure is the best of ${ROUNDS} rounds ` +
    `over ${SECONDS} s; load average ${Deno.loadavg().map((x) => x.toFixed(1)).join(" ")}`,
);
for (const numEnvs of [1, 8, 64]) {
  const actions = actionBatches(numEnvs);
  const base = await inThread(numEnvs, actions);
  line("in-thread (baseline)", numEnvs, base);
  {
    using sync = new SyncVectorEnv(ID, { numEnvs });
    line("SyncVectorEnv stepSync", numEnvs, await vectorTime(sync, actions, true));
    line("SyncVectorEnv await step", numEnvs, await vectorTime(sync, actions));
  }
  const one = await workerTime(numEnvs, actions, { numWorkers: 1 });
  line("WorkerVectorEnv 1 worker", numEnvs, one.us, `  overhead vs in-thread ${(one.us - base).toFixed(2)} µs`);
  const dflt = await workerTime(numEnvs, actions, {});
  const largest = Math.ceil(numEnvs / dflt.workers);
  line(
    `WorkerVectorEnv ${dflt.workers} workers (default)`,
    numEnvs,
    dflt.us,
    `  overhead vs ideal split ${(dflt.us - (base * largest) / numEnvs).toFixed(2)} µs`,
  );
  if (numEnvs > 1) {
    const main = await workerTime(numEnvs, actions, { numWorkers: 1, stepInMainThread: true });
    const largestMain = Math.ceil(numEnvs / 2);
    line(
      "WorkerVectorEnv 1 worker + main",
      numEnvs,
      main.us,
      `  overhead vs ideal split ${(main.us - (base * largestMain) / numEnvs).toFixed(2)} µs`,
    );
  }
  const spin = await workerTime(numEnvs, actions, { numWorkers: 1, spinMicros: 50 });
  line(
    "WorkerVectorEnv 1 worker, spin 50µs",
    numEnvs,
    spin.us,
    `  overhead vs in-thread ${(spin.us - base).toFixed(2)} µs`,
  );
  const async_ = await workerTime(numEnvs, actions, { numWorkers: 1, wait: "async" });
  line(
    "WorkerVectorEnv 1 worker, async",
    numEnvs,
    async_.us,
    `  overhead vs in-thread ${(async_.us - base).toFixed(2)} µs`,
  );
}

/**
 * Vector env throughput on CartPole-v1: `deno run -A bench/vector_bench.ts [--seconds 16] [--rounds 80]`.
 *
 * For 1, 8 and 64 envs it prints steps/s (env steps: batched steps x numEnvs) and µs per batched step of:
 * - `in-thread`: the same envs (`make("CartPole-v1")`, TimeLimit included) stepped in a plain loop with same-step
 *   autoreset and no vector machinery (the baseline);
 * - `SyncVectorEnv` (`stepSync`, and `await step`);
 * - `WorkerVectorEnv` with 1 Worker, with the default Worker count, with 1 Worker + the main thread stepping a block,
 *   with a 50 µs spin before sleeping, and with `wait: "async"`.
 *
 * Overhead of the Worker backend per batched step, in µs:
 * - `vs in-thread`: time per batched step with ONE Worker minus time per batched step of the same envs in-thread.
 *   One Worker does exactly the in-thread work in another thread, so the difference is the cost of going through
 *   the Worker (action validation and copy, Atomics signalling both ways, thread wake-ups, cache traffic).
 * - `vs ideal split`: time per batched step with several stepping threads minus the in-thread time of the largest
 *   block of envs (what perfectly parallel threads with zero communication would take).
 *
 * `CPU` figures are the process's CPU time (all threads, `process.cpuUsage()`) per batched step: on a loaded machine
 * they move less than wall-clock time, and their difference is the CPU cost of the Worker round trip.
 *
 * All configurations of one env count are measured in interleaved rounds (round-robin, `seconds / rounds` per
 * round, split between them) and each figure is its best round: the machine is shared, and the minimum is the
 * measurement least disturbed by other processes, taken under the same conditions for every configuration.
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import "../envs/classic/mod.ts";
import { make } from "../envs/registry.ts";
import type { Env } from "../envs/core.ts";
import { SyncVectorEnv, WorkerVectorEnv, type WorkerVectorEnvOptions } from "../envs/vector/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { seconds: { type: "string", default: "16" }, rounds: { type: "string", default: "80" } },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const ID = "CartPole-v1";
const BATCHES = 64; // distinct pre-drawn action batches, cycled

/** One configuration: a batched step and what to free afterwards. */
interface Case {
  name: string;
  step: (k: number) => unknown;
  /** Threads stepping envs, for the ideal-split overhead (1: compared with the in-thread baseline). */
  threads: number;
  dispose: () => void;
  /** Best wall-clock µs per batched step. */
  best: number;
  /** Best CPU µs (all threads of this process) per batched step. */
  bestCpu: number;
}

function actionBatches(numEnvs: number): Int32Array[] {
  let x = 12345;
  return Array.from({ length: BATCHES }, () =>
    Int32Array.from({ length: numEnvs }, () => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x >>> 31;
    }));
}

/** The baseline: the envs stepped in this thread with no vector machinery. */
function inThread(numEnvs: number, actions: Int32Array[]): Case {
  const envs: Env<unknown, unknown>[] = Array.from({ length: numEnvs }, () => make(ID));
  envs.forEach((env, i) => env.reset({ seed: i }));
  const obs = new Float32Array(numEnvs * 4);
  return {
    name: "in-thread (baseline)",
    threads: 0,
    best: Infinity,
    bestCpu: Infinity,
    step: (k) => {
      const a = actions[k % BATCHES];
      for (let i = 0; i < numEnvs; i++) {
        const [o, , terminated, truncated] = envs[i].step(a[i]);
        obs.set((terminated || truncated ? envs[i].reset()[0] : o) as Float32Array, i * 4);
      }
    },
    dispose: () => envs.forEach((env) => env.close()),
  };
}

function syncCase(numEnvs: number, actions: Int32Array[], promise: boolean): Case {
  const envs = new SyncVectorEnv(ID, { numEnvs });
  envs.resetSync({ seed: 0 });
  return {
    name: promise ? "SyncVectorEnv await step" : "SyncVectorEnv stepSync",
    threads: 0,
    best: Infinity,
    bestCpu: Infinity,
    step: promise ? (k) => envs.step(actions[k % BATCHES]) : (k) => envs.stepSync(actions[k % BATCHES]),
    dispose: () => envs.close(),
  };
}

async function workerCase(
  name: string,
  numEnvs: number,
  actions: Int32Array[],
  options: Partial<WorkerVectorEnvOptions>,
): Promise<Case> {
  const envs = await WorkerVectorEnv.create(ID, { numEnvs, ...options });
  await envs.reset({ seed: 0 });
  const threads = envs.numWorkers + (options.stepInMainThread ? 1 : 0);
  return {
    name: name.replace("%d workers", envs.numWorkers === 1 ? "1 worker" : `${envs.numWorkers} workers`),
    threads,
    best: Infinity,
    bestCpu: Infinity,
    step: (k) => envs.step(actions[k % BATCHES]),
    dispose: () => envs.close(),
  };
}

/** Runs `c` for about `ms` milliseconds and updates its best wall-clock and CPU µs per batched step. */
async function run(c: Case, ms: number, offset: number): Promise<void> {
  const cpu = process.cpuUsage(), start = performance.now(), until = start + ms;
  let now = start, n = 0;
  while (now < until) {
    for (let k = 0; k < 20; k++) await c.step(offset + n + k);
    n += 20;
    now = performance.now();
  }
  const used = process.cpuUsage(cpu);
  c.best = Math.min(c.best, ((now - start) * 1000) / n);
  c.bestCpu = Math.min(c.bestCpu, (used.user + used.system) / n);
}

function line(c: Case, numEnvs: number, extra: string): void {
  const sps = (numEnvs * 1e6) / c.best;
  console.log(
    `${ID} envs=${String(numEnvs).padStart(2)} ${c.name.padEnd(36)} ${sps.toFixed(0).padStart(9)} steps/s ` +
      `${c.best.toFixed(2).padStart(8)} µs/batch (CPU ${c.bestCpu.toFixed(2).padStart(7)} µs)${extra}`,
  );
}

console.log(
  `# ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}; best of ${ROUNDS} interleaved rounds over ` +
    `${SECONDS} s per env count; load average ${Deno.loadavg().map((x) => x.toFixed(1)).join(" ")}`,
);
for (const numEnvs of [1, 8, 64]) {
  const actions = actionBatches(numEnvs);
  const cases: Case[] = [
    inThread(numEnvs, actions),
    syncCase(numEnvs, actions, false),
    syncCase(numEnvs, actions, true),
    await workerCase("WorkerVectorEnv 1 worker", numEnvs, actions, { numWorkers: 1 }),
    await workerCase("WorkerVectorEnv %d workers (default)", numEnvs, actions, {}),
  ];
  if (numEnvs > 1) {
    cases.push(
      await workerCase("WorkerVectorEnv 1 worker + main thread", numEnvs, actions, {
        numWorkers: 1,
        stepInMainThread: true,
      }),
    );
  }
  cases.push(
    await workerCase("WorkerVectorEnv 1 worker, spin 50 µs", numEnvs, actions, { numWorkers: 1, spinMicros: 50 }),
    await workerCase("WorkerVectorEnv 1 worker, async wait", numEnvs, actions, { numWorkers: 1, wait: "async" }),
  );
  for (const c of cases) await run(c, 100, 0); // warm-up (JIT in every thread)
  for (const c of cases) c.best = c.bestCpu = Infinity;
  const ms = (SECONDS * 1000) / ROUNDS / cases.length;
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of cases) await run(c, ms, round * 1_000_003);
  }
  const base = cases[0].best, baseCpu = cases[0].bestCpu;
  for (const c of cases) {
    let extra = "";
    if (c.threads === 1) {
      extra = `  overhead vs in-thread ${(c.best - base).toFixed(2)} µs (CPU ${(c.bestCpu - baseCpu).toFixed(2)} µs)`;
    } else if (c.threads > 1) {
      const ideal = (base * Math.ceil(numEnvs / c.threads)) / numEnvs;
      extra = `  overhead vs ideal split ${(c.best - ideal).toFixed(2)} µs`;
    }
    line(c, numEnvs, extra);
    c.dispose();
  }
}

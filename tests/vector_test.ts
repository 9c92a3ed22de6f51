import assert from "node:assert/strict";
import "../envs/classic/mod.ts";
import { VectorTestEnv, type VectorTestOptions } from "../envs/vector/_testing.ts";
import {
  makeVectorEnv,
  SyncVectorEnv,
  type VectorEnv,
  type VectorStepResult,
  WorkerVectorEnv,
  type WorkerVectorEnvOptions,
} from "../envs/vector/mod.ts";
import { Box, MultiDiscrete } from "../envs/spaces.ts";

const TEST_MODULES = [import.meta.resolve("../envs/vector/_testing.ts")];
const OBS = 5; // VectorTestEnv's observation size

/** Records every Worker started, so tests can check that each one was terminated. */
class TrackedWorker extends Worker {
  static all: TrackedWorker[] = [];
  terminated = false;
  constructor(url: string | URL, options?: WorkerOptions) {
    super(url, options);
    TrackedWorker.all.push(this);
  }
  override terminate(): void {
    this.terminated = true;
    super.terminate();
  }
}
globalThis.Worker = TrackedWorker;

function assertAllWorkersTerminated(): void {
  const running = TrackedWorker.all.filter((w) => !w.terminated).length;
  assert.equal(running, 0, `${running} Worker(s) left running`);
}

function testWorkers(numEnvs: number, options: Partial<WorkerVectorEnvOptions> = {}, kwargs: VectorTestOptions = {}) {
  return WorkerVectorEnv.create("VectorTest-v0", {
    numEnvs,
    envModules: TEST_MODULES,
    kwargs: { ...kwargs },
    ...options,
  });
}

function snapshot(result: VectorStepResult) {
  const [obs, rewards, terminated, truncated, infos] = result;
  const done = Array.from(terminated, (t, i) => t || truncated[i]);
  const size = obs.length / rewards.length;
  return {
    obs: Array.from(obs),
    rewards: Array.from(rewards),
    terminated: Array.from(terminated),
    truncated: Array.from(truncated),
    // Rows of the infos are defined only where an episode ended.
    final: done.flatMap((d, i) => d ? Array.from(infos.finalObservation.subarray(i * size, (i + 1) * size)) : []),
    returns: done.flatMap((d, i) => d ? [infos.episodeReturn[i]] : []),
    lengths: done.flatMap((d, i) => d ? [infos.episodeLength[i]] : []),
  };
}

/** Steps both vector envs with the same action sequence (reseeding midway) and asserts identical results. */
async function assertSameTrajectories(
  a: VectorEnv,
  b: VectorEnv,
  steps: number,
  sample: (t: number) => number[],
  syncApi = false,
) {
  let ended = 0;
  for (const seed of [11, undefined, 200]) { // undefined: every env continues its generator
    const [oa] = await a.reset({ seed }), [ob] = syncApi ? b.resetSync({ seed }) : await b.reset({ seed });
    assert.deepEqual(Array.from(oa), Array.from(ob));
    for (let t = 0; t < steps; t++) {
      const actions = sample(t);
      const sa = snapshot(await a.step(actions)), sb = snapshot(syncApi ? b.stepSync(actions) : await b.step(actions));
      assert.deepEqual(sa, sb, `step ${t} after reset({ seed: ${seed} })`);
      ended += sa.lengths.length;
    }
  }
  assert.ok(ended > 10, "episodes ended and autoreset");
}

function discreteActions(numEnvs: number) {
  return (t: number) => Array.from({ length: numEnvs }, (_, i) => (t * 7 + i * 3) % 3);
}

Deno.test("sync and worker backends give identical trajectories over many steps with resets", async (t) => {
  const configs: [string, number, Partial<WorkerVectorEnvOptions>][] = [
    ["1 env, 1 worker", 1, { numWorkers: 1 }],
    ["7 envs, 2 workers", 7, { numWorkers: 2 }],
    ["7 envs, 3 workers, async wait", 7, { numWorkers: 3, wait: "async" }],
    ["6 envs, 1 worker + main thread", 6, { numWorkers: 1, stepInMainThread: true }],
    ["3 envs, main thread only", 3, { numWorkers: 0, stepInMainThread: true }],
    ["5 envs, default workers, spinning", 5, { spinMicros: 20 }],
  ];
  for (const [name, n, options] of configs) {
    await t.step(name, async () => {
      using sync = new SyncVectorEnv("VectorTest-v0", { numEnvs: n });
      await using workers = await testWorkers(n, options);
      await assertSameTrajectories(sync, workers, 60, discreteActions(n));
    });
  }
  await t.step("7 envs, 2 workers, resetSync/stepSync", async () => {
    using sync = new SyncVectorEnv("VectorTest-v0", { numEnvs: 7 });
    await using workers = await testWorkers(7, { numWorkers: 2, wait: "async" }); // the sync API blocks regardless
    await assertSameTrajectories(sync, workers, 60, discreteActions(7), true);
  });
  assertAllWorkersTerminated();
});

Deno.test("sync and worker backends agree for uint8 observations with MultiDiscrete actions, and Box actions", async () => {
  {
    const kwargs = { obs: "uint8", actions: "multi" } as const;
    using sync = new SyncVectorEnv("VectorTest-v0", { numEnvs: 4, kwargs });
    await using workers = await testWorkers(4, { numWorkers: 2 }, kwargs);
    assert.ok(workers.buffers.observations instanceof Uint8Array);
    assert.ok(workers.buffers.actions instanceof Int32Array && workers.buffers.actions.length === 8);
    await assertSameTrajectories(
      sync,
      workers,
      40,
      (t) => Array.from({ length: 8 }, (_, k) => (t + k) % (k % 2 ? 2 : 3)),
    );
  }
  {
    const kwargs = { actions: "box" } as const;
    using sync = new SyncVectorEnv("VectorTest-v0", { numEnvs: 3, kwargs });
    await using workers = await testWorkers(3, { numWorkers: 2 }, kwargs);
    assert.ok(workers.buffers.actions instanceof Float32Array);
    await assertSameTrajectories(sync, workers, 40, (t) => Array.from({ length: 6 }, (_, k) => Math.sin(t + k)));
  }
  assertAllWorkersTerminated();
});

Deno.test("envs implementing ObservationTarget write into the shared buffer, with the same results", async () => {
  for (const obs of ["float32", "uint8"] as const) {
    using copying = new SyncVectorEnv("VectorTest-v0", { numEnvs: 3, kwargs: { obs } });
    using inPlace = new SyncVectorEnv("VectorTest-v0", { numEnvs: 3, kwargs: { obs, inPlace: true } });
    await using workers = await testWorkers(3, { numWorkers: 2 }, { obs, inPlace: true });
    const unwrapped = inPlace.envs[2].unwrapped as VectorTestEnv;
    assert.equal(unwrapped.observationTarget?.buffer, inPlace.buffer, "env 2 got a view of the vector buffer");
    assert.equal(
      unwrapped.observationTarget?.byteOffset,
      inPlace.buffers.observations.byteOffset + 2 * OBS * (obs === "uint8" ? 1 : 4),
    );
    assert.equal((copying.envs[2].unwrapped as VectorTestEnv).observationTarget, undefined);
    await assertSameTrajectories(copying, inPlace, 40, discreteActions(3));
    await assertSameTrajectories(copying, workers, 40, discreteActions(3));
  }
  assertAllWorkersTerminated();
});

Deno.test("CartPole-v1: sync and worker backends agree", async () => {
  {
    using sync = new SyncVectorEnv("CartPole-v1", { numEnvs: 5 });
    await using workers = await WorkerVectorEnv.create("CartPole-v1", { numEnvs: 5, numWorkers: 2 });
    await assertSameTrajectories(sync, workers, 300, (t) => Array.from({ length: 5 }, (_, i) => ((t * 13) >> i) & 1));
  }
  assertAllWorkersTerminated();
});

Deno.test("autoreset is same-step: obs starts the new episode, finalObservation ends the old one", async () => {
  for (const backend of ["sync", "worker"] as const) {
    await using envs = backend === "sync"
      ? new SyncVectorEnv("VectorTest-v0", { numEnvs: 4 })
      : await testWorkers(4, { numWorkers: 2 });
    // The reference: the same envs stepped one by one (TimeLimit applied by hand), reset right after an episode ends.
    const reference = Array.from({ length: 4 }, () => new VectorTestEnv());
    const elapsed = new Int32Array(4), returns = new Float64Array(4);
    const [obs0] = await envs.reset({ seed: 5 });
    for (let i = 0; i < 4; i++) {
      const [o] = reference[i].reset({ seed: 5 + i });
      assert.deepEqual(
        Array.from(obs0.subarray(i * OBS, (i + 1) * OBS)),
        Array.from(o),
        `env ${i} seeded with 5 + ${i}`,
      );
    }
    let terminations = 0, truncations = 0;
    for (let t = 0; t < 80; t++) {
      const actions = discreteActions(4)(t);
      const [obs, rewards, terminated, truncated, infos] = await envs.step(actions);
      for (let i = 0; i < 4; i++) {
        const [o, r, term] = reference[i].step(actions[i]);
        elapsed[i]++;
        returns[i] += r;
        const trunc = elapsed[i] >= 8; // make("VectorTest-v0") adds TimeLimit(8)
        assert.equal(rewards[i], Math.fround(r));
        assert.equal(terminated[i], term ? 1 : 0);
        assert.equal(truncated[i], trunc ? 1 : 0);
        const row = (a: ArrayLike<number> & { subarray(s: number, e: number): ArrayLike<number> }) =>
          Array.from(a.subarray(i * OBS, (i + 1) * OBS));
        if (term || trunc) {
          terminations += term ? 1 : 0;
          truncations += trunc ? 1 : 0;
          assert.deepEqual(row(infos.finalObservation), Array.from(o), `final observation of env ${i}`);
          assert.equal(infos.episodeLength[i], elapsed[i]);
          assert.equal(infos.episodeReturn[i], Math.fround(returns[i]));
          const [first] = reference[i].reset();
          assert.deepEqual(row(obs), Array.from(first), `obs of env ${i} is the new episode's first`);
          assert.equal(obs[i * OBS + 1], 0, "t = 0 in the new episode");
          elapsed[i] = 0;
          returns[i] = 0;
        } else {
          assert.deepEqual(row(obs), Array.from(o));
        }
      }
    }
    assert.ok(terminations > 5 && truncations > 2, `${terminations} terminations, ${truncations} truncations`);
  }
  assertAllWorkersTerminated();
});

Deno.test("episode statistics report each ended episode's return and length", async () => {
  {
    await using envs = await makeVectorEnv("CartPole-v1", 3, { backend: "worker", numWorkers: 1 });
    await envs.reset({ seed: 0 });
    const lengths: number[] = [], running = [0, 0, 0];
    for (let t = 0; t < 200; t++) {
      const [, rewards, terminated, truncated, infos] = await envs.step([0, 1, t % 2]);
      for (let i = 0; i < 3; i++) {
        running[i] += rewards[i];
        if (terminated[i] || truncated[i]) {
          assert.equal(infos.episodeReturn[i], running[i]); // CartPole: reward 1 per step
          assert.equal(infos.episodeLength[i], running[i]);
          lengths.push(infos.episodeLength[i]);
          running[i] = 0;
        }
      }
    }
    assert.ok(lengths.length >= 10 && lengths.every((l) => l >= 8 && l <= 500), `lengths ${lengths}`);
  }
  assertAllWorkersTerminated();
});

Deno.test("buffers are preallocated views returned by every step", async () => {
  await using envs = await testWorkers(3, { numWorkers: 1 });
  const [obs, infos] = await envs.reset({ seed: 1 });
  assert.equal(obs, envs.buffers.observations);
  assert.equal(obs.buffer, envs.buffer);
  assert.ok(envs.buffer instanceof SharedArrayBuffer);
  const a = await envs.step([0, 1, 2]), b = await envs.step([0, 1, 2]);
  for (let k = 0; k < 5; k++) assert.equal(a[k], b[k]);
  assert.equal(a[4], infos);
  envs.buffers.actions.set([2, 2, 2]);
  envs.send(); // uses the actions already in the buffer
  const [, rewards] = await envs.recv();
  for (let i = 0; i < 3; i++) assert.ok(rewards[i] >= 2 && rewards[i] < 3);
});

Deno.test("batched spaces follow Gymnasium's batch_space", () => {
  using envs = new SyncVectorEnv([() => new VectorTestEnv(), () => new VectorTestEnv()]);
  assert.ok(envs.observationSpace instanceof Box);
  assert.deepEqual(envs.observationSpace.shape, [2, 5]);
  assert.ok(envs.actionSpace instanceof MultiDiscrete);
  assert.deepEqual(Array.from(envs.actionSpace.nvec), [3, 3]);
  assert.equal(String(envs.singleActionSpace), "Discrete(3)");
});

Deno.test("an invalid action is a RangeError naming the env, the value and the space, and steps nothing", async () => {
  for (const backend of ["sync", "worker"] as const) {
    await using envs = await makeVectorEnv("VectorTest-v0", 3, {
      backend,
      numWorkers: 1,
      envModules: TEST_MODULES,
    });
    await envs.reset({ seed: 0 });
    assert.throws(() => envs.send([0, 3, 1]), (e: Error) => {
      assert.ok(e instanceof RangeError);
      assert.match(e.message, /action 3 for env 1 is not in Discrete\(3\)/);
      return true;
    });
    assert.throws(() => envs.send([0, 1.5, 1]), /action 1.5 for env 1 is not in Discrete\(3\)/);
    assert.throws(() => envs.send([0, 1]), /expected 3 actions/);
    const [obs, , terminated, truncated] = await envs.step([0, 1, 2]); // nothing was sent, so this is step 1
    for (let i = 0; i < 3; i++) assert.ok(obs[i * OBS + 1] === 1 || terminated[i] || truncated[i]);
  }
  {
    await using box = await testWorkers(2, { numWorkers: 1 }, { actions: "box" });
    await box.reset();
    assert.throws(
      () => box.send([0, 0, 0.5, NaN]),
      /action \[0.5, NaN\] for env 1 is not in Box\(-1, 1, \[2\], float32\)/,
    );
    assert.throws(() => box.send([0, 2, 0, 0]), RangeError);
  }
  assertAllWorkersTerminated();
});

Deno.test("calls out of order say what to do, in both backends", async () => {
  for (const backend of ["sync", "worker"] as const) {
    await using envs = await makeVectorEnv("VectorTest-v0", 2, { backend, numWorkers: 1, envModules: TEST_MODULES });
    assert.throws(() => envs.send([0, 0]), /call reset\(\) before step\(\)/);
    await assert.rejects(envs.recv(), /call send\(actions\) before recv\(\)/);
    await envs.reset();
    envs.send([0, 0]);
    assert.throws(() => envs.send([0, 0]), /call recv\(\) for the step in flight before send\(\)/);
    await assert.rejects(envs.reset(), /call recv\(\) for the step in flight before reset\(\)/);
    await envs.recv();
  }
});

Deno.test("a Worker's env that throws rejects with the env index and cause, and no Worker is left running", async () => {
  const before = TrackedWorker.all.length;
  const envs = await testWorkers(6, { numWorkers: 3 }, { crashSeed: 104, crashStep: 3 });
  await envs.reset({ seed: 100 }); // env 4 gets seed 104
  await envs.step([0, 0, 0, 0, 0, 0]);
  await envs.step([0, 0, 0, 0, 0, 0]);
  const error = await envs.step([0, 0, 0, 0, 0, 0]).then(() => undefined, (e) => e);
  assert.ok(error instanceof Error, "step rejected");
  assert.match(error.message, /env 4 \(Worker 2\) failed in step\(\): boom at step 3 \(seed 104\)/);
  assert.ok(error.cause instanceof TypeError);
  assert.equal(error.cause.message, "boom at step 3 (seed 104)");
  assert.match(error.cause.stack ?? "", /_testing\.ts/);
  assert.ok(envs.closed);
  assert.equal(TrackedWorker.all.length - before, 3);
  assertAllWorkersTerminated();
  assert.throws(() => envs.send([0, 0, 0, 0, 0, 0]), /after close\(\)/);
  envs.close(); // still safe
});

Deno.test("errors in reset, in the main thread's share and in the sync backend name the env too", async () => {
  {
    const envs = await testWorkers(4, { numWorkers: 2 }, { crashResetSeed: 2 });
    await assert.rejects(envs.reset({ seed: 0 }), /env 2 \(Worker 1\) failed in reset\(\): reset crash \(seed 2\)/);
    assert.ok(envs.closed);
  }
  {
    const envs = await testWorkers(4, { numWorkers: 1, stepInMainThread: true }, { crashSeed: 3, crashStep: 1 });
    await envs.reset({ seed: 0 });
    await assert.rejects(envs.step([0, 0, 0, 0]), (e: Error) => {
      assert.match(e.message, /env 3 \(main thread\) failed in step\(\): boom at step 1/);
      assert.ok(e.cause instanceof TypeError);
      return true;
    });
    assert.ok(envs.closed);
  }
  {
    const envs = new SyncVectorEnv("VectorTest-v0", { numEnvs: 3, kwargs: { crashSeed: 2, crashStep: 1 } });
    await envs.reset({ seed: 0 });
    await assert.rejects(envs.step([0, 0, 0]), /env 2 failed in step\(\): boom at step 1/);
    assert.ok(envs.closed);
  }
  assertAllWorkersTerminated();
});

Deno.test("setup failures reject and leave no Worker running", async () => {
  await assert.rejects(
    WorkerVectorEnv.create("NoSuchEnv-v0", { numEnvs: 2, numWorkers: 2, envModules: TEST_MODULES }),
    /Worker 0 failed make\("NoSuchEnv-v0"\) for env 0: make: no env registered as "NoSuchEnv-v0"/,
  );
  await assert.rejects(
    WorkerVectorEnv.create("VectorTest-v0", { numEnvs: 2, envModules: ["file:///nonexistent/module.ts"] }),
    /failed importing envModules/,
  );
  await assert.rejects(WorkerVectorEnv.create("VectorTest-v0", { numEnvs: 2, numWorkers: 3 }), RangeError);
  await assert.rejects(
    WorkerVectorEnv.create("VectorTest-v0", { numEnvs: 2, envModules: ["./my_env.ts"] }),
    /envModules entries must be absolute URLs, got "\.\/my_env\.ts"/,
  );
  await assert.rejects(
    testWorkers(2, { numWorkers: 2 }, { obs: (() => 0) as never }),
    /kwargs must be structured-cloneable/,
  );
  assertAllWorkersTerminated();
});

Deno.test("close() closes the envs inside the Workers, terminates them, and is idempotent", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const envs = await testWorkers(4, { numWorkers: 2, stepInMainThread: true }, { closeMarkerDir: dir });
    await envs.reset({ seed: 10 });
    await envs.step([0, 1, 2, 0]);
    envs.send([0, 1, 2, 0]); // close() also waits for a step in flight
    envs.close();
    envs.close();
    await envs[Symbol.asyncDispose]();
    assert.ok(envs.closed);
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names.sort(), ["closed-10", "closed-11", "closed-12", "closed-13"]);
    await assert.rejects(envs.recv(), /recv\(\) after close\(\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  using sync = new SyncVectorEnv("VectorTest-v0", { numEnvs: 1 });
  sync.close();
  sync.close();
  assertAllWorkersTerminated();
});

Deno.test("close() terminates Workers whose envs do not close within closeTimeoutMs", async () => {
  const envs = await testWorkers(2, { numWorkers: 2, closeTimeoutMs: 200 }, { closeDelayMs: 60_000 });
  await envs.reset();
  const errors: unknown[] = [], consoleError = console.error;
  console.error = (...args: unknown[]) => errors.push(args.join(" "));
  const start = performance.now();
  try {
    envs.close();
  } finally {
    console.error = consoleError;
  }
  const ms = performance.now() - start;
  assert.ok(ms >= 190 && ms < 2000, `close() took ${ms} ms`);
  assert.match(String(errors[0]), /did not close their envs within 200 ms; terminated/);
  assertAllWorkersTerminated();
});

Deno.test("with wait: 'async' the event loop runs during a step, and close() during recv() rejects it", async () => {
  const envs = await testWorkers(2, { numWorkers: 1, wait: "async" }, { stepDelayMs: 30 });
  await envs.reset();
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  await envs.step([0, 0]);
  clearInterval(timer);
  assert.ok(ticks > 0, "a timer fired while the envs stepped");
  envs.send([1, 1]);
  const pending = envs.recv();
  envs.close(); // waits for the step in flight, closes, terminates
  await assert.rejects(pending, /close\(\) was called during step\(\)/);
  assertAllWorkersTerminated();
});

Deno.test("a Worker that does not answer within timeoutMs is named and terminated; the others close their envs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const envs = await testWorkers(4, { numWorkers: 2, timeoutMs: 300, closeTimeoutMs: 300 }, {
      stepDelayMs: 60_000,
      slowSeed: 3,
      closeMarkerDir: dir,
    });
    await envs.reset({ seed: 0 });
    const consoleError = console.error, logged: string[] = [];
    console.error = (...args: unknown[]) => logged.push(args.join(" "));
    try {
      await assert.rejects(
        envs.step([0, 0, 0, 0]),
        /Worker 1 \(envs 2-3\) did not finish step\(\) within 300 ms \(options.timeoutMs\); the vector env is closed/,
      );
    } finally {
      console.error = consoleError;
    }
    assert.ok(envs.closed);
    assert.match(logged.join("\n"), /Worker\(s\) 1 did not close their envs/);
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names.sort(), ["closed-0", "closed-1"], "Worker 0 closed its envs");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assertAllWorkersTerminated();
});

Deno.test("SyncVectorEnv takes factories and checks that spaces match", () => {
  assert.throws(
    () => new SyncVectorEnv([() => new VectorTestEnv(), () => new VectorTestEnv({ actions: "multi" })]),
    /env 1 has spaces .* all envs must share their spaces/,
  );
  assert.throws(() => new SyncVectorEnv("VectorTest-v0"), /pass options.numEnvs/);
  using envs = new SyncVectorEnv([() => new VectorTestEnv(), () => new VectorTestEnv()]);
  const [obs] = envs.resetSync({ seed: 3 });
  assert.deepEqual([obs[0], obs[OBS]], [3, 4]);
  const [, rewards] = envs.stepSync(Int32Array.of(1, 2));
  assert.ok(rewards[0] >= 1 && rewards[1] >= 2);
});

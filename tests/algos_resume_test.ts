import assert from "node:assert/strict";
import { trainA2c } from "../algos/a2c.ts";
import { trainPpo } from "../algos/ppo.ts";
import { replayBufferPath, trainDqn } from "../algos/dqn.ts";
import { ReplayBuffer } from "../algos/replay_buffer.ts";
import { loadSafetensors } from "../models/mod.ts";

/** Names of the tensors in a checkpoint whose bytes differ from another's (empty when bit-identical). */
async function differingTensors(a: string, b: string): Promise<string[]> {
  const [ta, tb] = [(await loadSafetensors(a)).tensors, (await loadSafetensors(b)).tensors];
  assert.deepEqual(Object.keys(ta).sort(), Object.keys(tb).sort());
  const bytes = (d: ArrayBufferView) => new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  return Object.keys(ta).filter((k) => {
    const x = bytes(ta[k].data), y = bytes(tb[k].data);
    return x.length !== y.length || x.some((v, i) => v !== y[i]);
  });
}

const quiet = { tensorboard: false, handleSigint: false, keepCheckpoints: true } as const;

Deno.test("PPO resumed from a checkpoint continues bit-identically to a straight run", async () => {
  const root = await Deno.makeTempDir();
  const common = { ...quiet, seed: 7, totalTimesteps: 768, numEnvs: 2, numSteps: 64, checkpointEvery: 256 };
  const straight = await trainPpo({ ...common, runDir: `${root}/straight` });
  assert.equal(straight.globalStep, 768);
  const resumed = await trainPpo({
    ...common,
    runDir: `${root}/resumed`,
    resume: `${root}/straight/checkpoints/step_256.safetensors`,
  });
  assert.equal(resumed.globalStep, 768);
  assert.deepEqual(await differingTensors(resumed.checkpoint, straight.checkpoint), []);
  // The resumed run logged only the steps after 256.
  const steps = (await Deno.readTextFile(`${root}/resumed/metrics.jsonl`)).trim().split("\n").map((l) =>
    JSON.parse(l).step
  );
  assert.ok(steps.every((s) => s > 256), String(steps));
  await Deno.remove(root, { recursive: true });
});

Deno.test("A2C resumed from a checkpoint continues bit-identically to a straight run", async () => {
  const root = await Deno.makeTempDir();
  const common = { ...quiet, seed: 3, totalTimesteps: 800, numEnvs: 4, checkpointEvery: 400 };
  const straight = await trainA2c({ ...common, runDir: `${root}/straight` });
  const resumed = await trainA2c({
    ...common,
    runDir: `${root}/resumed`,
    resume: `${root}/straight/checkpoints/step_400.safetensors`,
  });
  assert.deepEqual(await differingTensors(resumed.checkpoint, straight.checkpoint), []);
  await Deno.remove(root, { recursive: true });
});

Deno.test("DQN with saveReplayBuffer resumes bit-identically (prioritized, n-step); without the buffer it refills", async () => {
  const root = await Deno.makeTempDir();
  const common = {
    ...quiet,
    envId: "CartPole-v1",
    seed: 5,
    totalTimesteps: 900,
    checkpointEvery: 300,
    learningStarts: 100,
    trainFrequency: 2,
    batchSize: 16,
    bufferSize: 500,
    frameStack: 1,
    nStep: 3,
    prioritizedAlpha: 0.6,
    policy: "mlp" as const,
    saveReplayBuffer: true,
  };
  const straight = await trainDqn({ ...common, runDir: `${root}/straight` });
  const step300 = `${root}/straight/checkpoints/step_300.safetensors`;
  const saved = await loadSafetensors(replayBufferPath(step300));
  assert.equal(saved.metadata.global_step, "300");
  assert.ok(saved.tensors["rb.tree"] && saved.tensors["rb.frames.0.0"], Object.keys(saved.tensors).join(", "));
  const resumed = await trainDqn({ ...common, runDir: `${root}/resumed`, resume: step300 });
  assert.equal(resumed.globalStep, 900);
  assert.deepEqual(await differingTensors(resumed.checkpoint, straight.checkpoint), []);
  // The same resume without the buffer file starts from an empty buffer, so it trains differently.
  await Deno.remove(replayBufferPath(step300));
  const refilled = await trainDqn({ ...common, runDir: `${root}/refilled`, resume: step300 });
  assert.notDeepEqual(await differingTensors(refilled.checkpoint, straight.checkpoint), []);
  // A buffer made with other options is refused, naming what does not fit.
  const other = new ReplayBuffer({ capacity: 400, numEnvs: 1, obsShape: [4], dtype: "float32" });
  assert.throws(
    () => other.loadState(saved.tensors),
    /other options.*'rb.actions' is I32 \[505\], this buffer has I32 \[403\]/,
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("an abort request stops training after a checkpoint, and the run can be resumed from its directory", async () => {
  const root = await Deno.makeTempDir();
  const controller = new AbortController();
  const options = {
    tensorboard: false,
    handleSigint: false,
    envId: "CartPole-v1",
    totalTimesteps: 2000,
    learningStarts: 200,
    batchSize: 16,
    bufferSize: 1000,
    frameStack: 1,
    policy: "mlp" as const,
    runDir: `${root}/dqn`,
  };
  const stopped = await trainDqn({ ...options, signal: controller.signal, log: () => controller.abort() });
  assert.equal(stopped.stoppedBy, "abort");
  assert.ok(stopped.globalStep < 2000);
  const config = JSON.parse(await Deno.readTextFile(`${root}/dqn/config.json`));
  assert.equal(config.algo, "dqn");
  const resumed = await trainDqn({ ...options, resume: `${root}/dqn` });
  assert.equal(resumed.globalStep, 2000);
  assert.equal(resumed.stoppedBy, undefined);
  await Deno.remove(root, { recursive: true });
});

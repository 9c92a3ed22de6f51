import assert from "node:assert/strict";
import {
  crossedBoundary,
  loadTrainingCheckpoint,
  ModuleGroup,
  prepareRunDir,
  resolveResume,
  runName,
  sampleCategorical,
  saveTrainingCheckpoint,
  stopRequest,
  TrainRng,
} from "../algos/_training.ts";
import { Adam, Linear, Rng, zeros } from "../models/mod.ts";

Deno.test("run names follow CleanRL's env__exp__seed__time", () => {
  assert.equal(runName({ envId: "ALE/Pong-v5", expName: "dqn", seed: 3, time: 42 }), "ALE-Pong-v5__dqn__3__42");
});

Deno.test("TrainRng state round-trips and sampling follows the softmax", () => {
  const rng = new TrainRng(5);
  rng.uniform();
  const saved = rng.state();
  const a = [rng.uniform(), rng.nextUint32()];
  rng.setState(saved);
  assert.deepEqual([rng.uniform(), rng.nextUint32()], a);
  const logits = Float32Array.of(0, Math.log(3)); // p = [0.25, 0.75]
  const out = new Int32Array(1);
  let ones = 0;
  for (let i = 0; i < 4000; i++) ones += sampleCategorical(logits, 2, rng, out)[0];
  assert.ok(Math.abs(ones / 4000 - 0.75) < 0.03, `${ones / 4000}`);
});

Deno.test("training checkpoint restores model, optimizer, counters and generator", async () => {
  const dir = await Deno.makeTempDir();
  const net = () => new ModuleGroup({ q: new Linear(3, 2, { rng: new Rng(1) }), target: new Linear(3, 2) });
  const model = net();
  const optimizer = new Adam(model.parameters(), { lr: 1e-3 });
  for (const p of model.parameters()) p.grad = zeros(p.shape);
  optimizer.step();
  const rng = new TrainRng(9);
  rng.uniform();
  await prepareRunDir(dir, { lr: 1e-3, fn: () => 0 });
  assert.deepEqual(JSON.parse(await Deno.readTextFile(`${dir}/config.json`)), { lr: 1e-3 });
  await saveTrainingCheckpoint(`${dir}/checkpoint.safetensors`, {
    model,
    optimizer,
    rng,
    counters: { globalStep: 128, iteration: 2 },
  });
  const model2 = net();
  const optimizer2 = new Adam(model2.parameters(), { lr: 1 });
  const rng2 = new TrainRng(0);
  const { checkpoint, runDir } = await resolveResume(dir);
  assert.equal(runDir, dir);
  const counters = await loadTrainingCheckpoint(checkpoint, { model: model2, optimizer: optimizer2, rng: rng2 });
  assert.deepEqual(counters, { globalStep: 128, iteration: 2 });
  assert.deepEqual(rng2.state(), rng.state());
  assert.equal(optimizer2.lr, 1e-3);
  assert.deepEqual(
    model2.parameters().map((p) => Array.from(p.data)),
    model.parameters().map((p) => Array.from(p.data)),
  );
  await assert.rejects(resolveResume(`${dir}/missing`), /does not exist/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("stop requests come from an abort signal; boundaries are detected", () => {
  const controller = new AbortController();
  using stop = stopRequest({ signal: controller.signal, sigint: false });
  assert.equal(stop.requested, false);
  controller.abort();
  assert.equal(stop.reason, "abort");
  assert.ok(crossedBoundary(999, 1000, 500));
  assert.ok(!crossedBoundary(1000, 1499, 500));
  assert.ok(!crossedBoundary(0, 5000, 0));
});

Deno.test("Ctrl-C (SIGINT) stops the CartPole example cleanly after writing a checkpoint", async () => {
  const runsDir = await Deno.makeTempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../examples/cartpole.ts", import.meta.url).pathname, "--algo", "ppo"].concat(
      ["--total-timesteps", "100000000", "--runs-dir", runsDir, "--no-tensorboard", "--eval-episodes", "0"],
    ),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("ppo step")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  child.kill("SIGINT");
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  const status = await child.status;
  await child.stderr.cancel();
  assert.equal(status.code, 0, out);
  assert.match(out, /stopped by SIGINT; resume with --resume (\S+)/);
  const runDir = out.match(/resume with --resume (\S+)/)![1];
  const { checkpoint } = await resolveResume(runDir);
  assert.ok((await Deno.stat(checkpoint)).size > 0);
  await Deno.remove(runsDir, { recursive: true });
});

// APPO on MultiDiscrete action spaces (Sample Factory's multi-categorical head): the distribution against per-dimension
// Categoricals, learning a two-dimension contextual bandit in serial mode, resuming bit-identically, the learner
// Worker, the ONNX export, and a clear error for action spaces APPO does not support.

import assert from "node:assert/strict";
import "../envs/classic/mod.ts";
import { AppoModel, evaluateAppo, loadAppoModel, MultiCategorical, trainAppo } from "../algos/appo/mod.ts";
import { evaluateOnnx, exportPolicyOnnx, OnnxPolicy, policyToOnnx } from "../algos/onnx_policy.ts";
import { TrainRng } from "../algos/_training.ts";
import { make } from "../envs/registry.ts";
import { add, Categorical, noGrad, Rng, slice, sum, Tensor } from "../models/mod.ts";

const CLASSIC = new URL("../envs/classic/mod.ts", import.meta.url);
// Registers TwoDimBandit-v0 here and, imported by URL, in every rollout Worker.
const BANDIT_MODULE = new URL("./_two_dim_bandit.ts", import.meta.url);
await import(BANDIT_MODULE.href);

const TEMP_DIRS: string[] = [];

function tempDir(): string {
  const dir = Deno.makeTempDirSync({ prefix: "appo_md_test_" });
  TEMP_DIRS.push(dir);
  return dir;
}

globalThis.addEventListener("unload", () => {
  for (const dir of TEMP_DIRS) Deno.removeSync(dir, { recursive: true });
});

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, label: string, tol = 1e-6): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${label}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

Deno.test("MultiCategorical log-prob and entropy are sums of per-dimension Categoricals, gradients included", () => {
  const nvec = [3, 2, 4], rows = 5;
  const rng = new Rng(3);
  const raw = Float32Array.from({ length: rows * 9 }, () => 3 * rng.normal());
  const actions = Float32Array.from({ length: rows * 3 }, (_, i) => (7 * i + 1) % nvec[i % 3]);

  const logitsA = new Tensor(raw.slice(), [rows, 9], { requiresGrad: true });
  const dist = new MultiCategorical(logitsA, nvec);
  const lp = dist.logProb(new Tensor(actions, [rows, 3]));
  const ent = dist.entropy();

  // Reference: one Categorical per dimension on its own columns, summed.
  const logitsB = new Tensor(raw.slice(), [rows, 9], { requiresGrad: true });
  let lpRef: Tensor | undefined, entRef: Tensor | undefined;
  for (let d = 0, at = 0; d < 3; at += nvec[d++]) {
    const cat = new Categorical(slice(logitsB, 1, at, at + nvec[d]));
    const column = new Tensor(Float32Array.from({ length: rows }, (_, r) => actions[r * 3 + d]), [rows]);
    const l = cat.logProb(column), e = cat.entropy();
    lpRef = lpRef ? add(lpRef, l) : l;
    entRef = entRef ? add(entRef, e) : e;
  }
  close(lp.data, lpRef!.data, "logProb");
  close(ent.data, entRef!.data, "entropy");
  // By hand for row 0: log-softmax within each dimension's columns.
  let byHand = 0;
  for (let d = 0, at = 0; d < 3; at += nvec[d++]) {
    const xs = Array.from(raw.subarray(at, at + nvec[d]));
    const lse = Math.log(xs.reduce((s, x) => s + Math.exp(x), 0));
    byHand += xs[actions[d]] - lse;
  }
  assert.ok(Math.abs(lp.data[0] - byHand) < 1e-5, `row 0: ${lp.data[0]} vs ${byHand}`);

  sum(add(lp, ent)).backward();
  sum(add(lpRef!, entRef!)).backward();
  close(logitsA.grad!.data, logitsB.grad!.data, "gradient");
  // The symmetric KL to the uniform prior is ≥ 0 per dimension, so the sum is too.
  const kl = noGrad(() => add(ent, dist.meanLogProbs()).data.map((x) => -x));
  assert.ok(kl.every((x) => x >= -1e-6), `symmetric KL ${kl}`);
});

Deno.test("MultiCategorical samples every dimension within its range and in proportion to its probabilities", () => {
  const nvec = [3, 5];
  // Row 0 favours choice 2 of dimension 0 and choice 0 of dimension 1; row 1 makes dimension 1 uniform.
  const logits = new Tensor(Float32Array.of(0, 0, 2, 3, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0), [2, 8]);
  const dist = new MultiCategorical(logits, nvec);
  const rng = new Rng(11), counts = [new Array(3).fill(0), new Array(5).fill(0)];
  const draws = 4000;
  for (let i = 0; i < draws; i++) {
    const a = dist.sample(rng);
    assert.deepEqual(a.shape, [2, 2]);
    for (let r = 0; r < 2; r++) {
      for (let d = 0; d < 2; d++) {
        const v = a.data[r * 2 + d];
        assert.ok(Number.isInteger(v) && v >= 0 && v < nvec[d], `row ${r} dim ${d}: ${v} outside [0, ${nvec[d]})`);
      }
    }
    counts[0][a.data[0]]++;
    counts[1][a.data[1]]++;
  }
  const p0 = noGrad(() => dist.dims[0].probs.data), p1 = noGrad(() => dist.dims[1].probs.data);
  counts[0].forEach((c, k) => assert.ok(Math.abs(c / draws - p0[k]) < 0.03, `dim 0 choice ${k}: ${c / draws}`));
  counts[1].forEach((c, k) => assert.ok(Math.abs(c / draws - p1[k]) < 0.03, `dim 1 choice ${k}: ${c / draws}`));
  assert.deepEqual(Array.from(dist.mode().data), [2, 0, 0, 0]);
  assert.throws(() => new MultiCategorical(logits, [3, 4]), /last dim of 7/);
});

const BANDIT = {
  envId: "TwoDimBandit-v0",
  envModules: [BANDIT_MODULE],
  numWorkers: 2,
  numEnvsPerWorker: 4,
  rollout: 8,
  batchSize: 128,
  numEpochs: 2,
  learnerChunk: 0,
  mlpLayers: [32],
  rnnSize: 0,
  learningRate: 3e-3,
  explorationLoss: "entropy" as const,
  explorationLossCoeff: 0.003,
  seed: 1,
  serial: true,
  tensorboard: false,
  handleSignals: false,
  checkpointIntervalS: 0,
};

Deno.test("serial APPO learns a two-dimension MultiDiscrete bandit (mean return >= 7 of 8) in seconds", async () => {
  const started = performance.now();
  const result = await trainAppo({ ...BANDIT, totalFrames: 60_000, stopAtReturn: 7.5, runDir: tempDir() });
  const returns = evaluateAppo(result.model, "TwoDimBandit-v0", { episodes: 20 });
  const mean = returns.reduce((a, b) => a + b, 0) / returns.length;
  const seconds = (performance.now() - started) / 1000;
  console.log(`MultiDiscrete bandit: ${result.frames} frames, ${result.version} updates, eval ${mean}, ${seconds} s`);
  assert.equal(result.stoppedBy, "return");
  assert.ok(mean >= 7, `greedy evaluation mean ${mean} < 7 (random play earns 8/12)`);
  assert.ok(seconds < 30, `took ${seconds} s`);
  // The learned policy picks both dimensions right in every context.
  const model = result.model;
  for (let c = 0; c < 3; c++) {
    const obs = new Float32Array(3);
    obs[c] = 1;
    const { logits } = noGrad(() => model.forward(model.prepareObs(obs, 1), 1));
    assert.deepEqual(Array.from(model.distribution(logits).mode().data), [c, (c + 1) % 4], `context ${c}`);
  }
});

Deno.test("serial APPO on MultiDiscrete resumes bit-identically and its checkpoint reloads with loadAppoModel", async () => {
  const opts = { ...BANDIT, rnnSize: 8, explorationLoss: "symmetric_kl" as const };
  const first = await trainAppo({ ...opts, totalFrames: 1200, runDir: tempDir() });
  const resumed = await trainAppo({ ...opts, totalFrames: 2400, runDir: tempDir(), resume: first.checkpoint });
  const straight = await trainAppo({ ...opts, totalFrames: 2400, runDir: tempDir() });
  assert.ok(first.version > 0 && straight.version > first.version);
  assert.equal(resumed.version, straight.version);
  for (const [name, p] of straight.model.namedParameters()) {
    const q = resumed.model.namedParameters().find(([n]) => n === name)![1];
    assert.deepEqual(q.data, p.data, `parameter ${name} differs`);
  }
  const loaded = await loadAppoModel(straight.runDir);
  assert.deepEqual(loaded.model.actionNvec, [3, 4]);
  assert.equal(loaded.model.options.numActions, 7);
  const a = evaluateAppo(loaded.model, "TwoDimBandit-v0", { episodes: 4, deterministic: false, seed: 5 });
  const b = evaluateAppo(straight.model, "TwoDimBandit-v0", { episodes: 4, deterministic: false, seed: 5 });
  assert.deepEqual(a, b);
});

Deno.test("APPO with rollout and learner Workers trains on a MultiDiscrete env", async () => {
  const result = await trainAppo({
    ...BANDIT,
    serial: false,
    learnerWorker: true,
    totalFrames: 3000,
    runDir: tempDir(),
  });
  assert.ok(result.frames >= 3000 && result.version > 0);
  assert.ok(result.episodeReturns.length > 0);
  const loaded = await loadAppoModel(result.checkpoint);
  assert.deepEqual(loaded.model.actionNvec, [3, 4]);
});

Deno.test("an exported MultiDiscrete APPO policy names its nvec and picks one action per dimension in onnxruntime", async () => {
  const model = new AppoModel({
    obsShape: [3],
    obsDtype: "float32",
    numActions: 7,
    actionNvec: [3, 4],
    mlpLayers: [16],
    rnnSize: 8,
    seed: 2,
  });
  for (const p of model.policyHead.parameters()) p.data.forEach((v, i, a) => (a[i] = v * 300));
  const path = await Deno.makeTempFile({ suffix: ".onnx" });
  TEMP_DIRS.push(path);
  await exportPolicyOnnx(model, path);
  await using policy = await OnnxPolicy.load(path, { executionProvider: "wasm" });
  assert.deepEqual(policy.actionNvec, [3, 4]);
  assert.equal(policy.signature.metadata["arcadia.action_nvec"], "[3,4]");
  const B = 4, obs = Float32Array.from({ length: B * 3 }, (_, i) => Math.sin(i));
  const out = await policy.act(obs);
  const ref = noGrad(() => model.forward(model.prepareObs(obs, B), B, new Tensor(new Float32Array(B * 8), [B, 8])));
  close(out.logits, ref.logits.data, "logits", 1e-3);
  assert.deepEqual(Array.from(out.actions), Array.from(model.distribution(ref.logits).mode().data));
  const sampled = await policy.act(obs, { deterministic: false, rng: new TrainRng(3) });
  assert.equal(sampled.actions.length, B * 2);
  sampled.actions.forEach((a, i) => assert.ok(a >= 0 && a < [3, 4][i % 2]));
  using env = make("TwoDimBandit-v0");
  const { returns } = await evaluateOnnx(policy, env, { episodes: 2, deterministic: true, seed: 0 });
  assert.equal(returns.length, 2);
  // A file without the metadata takes nvec from the options, checked against the logits width.
  const bare = policyToOnnx(model).encode();
  await using plain = await OnnxPolicy.fromBytes(bare, { executionProvider: "wasm", actionNvec: [3, 4] });
  assert.deepEqual(Array.from((await plain.act(obs)).actions), Array.from(out.actions));
  await assert.rejects(OnnxPolicy.fromBytes(bare, { actionNvec: [3, 3] }), /sums to 6.*7 columns/);
});

Deno.test("APPO refuses a Box action space, naming the space and what it supports", async () => {
  await assert.rejects(
    trainAppo({ envId: "Pendulum-v1", envModules: [CLASSIC], serial: true, runDir: tempDir(), handleSignals: false }),
    (e: Error) => {
      assert.ok(e instanceof TypeError);
      assert.match(e.message, /Pendulum-v1 has the action space Box\(/);
      assert.match(e.message, /supports Discrete\(n\) starting at 0 and MultiDiscrete\(nvec\)/);
      return true;
    },
  );
});

import assert from "node:assert/strict";
import { AppoModel } from "../algos/appo/model.ts";
import { evaluateOnnx, exportPolicyOnnx, OnnxPolicy, policyToOnnx } from "../algos/onnx_policy.ts";
import { MlpActorCritic, MlpQNetwork, NatureCnnActorCritic, NatureCnnQNetwork, obsTensor } from "../algos/policies.ts";
import { TrainRng } from "../algos/_training.ts";
import { make } from "../envs/mod.ts";
import { Conv2d, GRUCell, Linear, noGrad, ReLU, Rng, Sequential, Tanh, Tensor, zeros } from "../models/mod.ts";
import { exportOnnx, OnnxGraph, readOnnxSignature } from "../models/onnx.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, label: string, tol = 1e-4): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  let worst = 0, at = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= worst)) [worst, at] = [d, i];
  }
  assert.ok(worst <= tol, `${label}: |${actual[at]} - ${expected[at]}| = ${worst} at ${at} (tolerance ${tol})`);
}

function pattern(n: number, f: (i: number) => number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => f(i));
}

/** Runs `graph` through onnxruntime-web (wasm) with the given feeds. */
async function runGraph(bytes: Uint8Array): Promise<OnnxPolicy> {
  return await OnnxPolicy.fromBytes(bytes, { executionProvider: "wasm" });
}

Deno.test("an exported MLP actor-critic gives the engine's logits and values in onnxruntime-web, any batch size", async () => {
  const net = new MlpActorCritic([4], 3, { rng: new Rng(3), hidden: [16, 16] });
  const bytes = policyToOnnx(net).encode();
  const sig = readOnnxSignature(bytes);
  assert.deepEqual(sig.inputs, [{ name: "obs", dtype: "float32", shape: ["batch", 4] }]);
  assert.deepEqual(sig.outputs.map((o) => [o.name, o.shape]), [["logits", ["batch", 3]], ["value", ["batch"]]]);
  await using policy = await runGraph(bytes);
  assert.equal(policy.executionProvider, "wasm");
  assert.deepEqual([policy.obsShape, policy.numActions, policy.hiddenSize], [[4], 3, 0]);
  for (const batch of [1, 5]) {
    const obs = pattern(batch * 4, (i) => Math.sin(1.3 * i) * 2);
    const out = await policy.act(obs);
    const ref = noGrad(() => net.forward(obsTensor(obs, [4])));
    assertClose(out.logits, ref.logits.data, `logits B=${batch}`);
    assertClose(out.value!, ref.value.data, `value B=${batch}`);
    assert.equal(out.h, null);
    assert.deepEqual(Array.from(out.actions), Array.from(net.act(obs, new Int32Array(batch), { deterministic: true })));
  }
});

Deno.test("an exported Nature-CNN actor-critic on uint8 frames matches the engine at batch 2", async () => {
  const net = new NatureCnnActorCritic([4, 84, 84], 6, { rng: new Rng(1) });
  // Bigger head weights than the 0.01-gain init, so the logits comparison is not trivially near zero.
  for (const p of net.actorHead.parameters()) p.data.forEach((v, i, a) => (a[i] = v * 100));
  const frames = new Uint8Array(2 * 4 * 84 * 84).map((_, i) => (i * 7 + (i >> 9)) % 256);
  const path = await Deno.makeTempFile({ suffix: ".onnx" });
  try {
    await exportPolicyOnnx(net, path, { metadata: { env: "ALE/Pong-v5" } });
    await using policy = await OnnxPolicy.load(path, { executionProvider: "wasm" });
    assert.equal(policy.obsDtype, "uint8");
    assert.equal(policy.signature.metadata["arcadia.policy"], "NatureCnnActorCritic");
    assert.equal(policy.signature.metadata.env, "ALE/Pong-v5");
    const out = await policy.act(frames);
    const ref = noGrad(() => net.forward(obsTensor(frames, [4, 84, 84])));
    assertClose(out.logits, ref.logits.data, "logits");
    assertClose(out.value!, ref.value.data, "value");
    // Float observations are converted to the input's element type.
    assertClose((await policy.act(Float32Array.from(frames))).logits, ref.logits.data, "logits from float32");
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("exported Q-networks (dueling MLP, Nature CNN) give the engine's Q-values and its ε-greedy actions", async () => {
  const mlp = new MlpQNetwork([4], 3, { rng: new Rng(2), dueling: true, hidden: [32, 16] });
  await using p = await runGraph(policyToOnnx(mlp).encode());
  assert.ok(p.actionValues);
  assert.deepEqual(p.signature.outputs.map((o) => o.name), ["q_values"]);
  const obs = pattern(64 * 4, (i) => Math.sin(0.3 * i) * 2);
  const out = await p.act(obs, { deterministic: false, rng: new TrainRng(8), epsilon: 0.05 });
  assertClose(out.logits, noGrad(() => mlp.forward(obsTensor(obs, [4]))).data, "dueling Q-values");
  assert.equal(out.value, null);
  const engine = mlp.act(obs, new Int32Array(64), { deterministic: false, rng: new TrainRng(8) });
  assert.deepEqual(out.actions, engine);
  const cnn = new NatureCnnQNetwork([4, 84, 84], 6, { rng: new Rng(3) });
  const frames = new Uint8Array(4 * 84 * 84).map((_, i) => (i * 11) % 256);
  await using pc = await runGraph(policyToOnnx(cnn).encode());
  const q = (await pc.act(frames)).logits;
  assertClose(q, noGrad(() => cnn.forward(obsTensor(frames, [4, 84, 84]))).data, "Nature CNN Q-values");
});

async function checkAppoRecurrent(model: AppoModel, lowering: "op" | "unrolled", frames: (step: number) => Uint8Array) {
  const B = 2, H = model.hiddenSize;
  await using policy = await runGraph(policyToOnnx(model, { gru: lowering }).encode());
  assert.deepEqual([policy.hiddenSize, policy.numActions], [H, model.options.numActions]);
  let h: Float32Array = pattern(B * H, (i) => 0.4 * Math.cos(i));
  for (let step = 0; step < 3; step++) {
    const raw = frames(step);
    const out = await policy.act(raw, { h });
    const ref = noGrad(() => model.forward(model.prepareObs(raw, B), B, new Tensor(h.slice(), [B, H])));
    assertClose(out.logits, ref.logits.data, `${lowering} step ${step} logits`);
    assertClose(out.value!, ref.values.data, `${lowering} step ${step} value`);
    assertClose(out.h!, ref.h!.data, `${lowering} step ${step} h`);
    h = out.h!;
  }
}

Deno.test("the APPO Doom model with a GRU core and input normalization gives the engine's logits, values and hidden states over steps", async () => {
  // HWC frames (as the Doom env delivers them): the transpose to CHW is inside the graph.
  const model = new AppoModel({
    obsShape: [72, 128, 3],
    obsDtype: "uint8",
    numActions: 5,
    rnnSize: 32,
    seed: 2,
    normalizeInput: true,
  });
  // Per-pixel statistics in the CHW input layout, some of them tight enough that the ±5 clip acts.
  model.obsRms!.mean.forEach((_, i, a) => (a[i] = 0.5 + 0.3 * Math.sin(i)));
  model.obsRms!.var.forEach((_, i, a) => (a[i] = 0.001 + 0.05 * (1 + Math.cos(0.7 * i))));
  model.obsRms!.count = 1000; // statistics written directly come with their count (AppoRunningMeanStd.invStd)
  const frames = (step: number) =>
    new Uint8Array(2 * 72 * 128 * 3).map((_, i) => (i * 13 + step * 29 + (i >> 7)) % 256);
  await checkAppoRecurrent(model, "op", frames);
  await checkAppoRecurrent(model, "unrolled", frames);
});

Deno.test("the APPO Doom model without a core on float32 CHW frames matches the engine", async () => {
  const model = new AppoModel({
    obsShape: [3, 48, 64],
    obsDtype: "float32",
    numActions: 4,
    nonlinearity: "relu",
    seed: 5,
  });
  const obs = pattern(2 * 3 * 48 * 64, (i) => Math.abs(Math.sin(0.01 * i)));
  await using policy = await runGraph(policyToOnnx(model).encode());
  assert.deepEqual([policy.obsDtype, policy.hiddenSize], ["float32", 0]);
  const out = await policy.act(obs);
  const ref = noGrad(() => model.forward(model.prepareObs(obs, 2), 2));
  assertClose(out.logits, ref.logits.data, "logits");
  assertClose(out.value!, ref.values.data, "value");
});

Deno.test("the APPO MLP model exports its input normalization and gives values in return units", async () => {
  const model = new AppoModel({
    obsShape: [6],
    obsDtype: "float32",
    numActions: 3,
    mlpLayers: [32, 32],
    rnnSize: 8,
    normalizeInput: true,
    normalizeReturns: true,
    seed: 4,
  });
  model.obsRms!.update(pattern(60, (i) => 3 * Math.sin(i) + (i % 6)), 10);
  model.retRms!.update(new Float32Array([5, 9, -2, 14]), 4);
  const B = 3, obs = pattern(B * 6, (i) => 4 * Math.cos(0.9 * i));
  const h = pattern(B * 8, (i) => 0.3 * Math.sin(i));
  await using policy = await runGraph(policyToOnnx(model).encode());
  const out = await policy.act(obs, { h });
  const ref = noGrad(() => model.forward(model.prepareObs(obs, B), B, new Tensor(h.slice(), [B, 8])));
  assertClose(out.logits, ref.logits.data, "logits");
  // Within 1e-4 in normalized units, i.e. scaled by the return std in return units.
  const std = Math.sqrt(model.retRms!.var[0] + 1e-8);
  assert.ok(std > 3);
  assertClose(out.value!, Array.from(ref.values.data, (v) => model.denormalizeValue(v)), "value", 1e-4 * std);
  assertClose(out.h!, ref.h!.data, "h");
});

Deno.test("exportOnnx writes any Sequential of built-in layers atomically, with a dynamic batch", async () => {
  const rng = new Rng(7);
  const net = new Sequential([
    new Conv2d(2, 4, 3, { rng, stride: 2, padding: 1 }),
    new ReLU(),
    new Conv2d(4, 4, 2, { rng }),
  ]);
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(exportOnnx(net, `${dir}/net.onnx`, { inputShape: [2, 9, 9] }), /stride\/padding private/);
    await exportOnnx(net, `${dir}/net.onnx`, { inputShape: [2, 9, 9], convs: [{ stride: 2, padding: 1 }, {}] });
    assert.deepEqual(Array.from(Deno.readDirSync(dir), (e) => e.name), ["net.onnx"]);
    const sig = readOnnxSignature(await Deno.readFile(`${dir}/net.onnx`));
    assert.deepEqual(sig.outputs[0].shape, ["batch", 4, 4, 4]);
    // Run it as a "policy" whose logits are the flattened feature maps.
    await using p = await OnnxPolicy.load(`${dir}/net.onnx`, {
      executionProvider: "wasm",
      names: { obs: "input", logits: "output" },
    });
    const x = pattern(3 * 2 * 81, (i) => Math.sin(0.37 * i));
    const out = await p.act(x);
    assertClose(out.logits, noGrad(() => net.forward(new Tensor(x, [3, 2, 9, 9]))).data, "conv output");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a GRUCell lowers to the ONNX GRU op and to primitives with PyTorch's gate arithmetic", async () => {
  const cell = new GRUCell(5, 4, { rng: new Rng(9) });
  const x = pattern(2 * 5, (i) => Math.sin(i)), h = pattern(2 * 4, (i) => Math.cos(2 * i));
  const ref = noGrad(() => cell.forward(new Tensor(x, [2, 5]), new Tensor(h, [2, 4]))).data;
  for (const lowering of ["op", "unrolled"] as const) {
    const g = new OnnxGraph();
    const hv = g.input("h", ["batch", 4]);
    const y = g.gruCell(cell, g.input("obs", ["batch", 5]), hv, { lowering });
    g.output(g.mul(y, 1), "logits"); // logits = h' (OnnxPolicy needs a logits output)
    g.output(y, "h_out");
    await using p = await runGraph(g.encode());
    const out = await p.act(x, { h });
    assertClose(out.logits, ref, `${lowering} h'`);
    assertClose(out.h!, ref, `${lowering} h_out`);
  }
});

interface Reference {
  doom: {
    batch: number;
    obs_shape: number[];
    steps: { h: number[]; logits: number[]; value: number[]; h_out: number[] }[];
  };
  cartpole: { batch: number; obs: number[]; logits: number[]; value: number[] };
}

function doomObs(batch: number, step: number, shape: number[]): Uint8Array {
  const n = batch * shape.reduce((a, b) => a * b, 1);
  return Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11 * step + 5) % 256);
}

Deno.test("the PyTorch-exported Sample-Factory-style Doom model reproduces PyTorch's outputs over two steps", async () => {
  const ref: Reference = JSON.parse(await Deno.readTextFile(new URL("onnx_reference.json", FIXTURES)));
  await using policy = await OnnxPolicy.load(new URL("onnx_doom_gru.onnx", FIXTURES), { executionProvider: "wasm" });
  assert.equal(policy.signature.producer, "pytorch");
  assert.deepEqual([policy.obsShape, policy.obsDtype, policy.hiddenSize, policy.numActions], [
    ref.doom.obs_shape,
    "uint8",
    32,
    5,
  ]);
  let h: Float32Array = Float32Array.from(ref.doom.steps[0].h);
  for (const [step, want] of ref.doom.steps.entries()) {
    const out = await policy.act(doomObs(ref.doom.batch, step, ref.doom.obs_shape), { h });
    assertClose(out.logits, want.logits, `step ${step} logits`);
    assertClose(out.value!, want.value, `step ${step} value`);
    assertClose(out.h!, want.h_out, `step ${step} h_out`);
    h = out.h!;
  }
});

Deno.test("the PyTorch-exported CartPole MLP reproduces PyTorch's outputs and plays CartPole-v1 episodes", async () => {
  const ref: Reference = JSON.parse(await Deno.readTextFile(new URL("onnx_reference.json", FIXTURES)));
  await using policy = await OnnxPolicy.load(new URL("onnx_cartpole_mlp.onnx", FIXTURES));
  const out = await policy.act(Float32Array.from(ref.cartpole.obs));
  assertClose(out.logits, ref.cartpole.logits, "logits");
  assertClose(out.value!, ref.cartpole.value, "value");
  using env = make("CartPole-v1");
  const greedy = await evaluateOnnx(policy, env, { episodes: 1, deterministic: true, seed: 0 });
  assert.ok(greedy.lengths[0] >= 8 && greedy.returns[0] === greedy.lengths[0], JSON.stringify(greedy));
  const sampled = await evaluateOnnx(policy, env, { episodes: 2, deterministic: false, seed: 1, maxEpisodeSteps: 50 });
  assert.ok(sampled.lengths.every((n) => n >= 1 && n <= 50));
});

Deno.test("bad input gives errors that say what is wrong", async () => {
  await assert.rejects(OnnxPolicy.load("/nonexistent/policy.onnx"), /cannot read '\/nonexistent\/policy.onnx'/);
  const notOnnx = await Deno.makeTempFile({ suffix: ".onnx" });
  try {
    await Deno.writeTextFile(notOnnx, "definitely not a protobuf\n");
    await assert.rejects(OnnxPolicy.load(notOnnx), /not an ONNX model/);
  } finally {
    await Deno.remove(notOnnx);
  }
  await using doom = await OnnxPolicy.load(new URL("onnx_doom_gru.onnx", FIXTURES), { executionProvider: "wasm" });
  await assert.rejects(doom.act(new Uint8Array(100)), /100 observation values are not a whole batch of \[3,72,128\]/);
  await assert.rejects(
    doom.act(doomObs(2, 0, [3, 72, 128]), { h: new Float32Array(32) }),
    /h has 32 values, expected 2 x 32/,
  );
  await assert.rejects(doom.act(doomObs(1, 0, [3, 72, 128]), { deterministic: false }), /pass options.rng/);
  await assert.rejects(
    OnnxPolicy.load(new URL("onnx_doom_gru.onnx", FIXTURES), { names: { obs: "pixels" } }),
    /no observation input 'pixels' \(inputs obs \[batch, 3, 72, 128\], h \[batch, 32\]/,
  );
  await doom.close();
  await assert.rejects(doom.act(doomObs(1, 0, [3, 72, 128])), /closed/);
  // Export-side mistakes.
  class Custom extends Linear {}
  const g = new OnnxGraph();
  assert.throws(
    () => g.module(new Sequential([new Tanh(), new Custom(2, 2)]), g.input("x", ["batch", 2])),
    /no ONNX lowering for Custom at '1'/,
  );
  assert.throws(
    () => g.linear(g.input("y", ["batch", 3]), zeros([2, 4]), null),
    /has 3 features, the weight expects 4/,
  );
  assert.throws(() => new OnnxGraph().encode(), /no outputs/);
});

Deno.test("sampled actions follow the logits and the generator", async () => {
  await using policy = await runGraph(policyToOnnx(new MlpActorCritic([4], 2, { rng: new Rng(0) })).encode());
  const obs = new Float32Array(4 * 64);
  const a = await policy.act(obs, { deterministic: false, rng: new TrainRng(5) });
  const b = await policy.act(obs, { deterministic: false, rng: new TrainRng(5) });
  assert.deepEqual(a.actions, b.actions);
  assert.ok(a.actions.some((x) => x === 0) && a.actions.some((x) => x === 1)); // near-uniform initial policy
});

const adapter = await navigator.gpu?.requestAdapter().catch(() => null);

Deno.test({
  name: "the WebGPU execution provider gives the wasm outputs; auto picks wasm on a software adapter",
  ignore: !adapter,
  async fn() {
    const net = new MlpActorCritic([4], 3, { rng: new Rng(3), hidden: [16, 16] });
    const bytes = policyToOnnx(net).encode();
    await using gpu = await OnnxPolicy.fromBytes(bytes, { executionProvider: "webgpu" });
    assert.equal(gpu.executionProvider, "webgpu");
    const obs = pattern(5 * 4, (i) => Math.sin(1.3 * i) * 2);
    const ref = noGrad(() => net.forward(obsTensor(obs, [4])));
    const out = await gpu.act(obs);
    assertClose(out.logits, ref.logits.data, "webgpu logits");
    assertClose(out.value!, ref.value.data, "webgpu value");
    // The GRU op has no WebGPU kernel: onnxruntime runs it on the CPU inside the same session.
    const ref2: Reference = JSON.parse(await Deno.readTextFile(new URL("onnx_reference.json", FIXTURES)));
    await using doom = await OnnxPolicy.load(new URL("onnx_doom_gru.onnx", FIXTURES), { executionProvider: "webgpu" });
    const step = ref2.doom.steps[0];
    const d = await doom.act(doomObs(ref2.doom.batch, 0, ref2.doom.obs_shape), { h: Float32Array.from(step.h) });
    assertClose(d.logits, step.logits, "webgpu doom logits");
    assertClose(d.h!, step.h_out, "webgpu doom h_out");
    await using auto = await OnnxPolicy.fromBytes(bytes);
    assert.equal(auto.executionProvider, adapter!.info.isFallbackAdapter ? "wasm" : "webgpu");
  },
});

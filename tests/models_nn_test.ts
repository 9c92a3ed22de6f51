// nn modules, optimizers, losses and distributions vs PyTorch fixtures (tests/fixtures/models_make_fixtures.py).
import assert from "node:assert/strict";
import {
  Adam,
  add,
  Categorical,
  clipGradNorm,
  Conv2d,
  conv2d,
  DiagGaussian,
  ELU,
  Flatten,
  GRU,
  GRUCell,
  huberLoss,
  Linear,
  linearSchedule,
  LSTM,
  LSTMCell,
  matmul,
  mseLoss,
  mul,
  type Optimizer,
  orthogonalInit,
  ReLU,
  RMSprop,
  Rng,
  Sequential,
  setNanCheck,
  SGD,
  slice,
  smoothL1Loss,
  sum,
  Tanh,
  type Tensor,
  tensor,
  transpose,
  zeros,
} from "../models/mod.ts";

setNanCheck(true);

interface Enc {
  shape: number[];
  data: number[];
}
const read = (name: string) => JSON.parse(Deno.readTextFileSync(new URL(`./fixtures/${name}`, import.meta.url)));
const NN = read("models_nn.json");
const OPTIM = read("models_optim.json");

function t(e: Enc, requiresGrad = false): Tensor {
  return tensor(Float32Array.from(e.data), { shape: e.shape, requiresGrad });
}
function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (!(Math.abs(actual[i] - expected[i]) <= tol * (1 + Math.abs(expected[i])))) {
      assert.fail(`${what}[${i}]: got ${actual[i]}, want ${expected[i]}`);
    }
  }
}

Deno.test("GRUCell matches torch.nn.GRUCell (value and gradients)", () => {
  const f = NN.gru_cell;
  const cell = new GRUCell(4, 5);
  cell.weight_ih.data.set(f.weight_ih.data);
  cell.weight_hh.data.set(f.weight_hh.data);
  cell.bias_ih.data.set(f.bias_ih.data);
  cell.bias_hh.data.set(f.bias_hh.data);
  const x = t(f.x, true), h = t(f.h, true);
  const out = cell.forward(x, h);
  close(out.data, f.out.data, 1e-5, "gru out");
  sum(mul(out, t(f.weight))).backward();
  close(x.grad!.data, f.grad_x.data, 1e-5, "grad x");
  close(h.grad!.data, f.grad_h.data, 1e-5, "grad h");
  close(cell.weight_ih.grad!.data, f.grad_weight_ih.data, 1e-5, "grad weight_ih");
  close(cell.bias_hh.grad!.data, f.grad_bias_hh.data, 1e-5, "grad bias_hh");
  assert.deepEqual(cell.namedParameters().map(([n]) => n), ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]);
});

Deno.test("LSTMCell matches torch.nn.LSTMCell (value and gradients)", () => {
  const f = NN.lstm_cell;
  const cell = new LSTMCell(4, 5);
  cell.weight_ih.data.set(f.weight_ih.data);
  cell.weight_hh.data.set(f.weight_hh.data);
  cell.bias_ih.data.set(f.bias_ih.data);
  cell.bias_hh.data.set(f.bias_hh.data);
  const x = t(f.x, true), h = t(f.h, true), c = t(f.c, true);
  const [h1, c1] = cell.forward(x, h, c);
  close(h1.data, f.h1.data, 1e-5, "h1");
  close(c1.data, f.c1.data, 1e-5, "c1");
  const loss = sum(mul(h1, t(f.wh)));
  const loss2 = sum(mul(c1, t(f.wc)));
  loss.backward({ retainGraph: true });
  loss2.backward();
  assert.throws(() => loss2.backward(), /backward through a graph a second time/);
  close(x.grad!.data, f.grad_x.data, 1e-5, "grad x");
  close(c.grad!.data, f.grad_c.data, 1e-5, "grad c");
  close(cell.weight_hh.grad!.data, f.grad_weight_hh.data, 1e-5, "grad weight_hh");
});

Deno.test("GRU sequence equals stepping the cell, and masks reset the state", () => {
  const rng = new Rng(3);
  const gru = new GRU(3, 4, { rng });
  const T = 4, B = 2;
  const x = tensor(Float32Array.from({ length: T * B * 3 }, () => rng.normal()), { shape: [T, B, 3] });
  const h0 = tensor(Float32Array.from({ length: B * 4 }, () => rng.normal()), { shape: [B, 4] });
  const masks = tensor([[1, 1], [1, 0], [1, 1], [0, 1]]);
  const { output, h } = gru.forward(x, h0, { masks });
  assert.deepEqual(output.shape, [T, B, 4]);
  let hh = h0;
  for (let s = 0; s < T; s++) {
    hh = mul(hh, slice(masks, 0, s, s + 1).reshape([B, 1]));
    hh = gru.cell.forward(slice(x, 0, s, s + 1).reshape([B, 3]), hh);
    close(slice(output, 0, s, s + 1).data, hh.data, 1e-6, `step ${s}`);
  }
  close(h.data, hh.data, 1e-6, "final h");
  // Row 1 is reset before step 1: from there on it must equal a run started from zeros at step 1.
  const fresh = gru.cell.forward(slice(x, 0, 1, 2).reshape([B, 3]), zeros([B, 4]));
  close(slice(slice(output, 0, 1, 2), 1, 1, 2).data, slice(fresh, 0, 1, 2).data, 1e-6, "reset row");
  assert.deepEqual(gru.namedParameters().map(([n]) => n), [
    "cell.weight_ih",
    "cell.weight_hh",
    "cell.bias_ih",
    "cell.bias_hh",
  ]);
});

Deno.test("GRU sequence: the fused pass equals the step-by-step graph in value and every gradient", () => {
  const rng = new Rng(7);
  const T = 6, B = 3, I = 4, H = 5;
  const gru = new GRU(I, H, { rng });
  const x = tensor(Float32Array.from({ length: T * B * I }, () => rng.normal()), { shape: [T, B, I] });
  const h0 = tensor(Float32Array.from({ length: B * H }, () => rng.normal()), { shape: [B, H] });
  const masks = tensor([[1, 1, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1], [1, 1, 0], [1, 1, 1]]);
  const gOut = tensor(Float32Array.from({ length: T * B * H }, () => rng.normal()), { shape: [T, B, H] });
  const gH = tensor(Float32Array.from({ length: B * H }, () => rng.normal()), { shape: [B, H] });
  const run = (fused: boolean) => {
    for (const t of [x, h0]) {
      t.requiresGrad = true;
      t.grad = null;
    }
    gru.zeroGrad();
    const { output, h } = gru.forward(x, h0, { masks, fused });
    sum(add(mul(output, gOut), mul(h, gH))).backward();
    return [output.data, h.data, x.grad!.data, h0.grad!.data, ...gru.parameters().map((p) => p.grad!.data)];
  };
  const fused = run(true), graph = run(false);
  const what = ["output", "h", "x grad", "h0 grad", "weight_ih grad", "weight_hh grad", "bias_ih grad", "bias_hh grad"];
  graph.forEach((want, i) => close(fused[i], want, 1e-5, what[i]));
});

Deno.test("LSTM sequence runs with masks and backpropagates through time", () => {
  const rng = new Rng(5);
  const lstm = new LSTM(3, 4, { rng });
  const x = tensor(Float32Array.from({ length: 5 * 2 * 3 }, () => rng.normal()), { shape: [5, 2, 3] });
  const { output, h, c } = lstm.forward(x, zeros([2, 4]), zeros([2, 4]), {
    masks: tensor([[1, 1], [1, 0], [1, 1], [0, 1], [1, 1]]),
  });
  assert.deepEqual(output.shape, [5, 2, 4]);
  assert.deepEqual(c!.shape, [2, 4]);
  sum(h).backward();
  for (const p of lstm.parameters()) assert.ok(p.grad && p.grad.data.some((v) => v !== 0));
});

Deno.test("Sequential Nature-CNN: shapes, PyTorch-style names, init, zeroGrad", () => {
  const rng = new Rng(0);
  const g = Math.SQRT2;
  const net = new Sequential([
    new Conv2d(4, 32, 8, { stride: 4, rng, orthogonalGain: g }),
    new ReLU(),
    new Conv2d(32, 64, 4, { stride: 2, rng, orthogonalGain: g }),
    new ReLU(),
    new Conv2d(64, 64, 3, { stride: 1, rng, orthogonalGain: g }),
    new ReLU(),
    new Flatten(),
    new Linear(3136, 512, { rng, orthogonalGain: g }),
    new ELU(),
    new Linear(512, 6, { rng, orthogonalGain: 0.01 }),
  ]);
  const y = net.forward(zeros([2, 4, 84, 84]));
  assert.deepEqual(y.shape, [2, 6]);
  const names = net.namedParameters().map(([n]) => n);
  assert.deepEqual(names.slice(0, 4), ["0.weight", "0.bias", "2.weight", "2.bias"]);
  assert.equal(names.at(-1), "9.bias");
  sum(y).backward();
  assert.ok(net.parameters().every((p) => p.grad !== null));
  net.zeroGrad();
  assert.ok(net.parameters().every((p) => p.grad!.data.every((v) => v === 0)));
  assert.equal(net.eval().training, false);
  assert.equal(net.layers[0].training, false);
});

Deno.test("orthogonal init: W W^T = gain^2 I for wide and tall matrices; seeded init is reproducible", () => {
  for (const [r, c] of [[8, 20], [20, 8], [6, 6]]) {
    const w = orthogonalInit(zeros([r, c]), { gain: Math.SQRT2, rng: new Rng(1) });
    const small = r <= c ? w : transpose(w);
    const gram = matmul(small, transpose(small));
    const n = gram.shape[0];
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        assert.ok(Math.abs(gram.data[i * n + j] - (i === j ? 2 : 0)) < 1e-5, `${r}x${c} gram[${i},${j}]`);
      }
    }
  }
  const a = new Linear(5, 3, { rng: new Rng(9) }), b = new Linear(5, 3, { rng: new Rng(9) });
  assert.deepEqual(a.weight.toArray(), b.weight.toArray());
  const bound = 1 / Math.sqrt(5);
  assert.ok(a.weight.data.every((v) => Math.abs(v) <= bound) && a.bias!.data.every((v) => Math.abs(v) <= bound));
});

function makeOptimizer(name: string, params: Tensor[], o: Record<string, unknown>): Optimizer {
  // deno-lint-ignore no-explicit-any
  const opts = o as any;
  if (name.startsWith("adam")) return new Adam(params, opts);
  if (name.startsWith("rmsprop")) return new RMSprop(params, opts);
  return new SGD(params, opts);
}

for (const c of OPTIM.optimizers) {
  Deno.test(`${c.name}: every step matches torch.optim`, () => {
    const params: Tensor[] = c.params.map((e: Enc) => t(e, true));
    const opt = makeOptimizer(c.name, params, c.options);
    c.grads.forEach((g: Enc[], s: number) => {
      params.forEach((p, i) => (p.grad = t(g[i])));
      opt.step();
      params.forEach((p, i) => close(p.data, c.steps[s][i].data, 2e-6, `${c.name} step ${s} param ${i}`));
    });
    // State round-trip: a fresh optimizer loaded from stateDict continues identically.
    const copy = params.map((p) => t({ shape: [...p.shape], data: Array.from(p.data) }, true));
    const opt2 = makeOptimizer(c.name, copy, c.options);
    opt2.loadStateDict(opt.stateDict());
    params.forEach((p, i) => (p.grad = copy[i].grad = t(c.grads[0][i])));
    opt.step();
    opt2.step();
    params.forEach((p, i) => assert.deepEqual(copy[i].toArray(), p.toArray()));
  });
}

Deno.test("optimizer loadStateDict names mismatched buffers", () => {
  const opt = new Adam([zeros([3], { requiresGrad: true })]);
  assert.throws(
    () =>
      opt.loadStateDict({ step: 1, buffers: { "0.exp_avg": new Float32Array(4), "1.exp_avg": new Float32Array(1) } }),
    /'0.exp_avg' has 4 values, parameter has 3[\s\S]*'1.exp_avg' refers to parameter 1/,
  );
});

Deno.test("clipGradNorm matches torch.nn.utils.clip_grad_norm_", () => {
  const f = OPTIM.clip;
  const ps = f.grads.map((g: Enc) => {
    const p = zeros(g.shape, { requiresGrad: true });
    p.grad = t(g);
    return p;
  });
  const total = clipGradNorm(ps, f.maxNorm);
  assert.ok(Math.abs(total - f.total) < 1e-5);
  ps.forEach((p: Tensor, i: number) => close(p.grad!.data, f.clipped[i].data, 1e-6, `clipped ${i}`));
});

Deno.test("linearSchedule interpolates then holds", () => {
  const s = linearSchedule({ start: 1, end: 0.1, steps: 10 });
  assert.equal(s(0), 1);
  assert.ok(Math.abs(s(5) - 0.55) < 1e-12);
  assert.ok(Math.abs(s(20) - 0.1) < 1e-12);
});

Deno.test("mse, huber and smooth L1 match PyTorch", () => {
  const f = NN.losses;
  const a = t(f.input), b = t(f.target);
  assert.ok(Math.abs(mseLoss(a, b).item() - f.mse) < 1e-5);
  assert.ok(Math.abs(huberLoss(a, b).item() - f.huber_d1) < 1e-5);
  assert.ok(Math.abs(huberLoss(a, b, { delta: 2 }).item() - f.huber_d2) < 1e-5);
  assert.ok(Math.abs(smoothL1Loss(a, b, { beta: 0.5 }).item() - f.smooth_l1_b05) < 1e-5);
});

Deno.test("Categorical logProb/entropy match torch.distributions; sampling follows the probabilities", () => {
  const f = NN.distributions;
  const logits = t(f.logits, true);
  const d = new Categorical(logits);
  close(d.logProb(t(f.actions)).data, f.cat_log_prob.data, 1e-5, "logProb");
  close(d.entropy().data, f.cat_entropy.data, 1e-5, "entropy");
  sum(d.entropy()).backward();
  assert.ok(logits.grad!.data.some((v) => v !== 0));
  const probs = new Categorical(tensor([[0, Math.log(3)]]));
  const rng = new Rng(11);
  let ones = 0;
  for (let i = 0; i < 4000; i++) ones += probs.sample(rng).data[0];
  assert.ok(Math.abs(ones / 4000 - 0.75) < 0.03, `sampled frequency ${ones / 4000}`);
  assert.deepEqual(probs.mode().toArray(), [1]);
});

Deno.test("DiagGaussian logProb/entropy match torch.distributions.Normal summed over the last axis", () => {
  const f = NN.distributions;
  const d = new DiagGaussian(t(f.mean), t(f.log_std));
  close(d.logProb(t(f.x)).data, f.normal_log_prob.data, 1e-5, "logProb");
  close(d.entropy().data, f.normal_entropy.data, 1e-5, "entropy");
  assert.deepEqual(d.sample(new Rng(1)).shape, [3, 2]);
});

Deno.test("training a small MLP with Adam drives the loss down (end-to-end autograd + optimizer)", () => {
  const rng = new Rng(7);
  const net = new Sequential([new Linear(2, 32, { rng }), new Tanh(), new Linear(32, 1, { rng })]);
  const opt = new Adam(net.parameters(), { lr: 0.01 });
  const xs = tensor(Float32Array.from({ length: 128 }, () => rng.range(-1, 1)), { shape: [64, 2] });
  const ys = tensor(Float32Array.from({ length: 64 }, (_, i) => xs.data[2 * i] * xs.data[2 * i + 1]), {
    shape: [64, 1],
  });
  let first = 0, last = 0;
  for (let step = 0; step < 300; step++) {
    opt.zeroGrad();
    const loss = mseLoss(net.forward(xs), ys);
    loss.backward();
    opt.step();
    if (step === 0) first = loss.item();
    last = loss.item();
  }
  assert.ok(last < first / 10, `loss went from ${first} to ${last}`);
});

Deno.test("copyFrom copies (target network) and blends with tau (Polyak)", () => {
  const a = new Linear(3, 2, { rng: new Rng(1) }), b = new Linear(3, 2, { rng: new Rng(2) });
  const before = b.weight.toArray();
  b.copyFrom(a, { tau: 0.25 });
  b.weight.data.forEach((v, i) => assert.ok(Math.abs(v - (0.25 * a.weight.data[i] + 0.75 * before[i])) < 1e-6));
  b.copyFrom(a);
  assert.deepEqual(b.weight.toArray(), a.weight.toArray());
  assert.throws(() => b.copyFrom(new Linear(4, 2)), /copyFrom: no parameter 'weight' of shape \[2,3\]/);
});

Deno.test("Sequential fuses Linear/Conv2d + ReLU/ELU/Tanh with the same values and gradients as running layers one by one", () => {
  for (const algorithm of ["im2col", "flat"] as const) {
    const rng = new Rng(21);
    const net = new Sequential([
      new Conv2d(2, 4, 4, { stride: 2, rng }),
      new ELU(0.7),
      new Conv2d(4, 3, 2, { stride: 2, rng }),
      new ReLU(),
      new Flatten(),
      new Linear(12, 5, { rng }),
      new Tanh(),
      new Linear(5, 2, { rng }),
    ]);
    const x = tensor(Float32Array.from({ length: 2 * 2 * 10 * 10 }, () => rng.normal()), {
      shape: [2, 2, 10, 10],
      requiresGrad: true,
    });
    const w = tensor(Float32Array.from({ length: 4 }, () => rng.normal()), { shape: [2, 2] });
    // Reference: every layer on its own (no fusion), convs forced to the same algorithm.
    const layerByLayer = () => {
      let y = x;
      for (const l of net.layers) {
        y = l instanceof Conv2d ? conv2d(y, l.weight, l.bias, { stride: 2, algorithm }) : l.forward(y);
      }
      return y;
    };
    const ref = layerByLayer();
    sum(mul(ref, w)).backward();
    const refGrads = [x, ...net.parameters()].map((p) => p.grad!.toArray());
    x.grad = null;
    net.zeroGrad();
    const fused = net.forward(x);
    assert.equal(fused.node!.inputs[0].node!.op, "linear+tanh", "Linear + Tanh ran as one op");
    close(fused.data, ref.data, 1e-6, `${algorithm} value`);
    sum(mul(fused, w)).backward();
    [x, ...net.parameters()].forEach((p, i) => close(p.grad!.data, refGrads[i], 1e-5, `${algorithm} grad ${i}`));
  }
});

Deno.test("Categorical with masked (-Infinity) logits: zero probability, finite entropy, never sampled", () => {
  setNanCheck(false); // -Infinity log-probabilities are expected here
  using _restore = { [Symbol.dispose]: () => setNanCheck(true) };
  const logits = tensor([[0, -Infinity, 0]], { requiresGrad: true });
  const d = new Categorical(logits);
  assert.ok(Math.abs(d.entropy().item() - Math.log(2)) < 1e-6);
  const rng = new Rng(3);
  for (let i = 0; i < 200; i++) assert.notEqual(d.sample(rng).data[0], 1);
  sum(d.entropy()).backward();
  assert.ok(logits.grad!.data.every((v) => Number.isFinite(v)));
});

Deno.test("zeroGrad is lazy: backward overwrites stale weight gradients, accumulates otherwise, readers see zeros", () => {
  const rng = new Rng(5);
  for (const algorithm of ["im2col", "flat"] as const) {
    const net = new Sequential([
      new Conv2d(2, 4, 4, { stride: 2, rng, algorithm }),
      new ReLU(),
      new Flatten(),
      new Linear(4 * 7 * 7, 3, { rng }),
    ]);
    const x = tensor(Float32Array.from({ length: 2 * 2 * 16 * 16 }, () => rng.normal()), { shape: [2, 2, 16, 16] });
    const grads = () => net.parameters().map((p) => Array.from(p.grad!.data));
    sum(net.forward(x)).backward();
    const once = grads();
    assert.ok(once.every((g) => g.some((v) => v !== 0)), `${algorithm}: every parameter got a gradient`);
    sum(net.forward(x)).backward(); // no zeroGrad: accumulates
    grads().forEach((g, i) => g.forEach((v, j) => assert.ok(Math.abs(v - 2 * once[i][j]) <= 1e-5 * (1 + Math.abs(v)))));
    net.zeroGrad();
    sum(net.forward(x)).backward(); // stale buffers (holding the doubled sums): overwritten, not added to
    assert.deepEqual(grads(), once, `${algorithm}: a backward after zeroGrad gives the single-pass gradient`);
    net.zeroGrad();
    assert.ok(net.parameters().every((p) => p.grad!.data.every((v) => v === 0)), "readers see zeros after zeroGrad");
  }
  // A weight used twice in one graph: the first use overwrites the stale buffer, the second adds.
  const lin = new Linear(3, 2, { rng, bias: false });
  const x = tensor([[1, 2, 3]]);
  sum(lin.forward(x)).backward();
  const single = Array.from(lin.weight.grad!.data);
  lin.zeroGrad();
  sum(add(lin.forward(x), lin.forward(x))).backward();
  assert.deepEqual(Array.from(lin.weight.grad!.data), single.map((v) => 2 * v));
});

// Every op: value and gradient vs PyTorch (float64) fixtures, and gradient vs central finite differences.
import assert from "node:assert/strict";
import {
  add,
  arange,
  argmax,
  backend,
  clamp,
  concat,
  conv2d,
  div,
  elu,
  exp,
  expand,
  fromBytes,
  gather,
  linear,
  log,
  logSoftmax,
  matmul,
  max,
  maximum,
  mean,
  minimum,
  mul,
  neg,
  noGrad,
  permute,
  pow,
  randn,
  relu,
  Rng,
  setNanCheck,
  sigmoid,
  slice,
  softmax,
  sqrt,
  stack,
  std,
  sub,
  sum,
  tanh,
  type Tensor,
  tensor,
  useBackend,
  variance,
  where,
} from "../models/mod.ts";
import { abs } from "../models/ops.ts";

setNanCheck(true);

interface Enc {
  shape: number[];
  data: number[];
}
interface OpCase {
  name: string;
  params: Record<string, unknown>;
  inputs: Enc[];
  consts: Record<string, Enc>;
  output: Enc;
  weight?: Enc;
  grads?: Enc[];
}

const cases: OpCase[] = JSON.parse(
  Deno.readTextFileSync(new URL("./fixtures/models_ops.json", import.meta.url)),
);

function t(e: Enc, requiresGrad = false): Tensor {
  return tensor(Float32Array.from(e.data), { shape: e.shape, requiresGrad });
}

type OpFn = (xs: Tensor[], c: Record<string, Tensor>, p: Record<string, unknown>) => Tensor;

// deno-lint-ignore no-explicit-any
const P = (p: Record<string, unknown>, k: string): any => p[k];

const OPS: Record<string, OpFn> = {
  add_broadcast: ([a, b]) => add(a, b),
  sub_broadcast: ([a, b]) => sub(a, b),
  mul_broadcast: ([a, b]) => mul(a, b),
  div_broadcast: ([a, b]) => div(a, b),
  maximum: ([a, b]) => maximum(a, b),
  minimum: ([a, b]) => minimum(a, b),
  neg: ([a]) => neg(a),
  exp: ([a]) => exp(a),
  log: ([a]) => log(a),
  sqrt: ([a]) => sqrt(a),
  abs: ([a]) => abs(a),
  pow3: ([a], _, p) => pow(a, P(p, "p")),
  pow_half: ([a], _, p) => pow(a, P(p, "p")),
  relu: ([a]) => relu(a),
  elu: ([a]) => elu(a),
  tanh: ([a]) => tanh(a),
  sigmoid: ([a]) => sigmoid(a),
  clamp: ([a], _, p) => clamp(a, P(p, "min"), P(p, "max")),
  matmul: ([a, b]) => matmul(a, b),
  matmul_nd_2d: ([a, b]) => matmul(a, b),
  matmul_batched: ([a, b]) => matmul(a, b),
  linear: ([x, w, b]) => linear(x, w, b),
  linear_nobias: ([x, w]) => linear(x, w),
  conv2d_s2_p1: ([x, w, b], _, p) => conv2d(x, w, b, { stride: P(p, "stride"), padding: P(p, "padding") }),
  conv2d_b1: ([x, w, b], _, p) => conv2d(x, w, b, { stride: P(p, "stride"), padding: P(p, "padding") }),
  conv2d_nature1: ([x, w, b], _, p) => conv2d(x, w, b, { stride: P(p, "stride"), padding: P(p, "padding") }),
  conv2d_k4_s2_p1: ([x, w, b], _, p) => conv2d(x, w, b, { stride: P(p, "stride"), padding: P(p, "padding") }),
  conv2d_doom2: ([x, w, b], _, p) => conv2d(x, w, b, { stride: P(p, "stride"), padding: P(p, "padding") }),
  conv2d_rect: ([x, w], _, p) => conv2d(x, w, null, { stride: P(p, "stride"), padding: P(p, "padding") }),
  sum_all: ([a]) => sum(a),
  sum_axis1_keep: ([a], _, p) => sum(a, { axis: P(p, "axis"), keepdim: P(p, "keepdim") }),
  mean_axes: ([a], _, p) => mean(a, { axis: P(p, "axis") }),
  max_axis1: ([a], _, p) => max(a, { axis: P(p, "axis") }),
  max_all: ([a]) => max(a),
  log_softmax: ([a], _, p) => logSoftmax(a, P(p, "axis")),
  softmax_axis1: ([a], _, p) => softmax(a, P(p, "axis")),
  gather: ([a], c, p) => gather(a, P(p, "axis"), c.index),
  where: ([a, b], c) => where(c.cond, a, b),
  permute: ([a], _, p) => permute(a, P(p, "dims")),
  slice: ([a], _, p) => slice(a, P(p, "axis"), P(p, "start"), P(p, "end")),
  concat: ([a, b], _, p) => concat([a, b], P(p, "axis")),
  stack: ([a, b], _, p) => stack([a, b], P(p, "axis")),
  expand: ([a], _, p) => expand(a, P(p, "shape")),
  argmax: ([a], _, p) => argmax(a, { axis: P(p, "axis") }),
};

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= tol * (1 + Math.abs(expected[i])))) {
      assert.fail(`${what}[${i}]: got ${actual[i]}, want ${expected[i]} (|err| ${err})`);
    }
  }
}

function run(c: OpCase, inputs: Tensor[]): Tensor {
  const consts = Object.fromEntries(Object.entries(c.consts).map(([k, v]) => [k, t(v)]));
  return OPS[c.name](inputs, consts, c.params);
}

Deno.test("every fixture case has an op mapping", () => {
  for (const c of cases) assert.ok(OPS[c.name], `no mapping for fixture '${c.name}'`);
});

for (const c of cases) {
  Deno.test(`${c.name}: value and gradient match PyTorch`, () => {
    const inputs = c.inputs.map((e) => t(e, c.grads !== undefined));
    const out = run(c, inputs);
    assert.deepEqual([...out.shape], c.output.shape);
    assertClose(out.data, c.output.data, 2e-5, `${c.name} value`);
    if (!c.grads || !c.weight) return;
    sum(mul(out, t(c.weight))).backward();
    inputs.forEach((x, i) => {
      assert.ok(x.grad, `${c.name}: input ${i} has no grad`);
      assertClose(x.grad.data, c.grads![i].data, 2e-5, `${c.name} grad[${i}]`);
    });
  });

  if (!c.grads || !c.weight) continue;
  Deno.test(`${c.name}: gradient matches central finite differences`, () => {
    const inputs = c.inputs.map((e) => t(e, true));
    const w = t(c.weight!);
    sum(mul(run(c, inputs), w)).backward();
    const h = 1e-2;
    const f = () => noGrad(() => sum(mul(run(c, inputs), w)).item());
    inputs.forEach((x, i) => {
      const analytic = x.grad!.data;
      for (let j = 0; j < x.size; j++) {
        const v = x.data[j];
        x.data[j] = v + h;
        const fp = f();
        x.data[j] = v - h;
        const fm = f();
        x.data[j] = v;
        x.data[j] = v + h / 2;
        const fp2 = f();
        x.data[j] = v - h / 2;
        const fm2 = f();
        x.data[j] = v;
        const numeric = (fp - fm) / (2 * h);
        // Skip points within h of a kink (relu, abs, clamp, max): there the two step sizes disagree.
        if (Math.abs(numeric - (fp2 - fm2) / h) > 2e-3 * (1 + Math.abs(numeric))) continue;
        const err = Math.abs(numeric - analytic[j]);
        if (err > 2e-2 * (1 + Math.abs(numeric))) {
          assert.fail(`${c.name} input ${i}[${j}]: finite difference ${numeric}, autograd ${analytic[j]}`);
        }
      }
    });
  });
}

for (const c of cases.filter((c) => c.name.startsWith("conv2d"))) {
  for (const algorithm of ["im2col", "flat"] as const) {
    const [, , kh, kw] = c.inputs[1].shape;
    const st = c.params.stride as number | number[];
    const [sh, sw] = typeof st === "number" ? [st, st] : st;
    if (algorithm === "flat" && (kh % sh !== 0 || kw % sw !== 0)) continue;
    Deno.test(`${c.name} with algorithm "${algorithm}": value and gradient match PyTorch`, () => {
      const [x, w, b] = c.inputs.map((e) => t(e, true));
      const out = conv2d(x, w, b ?? null, { stride: st as number, padding: c.params.padding as number, algorithm });
      assertClose(out.data, c.output.data, 2e-5, `${c.name}/${algorithm} value`);
      sum(mul(out, t(c.weight!))).backward();
      [x, w, b].forEach((v, i) =>
        v && assertClose(v.grad!.data, c.grads![i].data, 2e-5, `${c.name}/${algorithm} grad[${i}]`)
      );
    });
  }
}

Deno.test("shape errors name the op and both shapes", () => {
  assert.throws(
    () => matmul(tensor(new Float32Array(6), { shape: [2, 3] }), tensor(new Float32Array(20), { shape: [4, 5] })),
    {
      message: "matmul: cannot multiply [2,3] by [4,5]",
    },
  );
  assert.throws(() => add(tensor([1, 2, 3]), tensor([1, 2])), /add: cannot broadcast \[3\] with \[2\]/);
});

Deno.test("NaN check names the op that produced the NaN", () => {
  assert.throws(() => log(tensor([-1])), /op 'log' produced NaN/);
});

Deno.test("reshape is a view sharing data and passes gradients", () => {
  const x = tensor([1, 2, 3, 4, 5, 6], { requiresGrad: true });
  const y = x.reshape([2, -1]);
  assert.equal(y.data, x.data);
  assert.deepEqual(y.shape, [2, 3]);
  sum(mul(y, y)).backward();
  assert.deepEqual(x.grad!.toArray(), [2, 4, 6, 8, 10, 12]);
});

Deno.test("detach stops gradients and noGrad records nothing", () => {
  const x = tensor([1, 2], { requiresGrad: true });
  const y = mul(x.detach(), x);
  sum(y).backward();
  assert.deepEqual(x.grad!.toArray(), [1, 2]);
  const z = noGrad(() => mul(x, x));
  assert.equal(z.requiresGrad, false);
  assert.equal(z.node, null);
});

Deno.test("gradients accumulate across backward calls on leaves", () => {
  const x = tensor([3], { requiresGrad: true });
  sum(mul(x, x)).backward();
  sum(mul(x, x)).backward();
  assert.deepEqual(x.grad!.toArray(), [12]);
});

Deno.test("a tensor used twice gets both gradient contributions (diamond graph)", () => {
  const x = tensor([2], { requiresGrad: true });
  const a = exp(x);
  sum(add(mul(a, a), a)).backward();
  const e = Math.exp(2);
  assert.ok(Math.abs(x.grad!.data[0] - (2 * e * e + e)) < 1e-3 * e * e);
});

Deno.test("pooled scratch buffers never leak between ops: repeated and interleaved passes give identical results", () => {
  const rng = new Rng(4);
  const x = randn([3, 4, 20, 20], rng);
  const w1 = randn([6, 4, 8, 8], rng, { requiresGrad: true }), w2 = randn([5, 6, 4, 4], rng, { requiresGrad: true });
  const run = () => {
    w1.grad = null;
    w2.grad = null;
    const y = conv2d(relu(conv2d(x, w1, null, { stride: 4 })), w2, null, { stride: 2 });
    sum(mul(y, y)).backward();
    return [y.toArray(), w1.grad!.toArray(), w2.grad!.toArray()];
  };
  const first = run();
  const inference = noGrad(() => conv2d(relu(conv2d(x, w1, null, { stride: 4 })), w2, null, { stride: 2 }).toArray());
  assert.deepEqual(inference, first[0]);
  const second = run();
  assert.deepEqual(second, first);
});

Deno.test("fromBytes scales uint8 frames into a float tensor; arange counts", () => {
  const t8 = fromBytes(new Uint8Array([0, 51, 255, 102]), [2, 2], { scale: 1 / 255 });
  assert.deepEqual(t8.shape, [2, 2]);
  assert.ok(Math.abs(t8.data[1] - 0.2) < 1e-7 && t8.data[2] === 1);
  assert.throws(() => fromBytes(new Uint8Array(3), [2, 2]), /3 bytes for shape \[2,2\]/);
  assert.deepEqual(arange(0, 5, 2).toArray(), [0, 2, 4]);
});

Deno.test("variance and std match torch.var/torch.std (unbiased by default)", () => {
  const x = tensor([[1, 2, 3, 4], [2, 4, 6, 9]], { requiresGrad: true });
  assert.ok(Math.abs(std(x).item() - 2.5877458) < 1e-5); // numpy: a.std(ddof=1)
  const v = variance(x, { axis: 1, unbiased: false });
  assert.ok(Math.abs(v.data[0] - 1.25) < 1e-6 && Math.abs(v.data[1] - 6.6875) < 1e-5);
  sum(v).backward();
  // d/dx of the population variance: 2 (x − mean) / n
  assert.ok(Math.abs(x.grad!.data[0] - (2 * (1 - 2.5)) / 4) < 1e-6);
});

Deno.test("backend registry: cpu and auto select the CPU backend", () => {
  assert.equal(useBackend("auto").name, "cpu");
  assert.equal(useBackend("cpu").name, "cpu");
  assert.equal(backend().name, "cpu");
});

Deno.test("conv2d im2col over a batch too big for the cache runs in parts: same values and gradients as per sample", () => {
  // Doom's conv2 (5 samples per part of the CPU's cache budget: parts 5, 5, 2) and a geometry with one sample per
  // part; the reference runs every sample alone (a single part) and sums the parameter gradients.
  const cache = backend().cacheFloats ?? 0;
  for (const [N, C, H, W, O, k, s] of [[12, 32, 17, 31, 64, 4, 2], [3, 64, 30, 30, 16, 3, 1]]) {
    const OH = Math.floor((H - k) / s) + 1, OW = Math.floor((W - k) / s) + 1;
    assert.ok(cache === 0 || C * k * k * OH * OW * N > cache, "the batch does not fit the cache budget");
    const x = randn([N, C, H, W], new Rng(1)), w = randn([O, C, k, k], new Rng(2)), b = randn([O], new Rng(3));
    const gy = randn([N, O, OH, OW], new Rng(4));
    for (const v of [x, w, b]) v.requiresGrad = true;
    const y = conv2d(x, w, b, { stride: s, algorithm: "im2col" });
    sum(mul(y, gy)).backward();
    const got = [y, x.grad!, w.grad!, b.grad!].map((t) => t.data);
    const want = [new Float32Array(y.size), new Float32Array(x.size), new Float32Array(w.size), new Float32Array(O)];
    const xs = C * H * W, ys = O * OH * OW;
    for (let n = 0; n < N; n++) {
      const xn = tensor(x.data.slice(n * xs, (n + 1) * xs), { shape: [1, C, H, W], requiresGrad: true });
      const wn = tensor(w.data, { shape: w.shape, requiresGrad: true }), bn = tensor(b.data, { requiresGrad: true });
      const yn = conv2d(xn, wn, bn, { stride: s, algorithm: "im2col" });
      sum(mul(yn, tensor(gy.data.slice(n * ys, (n + 1) * ys), { shape: yn.shape }))).backward();
      want[0].set(yn.data, n * ys);
      want[1].set(xn.grad!.data, n * xs);
      wn.grad!.data.forEach((v, i) => want[2][i] += v);
      bn.grad!.data.forEach((v, i) => want[3][i] += v);
    }
    const what = ["value", "x grad", "weight grad", "bias grad"];
    got.forEach((g, i) => assertClose(g, want[i], 1e-4, `${N}x${C}x${H}x${W} k${k}s${s} ${what[i]}`));
  }
});

Deno.test("conv2d flat (all kernel shifts as one GEMM over offset rows) matches im2col in value and gradients", () => {
  // Nature's conv1 and conv2 geometries, shrunk; 16 output channels and wide outputs take the stacked product.
  for (const [N, C, H, W, O, k, s] of [[3, 4, 28, 36, 16, 8, 4], [2, 8, 12, 14, 16, 4, 2], [2, 3, 20, 24, 9, 4, 2]]) {
    const results = (["flat", "im2col"] as const).map((algorithm) => {
      const x = randn([N, C, H, W], new Rng(1)), w = randn([O, C, k, k], new Rng(2)), b = randn([O], new Rng(3));
      for (const v of [x, w, b]) v.requiresGrad = true;
      const y = conv2d(x, w, b, { stride: s, algorithm });
      sum(mul(y, randn(y.shape, new Rng(4)))).backward();
      return [y, x.grad!, w.grad!, b.grad!].map((t) => t.data);
    });
    const what = ["value", "x grad", "weight grad", "bias grad"];
    results[0].forEach((got, i) => assertClose(got, results[1][i], 1e-4, `${N}x${C}x${H}x${W} k${k}s${s} ${what[i]}`));
  }
});

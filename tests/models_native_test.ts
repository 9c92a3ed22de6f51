// Native kernels (models/backends/native/kernels.c) vs the pure-TypeScript kernels: every routed primitive gives the
// same values both ways (within float32 rounding), including NaN propagation, broadcasting shapes, strided copies,
// im2col/col2im with padding, Adam and gradient clipping.
import assert from "node:assert/strict";
import { cpuBackend } from "../models/backends/cpu.ts";
import {
  kernelThreads,
  nativeKernels,
  nativeKernelsInfo,
  setKernelThreads,
  setNativeKernelsEnabled,
} from "../models/backends/native/native.ts";
import type { BinaryOp, ConvGeometry, UnaryOp } from "../models/primitives.ts";
import { contiguousStrides } from "../models/primitives.ts";
import { Adam, clipGradNorm } from "../models/optim.ts";
import { tensor } from "../models/tensor.ts";
import { imagesToFloat } from "../models/image.ts";
import { batchMoments, standardize } from "../models/standardize.ts";

function rand(n: number, seed: number, scale = 3): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from(
    { length: n },
    () => (((s = (s * 1664525 + 1013904223) >>> 0) / 4294967296) * 2 - 1) * scale,
  );
}

/** Run `fn` with the native kernels on, then off; returns both results. */
function both<T>(fn: () => T): [T, T] {
  setNativeKernelsEnabled(true);
  const native = fn();
  setNativeKernelsEnabled(false);
  try {
    return [native, fn()];
  } finally {
    setNativeKernelsEnabled(true);
  }
}

function close(a: Float32Array, b: Float32Array, what: string, rtol = 2e-6, atol = 1e-6): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  for (let i = 0; i < a.length; i++) {
    const x = a[i], y = b[i];
    if (Number.isNaN(x) || Number.isNaN(y)) {
      assert.ok(Number.isNaN(x) && Number.isNaN(y), `${what}[${i}]: native ${x} vs TS ${y}`);
      continue;
    }
    if (x === y) continue;
    assert.ok(Math.abs(x - y) <= atol + rtol * Math.abs(y), `${what}[${i}]: native ${x} vs TS ${y}`);
  }
}

const available = nativeKernels() !== null;
const opts = { ignore: !available };

Deno.test("native kernels load (or say why not)", () => {
  const info = nativeKernelsInfo();
  assert.ok(info.note.length > 0);
  if (Deno.env.get("ARCADIA_NO_NATIVE_KERNELS") === "1") assert.equal(info.path, null);
});

Deno.test("native unary ops and their gradients match TypeScript, NaN and extremes included", opts, () => {
  const n = 4099;
  const x = rand(n, 1, 6);
  x.set([NaN, 0, -0, 1e-7, -1e-7, 1e-3, -1e-3, 0.3, -0.34, 20, -20, 100, -100, 1e30, -1e30], 0);
  const pos = x.map(Math.abs);
  const cases: [UnaryOp, number, number, Float32Array][] = [
    ["neg", 0, 0, x],
    ["exp", 0, 0, x],
    ["log", 0, 0, pos],
    ["sqrt", 0, 0, pos],
    ["abs", 0, 0, x],
    ["relu", 0, 0, x],
    ["elu", 1, 0, x],
    ["elu", 0.5, 0, x],
    ["tanh", 0, 0, x],
    ["sigmoid", 0, 0, x],
    ["pow", 2, 0, x],
    ["pow", 3, 0, x], // stays in TypeScript
    ["clamp", -1, 2, x],
  ];
  const gy = rand(n, 2);
  for (const [op, p0, p1, input] of cases) {
    const [yn, yt] = both(() => {
      const y = new Float32Array(n);
      cpuBackend.unary(op, input, y, p0, p1);
      return y;
    });
    // Same double formulas as TypeScript: at most one float32 ulp apart (and almost always identical).
    close(yn, yt, `${op}(${p0})`, 1.2e-7, 0);
    const [gn, gt] = both(() => {
      const g = rand(n, 3);
      cpuBackend.unaryGrad(op, input, yt, gy, g, p0, p1);
      return g;
    });
    close(gn, gt, `${op}'(${p0})`, 0, 0);
  }
});

Deno.test("ELU's float32 expm1: native and TypeScript give the same bits, within 2 ulps of alpha·expm1", opts, () => {
  // Every float32 from -32 to 0 at a 2^-12 step, dense near 0 (where expm1's cancellation hides), and the ends.
  const xs: number[] = [];
  for (let v = -32; v < 0; v += 2 ** -12) xs.push(v);
  for (let e = -40; e < 0; e += 0.25) xs.push(-(2 ** e));
  xs.push(-100, -1e30, -Infinity, -0, 0, 1e-30, 3);
  const x = Float32Array.from(xs);
  for (const alpha of [1, 0.5]) {
    const [yn, yt] = both(() => {
      const y = new Float32Array(x.length);
      cpuBackend.unary("elu", x, y, alpha, 0);
      return y;
    });
    assert.deepEqual(yn, yt, `elu(${alpha}): native and TypeScript bits`);
    for (let i = 0; i < x.length; i++) {
      const want = x[i] > 0 ? x[i] : alpha * Math.expm1(x[i]);
      const ulp = 2 ** (Math.floor(Math.log2(Math.max(Math.abs(want), 2 ** -126))) - 23);
      assert.ok(Math.abs(yn[i] - want) <= 2 * ulp, `elu(${x[i]}, ${alpha}) = ${yn[i]}, expm1 gives ${want}`);
    }
  }
});

Deno.test("native broadcasting binary ops match TypeScript on same, row, column, scalar and 3-D shapes", opts, () => {
  const ops: BinaryOp[] = ["add", "sub", "mul", "div", "maximum", "minimum", "gt", "ge", "lt", "le", "eq"];
  const shapes: [number[], number[], number[]][] = [
    [[37, 41], [37, 41], [37, 41]],
    [[37, 41], [41], [37, 41]],
    [[37, 41], [37, 1], [37, 41]],
    [[37, 41], [], [37, 41]],
    [[], [37, 41], [37, 41]],
    [[1, 41], [37, 1], [37, 41]],
    [[5, 7, 11], [7, 1], [5, 7, 11]],
    [[5, 1, 11], [1, 7, 11], [5, 7, 11]],
  ];
  for (const [as, bs, os] of shapes) {
    const a = rand(as.reduce((p, d) => p * d, 1), 4), b = rand(bs.reduce((p, d) => p * d, 1), 5);
    if (a.length > 3) a[3] = NaN;
    b[0] = a.length > 1 && b.length > 1 ? a[1] : b[0]; // ties for ge/le/eq
    for (const op of ops) {
      const [yn, yt] = both(() => {
        const y = new Float32Array(os.reduce((p, d) => p * d, 1));
        cpuBackend.binary(op, a, as, b, bs, y, os);
        return y;
      });
      close(yn, yt, `${op} [${as}] [${bs}]`, 0, 0);
    }
  }
});

Deno.test("native sumTo (bias-grad reductions) matches TypeScript", opts, () => {
  const cases: [number[], number[]][] = [[[64, 300], [64, 1]], [[300, 64], [64]], [[300, 64], [300, 64]], [
    [8, 16, 30],
    [16, 1],
  ], [[4000], [1]]];
  for (const [xs, os] of cases) {
    const x = rand(xs.reduce((p, d) => p * d, 1), 6);
    for (const alpha of [1, -0.5]) {
      const [yn, yt] = both(() => {
        const y = rand(os.reduce((p, d) => p * d, 1), 7);
        cpuBackend.sumTo(x, xs, y, os, alpha);
        return y;
      });
      close(yn, yt, `sumTo [${xs}]→[${os}]`, 1.2e-7, 1e-6);
    }
  }
});

Deno.test("native strided copies (permute, box, broadcast, accumulate) match TypeScript", opts, () => {
  // 80,640 elements: large enough for the two-thread path of arc_copy6.
  const shape = [6, 8, 10, 12, 14];
  const src = rand(6 * 8 * 10 * 12 * 14, 8);
  const cs = contiguousStrides(shape);
  const perm = [4, 2, 0, 3, 1];
  const pshape = perm.map((d) => shape[d]);
  for (const accumulate of [false, true]) {
    const [yn, yt] = both(() => {
      const y = rand(src.length, 9);
      cpuBackend.copyStrided(src, 0, perm.map((d) => cs[d]), pshape, y, 0, contiguousStrides(pshape), accumulate);
      return y;
    });
    close(yn, yt, `permute accumulate=${accumulate}`, 0, 0);
  }
  const [bn, bt] = both(() => {
    const y = new Float32Array(40 * 50);
    cpuBackend.copyStrided(src, 17, [0, 1], [40, 50], y, 0, [50, 1], false); // broadcast rows
    cpuBackend.copyStrided(src, 3, [2, 0], [20, 30], y, 5, [60, 2], true); // strided, broadcast columns
    return y;
  });
  close(bn, bt, "broadcast copies", 0, 0);
  const [rn, rt] = both(() => {
    const y = rand(300, 12);
    // Every row accumulates into the same 300 outputs (dst stride 0): slicing rows across threads would race.
    cpuBackend.copyStrided(src, 0, [300, 1], [250, 300], y, 0, [0, 1], true);
    return y;
  });
  close(rn, rt, "row-sum adjoint", 0, 0);
});

Deno.test("native im2col/col2im match TypeScript with padding and strides", opts, () => {
  // [kernel, stride, padding, H, W]: unpadded ones take the native phase-split im2col, some with rows over 16 outputs.
  for (
    const [k, s, p, H, W] of [
      [3, 1, 1, 19, 23],
      [8, 4, 0, 19, 23],
      [4, 2, 1, 19, 23],
      [5, 3, 2, 19, 23],
      [8, 4, 0, 26, 84],
      [3, 1, 0, 7, 40],
      [3, 2, 0, 9, 14],
    ]
  ) {
    const N = 8, C = 9; // most cases above the size where im2col/col2im use two threads
    const outH = Math.floor((H + 2 * p - k) / s) + 1, outW = Math.floor((W + 2 * p - k) / s) + 1;
    const g: ConvGeometry = {
      batch: N,
      channels: C,
      height: H,
      width: W,
      kernelH: k,
      kernelW: k,
      strideH: s,
      strideW: s,
      padH: p,
      padW: p,
      outH,
      outW,
    };
    const x = rand(N * C * H * W, 10);
    const ncol = C * k * k * N * outH * outW;
    const [cn, ct] = both(() => {
      const col = rand(ncol, 11);
      cpuBackend.im2col(x, g, col);
      return col;
    });
    close(cn, ct, `im2col k${k}s${s}p${p}`, 0, 0);
    const [dn, dt] = both(() => {
      const dx = rand(x.length, 12);
      cpuBackend.col2im(ct, g, dx);
      return dx;
    });
    close(dn, dt, `col2im k${k}s${s}p${p}`, 0, 0);
  }
});

Deno.test("native Adam and gradient clipping match TypeScript over several steps, on 1 and 2 threads", opts, () => {
  const run = (clip = true) => {
    // 100,003 parameters: above the size where native Adam runs in slices on two threads, with a ragged last slice.
    const p = tensor(rand(100_003, 13), { requiresGrad: true });
    const q = tensor(rand(100, 14), { requiresGrad: true }); // below the native threshold
    const opt = new Adam([p, q], { lr: 1e-2, eps: 1e-5, weightDecay: 0.01 });
    const norms: number[] = [];
    for (let step = 0; step < 5; step++) {
      opt.zeroGrad();
      p.grad = tensor(rand(100_003, 20 + step));
      q.grad = tensor(rand(100, 30 + step));
      if (clip) norms.push(clipGradNorm([p, q], 5));
      opt.step();
    }
    return { p: p.data, q: q.data, norms: Float32Array.from(norms) };
  };
  const [n, t] = both(run);
  close(n.norms, t.norms, "clip norms", 1e-6, 0);
  close(n.p, t.p, "adam params", 1.2e-7, 0); // the clipping sums differ in order: grads differ by an ulp
  close(n.q, t.q, "adam params (TS path)", 0, 0);
  const [n2, t2] = both(() => run(false));
  close(n2.p, t2.p, "adam params without clipping", 0, 0); // same float32 operations: same bits
  const threads = kernelThreads();
  setKernelThreads(threads === 1 ? 2 : 1);
  try {
    assert.deepEqual(run().p, n.p, "native Adam differs between one and two threads");
  } finally {
    setKernelThreads(threads);
  }
});

Deno.test("native uint8 images to float (channels-last to channels-first) match TypeScript", opts, () => {
  const raw = Uint8Array.from(rand(5 * 7 * 11 * 3, 40), (v) => Math.floor((v + 3) * 42.5));
  for (const channelsLast of [true, false]) {
    const layout = { channels: 3, height: 7, width: 11, channelsLast };
    const [xn, xt] = both(() => imagesToFloat(raw, 5, layout));
    close(xn, xt, `imagesToFloat channelsLast=${channelsLast}`, 0, 0);
    // Pixel (y=2, x=5) of image 4, green channel, lands in plane 1.
    const src = channelsLast ? ((4 * 7 + 2) * 11 + 5) * 3 + 1 : ((4 * 3 + 1) * 7 + 2) * 11 + 5;
    assert.equal(xn[((4 * 3 + 1) * 7 + 2) * 11 + 5], Math.fround(raw[src] * (1 / 255)));
  }
  assert.throws(
    () => imagesToFloat(raw, 6, { channels: 3, height: 7, width: 11, channelsLast: true }),
    /need 1386 bytes/,
  );
});

Deno.test(
  "standardize and batchMoments: native equals TypeScript bit for bit, masks and clipping included",
  opts,
  () => {
    const rows = 37, size = 129; // odd sizes: vector tails
    const x = rand(rows * size, 41, 4);
    const mask = Uint8Array.from({ length: rows }, (_, r) => (r % 3 === 1 ? 0 : 1));
    for (const m of [mask, undefined]) {
      const [n, t] = both(() => batchMoments(x, rows, size, m));
      assert.equal(n.count, m ? 25 : rows);
      assert.equal(t.count, n.count);
      assert.deepEqual(n.mean, t.mean, "means");
      assert.deepEqual(n.m2, t.m2, "squared deviations");
    }
    // Masked rows leave no trace: the moments equal those of the kept rows alone.
    const kept = Float32Array.from({ length: 25 * size }, (_, i) => {
      const r = [...mask.keys()].filter((k) => mask[k])[Math.floor(i / size)];
      return x[r * size + (i % size)];
    });
    assert.deepEqual(batchMoments(kept, 25, size).mean, batchMoments(x, rows, size, mask).mean);
    const none = batchMoments(x, rows, size, new Uint8Array(rows));
    assert.equal(none.count, 0);
    assert.ok(none.mean.every((v) => v === 0));

    const mean = Float64Array.from(rand(size, 42, 1)), inv = Float64Array.from(rand(size, 43, 2), Math.abs);
    const [sn, st] = both(() => {
      const y = x.slice();
      standardize(y, rows, mean, inv, 3);
      return y;
    });
    close(sn, st, "standardize", 0, 0);
    assert.equal(sn[5 * size + 7], Math.fround(Math.max(-3, Math.min(3, (x[5 * size + 7] - mean[7]) * inv[7]))));
    assert.ok(sn.some((v) => v === 3) && sn.some((v) => v === -3), "the clip acts on both sides");
    assert.throws(() => standardize(x, rows + 1, mean, inv, 3), /38 rows of 129 values need 4902 inputs/);
  },
);

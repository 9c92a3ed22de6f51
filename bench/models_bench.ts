// Tensor-library benchmarks: GEMM throughput (BLAS wrapper vs raw cblas_sgemm vs pure TS) and end-to-end
// Nature-CNN / Doom-encoder training and inference steps.
// Run: deno run -A bench/models_bench.ts [--quick] [--threads=N]   (ARCADIA_NO_BLAS=1 for the pure-TS backend,
// ARCADIA_NO_NATIVE_KERNELS=1 for the TypeScript non-GEMM kernels; "native vs TS" lines compare both in-process)
import {
  Adam,
  Conv2d,
  cpuInfo,
  ELU,
  Flatten,
  GRUCell,
  Linear,
  mean,
  noGrad,
  ReLU,
  Rng,
  Sequential,
  setBlasThreads,
  setMatmulPrecision,
  square,
  sub,
  Tanh,
  type Tensor,
  tensor,
} from "../models/mod.ts";
import process from "node:process";
import { cpuBackend, gemm, rawBlasSgemm } from "../models/backends/cpu.ts";
import { setNativeKernelsEnabled } from "../models/backends/native/native.ts";
import { gemmTs } from "../models/backends/gemm_ts.ts";
import { CBLAS_NO_TRANS, CBLAS_ROW_MAJOR, CBLAS_TRANS, openBlas } from "../models/backends/blas/ffi.ts";

const quick = Deno.args.includes("--quick");
const threadsArg = Deno.args.find((a) => a.startsWith("--threads="));
if (threadsArg) setBlasThreads(Number(threadsArg.slice("--threads=".length)));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median ms per call of `fn` over `reps` timed runs after `warmup` runs. */
function time(fn: () => void, reps: number, warmup = 2): number {
  return timeBoth(fn, reps, warmup).wall;
}

/**
 * Median wall-clock and process CPU ms per call (CPU time is what a loaded machine cannot inflate by preemption), and
 * the minimum wall-clock (the least disturbed run on a shared machine).
 */
function timeBoth(fn: () => void, reps: number, warmup = 2): { wall: number; cpu: number; min: number } {
  for (let i = 0; i < warmup; i++) fn();
  const walls: number[] = [], cpus: number[] = [];
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fn();
    walls.push(performance.now() - t0);
    const c1 = process.cpuUsage(c0);
    cpus.push((c1.user + c1.system) / 1000);
  }
  return { wall: median(walls), cpu: median(cpus), min: Math.min(...walls) };
}

function fmtTime(t: { wall: number; cpu: number; min: number }, digits = 2): string {
  return `min ${t.min.toFixed(digits)} ms, median ${t.wall.toFixed(digits)} ms (process CPU ${
    t.cpu.toFixed(digits)
  } ms)`;
}

/** `fn` timed with the native kernels, then with the TypeScript kernels. */
function nativeVsTs(fn: () => void, reps: number): string {
  const native = timeBoth(fn, reps);
  setNativeKernelsEnabled(false);
  const ts = timeBoth(fn, reps);
  setNativeKernelsEnabled(true);
  return `native min ${native.min.toFixed(3)} ms, TS min ${ts.min.toFixed(3)} ms (${
    (ts.min / native.min).toFixed(1)
  }x)`;
}

function rand(n: number, rng: Rng): Float32Array {
  return Float32Array.from({ length: n }, () => rng.range(-1, 1));
}

const rng = new Rng(0);
const info = cpuInfo();
console.log(
  `cpu backend: gemm=${info.gemm} threads=${info.threads} blas=${info.blas ?? "none"} core=${info.core} (${info.note})`,
);
console.log(`native kernels: ${info.kernels ?? "none (TypeScript kernels)"} (${info.kernelsNote})`);
console.log("raw BLAS references below run OpenBLAS on every core; backend gemm() is the GEMM named above");
try {
  console.log(
    `load average at start: ${
      Deno.loadavg().map((v) => v.toFixed(2)).join(" ")
    } on ${navigator.hardwareConcurrency} cores`,
  );
} catch { /* loadavg needs --allow-sys */ }

// ---- GEMM ----------------------------------------------------------------------------------------------------
const raw = rawBlasSgemm();
// The reference is BLAS at its own best: all cores (under our GEMM the backend keeps OpenBLAS on one thread).
const blasLib = raw ? openBlas().lib : null;
function blasAtPeak<T>(fn: () => T): T {
  const before = blasLib?.symbols.openblas_get_num_threads?.() ?? 1;
  blasLib?.symbols.openblas_set_num_threads?.(navigator.hardwareConcurrency);
  try {
    return fn();
  } finally {
    blasLib?.symbols.openblas_set_num_threads?.(before);
  }
}
function gflops(m: number, n: number, k: number, ms: number): string {
  return ((2 * m * n * k) / (ms * 1e6)).toFixed(1);
}

const N = 1024;
const A = rand(N * N, rng), B = rand(N * N, rng), C = new Float32Array(N * N);
let peak = NaN;
if (raw) {
  const ms = blasAtPeak(() =>
    time(() => {
      raw(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_NO_TRANS, N, N, N, 1, A, N, B, N, 0, C, N);
    }, quick ? 5 : 20)
  );
  peak = (2 * N * N * N) / (ms * 1e6);
  console.log(`gemm 1024^3 BLAS peak (raw cblas_sgemm via FFI): ${ms.toFixed(2)} ms, ${peak.toFixed(1)} GFLOP/s`);
}
{
  const ms = time(() => gemm(false, false, N, N, N, 1, A, B, 0, C), quick ? 5 : 20);
  const g = (2 * N * N * N) / (ms * 1e6);
  console.log(
    `gemm 1024^3 backend gemm(): ${ms.toFixed(2)} ms, ${g.toFixed(1)} GFLOP/s` +
      (raw ? `, ratio to BLAS peak ${(g / peak).toFixed(3)}` : ""),
  );
}
// Opt-in bfloat16 products (setMatmulPrecision("medium"), AMX): not float32, so printed beside the goals, not in them.
const bf16 = setMatmulPrecision("medium") === "medium";
setMatmulPrecision("highest");
/** `fn` timed with bfloat16 products, restoring float32 after. */
function withBf16<T>(fn: () => T): T {
  setMatmulPrecision("medium");
  try {
    return fn();
  } finally {
    setMatmulPrecision("highest");
  }
}
if (bf16) {
  const ms = withBf16(() => time(() => gemm(false, false, N, N, N, 1, A, B, 0, C), quick ? 5 : 20));
  console.log(
    `gemm 1024^3 matmul precision medium (bfloat16 products, AMX): ${ms.toFixed(2)} ms, ${gflops(N, N, N, ms)} GFLOP/s`,
  );
} else console.log(`gemm 1024^3 matmul precision medium: not available here (${cpuInfo().bf16})`);
{
  const ms = time(() => gemmTs(false, false, N, N, N, 1, A, B, 0, C), quick ? 1 : 2, 1);
  console.log(`gemm 1024^3 pure TS: ${ms.toFixed(0)} ms, ${gflops(N, N, N, ms)} GFLOP/s`);
}

// Nature-CNN GEMM shapes (im2col: [O, CKK] x [CKK, B*P]; fc: [B, 3136] x [512, 3136]^T).
const shapes: [string, number, number, number, boolean][] = [];
for (const b of [32, 1]) {
  shapes.push([`conv1 B=${b}`, 32, b * 400, 256, false]);
  shapes.push([`conv2 B=${b}`, 64, b * 81, 512, false]);
  shapes.push([`conv3 B=${b}`, 64, b * 49, 576, false]);
  shapes.push([`fc B=${b}`, b, 512, 3136, true]);
}
for (const [name, m, n, k, tb] of shapes) {
  const a = rand(m * k, rng), bb = rand(k * n, rng), c = new Float32Array(m * n);
  const reps = quick ? 10 : 50;
  const msRaw = raw
    ? blasAtPeak(() =>
      time(
        () =>
          raw(
            CBLAS_ROW_MAJOR,
            CBLAS_NO_TRANS,
            tb ? CBLAS_TRANS : CBLAS_NO_TRANS,
            m,
            n,
            k,
            1,
            a,
            k,
            bb,
            tb ? k : n,
            0,
            c,
            n,
          ),
        reps,
      )
    )
    : NaN;
  const ms = time(() => gemm(false, tb, m, n, k, 1, a, bb, 0, c), reps);
  const msTs = time(() => gemmTs(false, tb, m, n, k, 1, a, bb, 0, c), quick ? 2 : 5, 1);
  console.log(
    `gemm nature ${name} (${m}x${n}x${k}): backend ${gflops(m, n, k, ms)} GFLOP/s (${ms.toFixed(3)} ms)` +
      (raw ? `, raw BLAS ${gflops(m, n, k, msRaw)}` : "") + `, pure TS ${gflops(m, n, k, msTs)} GFLOP/s`,
  );
}

// ---- Non-GEMM kernels: native (kernels.c) vs TypeScript --------------------------------------------------------
{
  const reps = quick ? 5 : 20;
  const n = 1_700_000; // Nature-CNN parameter count
  const p = rand(n, rng), g = rand(n, rng);
  const adam = new Adam([tensor(p)], { lr: 2.5e-4, eps: 1e-5 });
  const pt = adam.params[0];
  pt.grad = tensor(g);
  console.log(`kernel Adam step 1.7M params: ${nativeVsTs(() => adam.step(), reps)}`);
  const x = rand(1 << 20, rng), y = new Float32Array(1 << 20), gy = rand(1 << 20, rng), gx = new Float32Array(1 << 20);
  for (const op of ["tanh", "sigmoid", "elu", "relu"] as const) {
    console.log(`kernel ${op} 1M: ${nativeVsTs(() => cpuBackend.unary(op, x, y, 1, 0), reps)}`);
  }
  console.log(`kernel tanh grad 1M: ${nativeVsTs(() => cpuBackend.unaryGrad("tanh", x, y, gy, gx, 1, 0), reps)}`);
  const bias = new Float32Array(64);
  console.log(
    `kernel conv bias grad [64, 32·49] → [64]: ${
      nativeVsTs(() => cpuBackend.sumTo(x.subarray(0, 64 * 1568), [64, 1568], bias, [64, 1], 1), reps)
    }`,
  );
  const lb = new Float32Array(512);
  console.log(
    `kernel linear bias grad [32, 512] → [512]: ${
      nativeVsTs(() => cpuBackend.sumTo(x.subarray(0, 32 * 512), [32, 512], lb, [512], 1), reps * 10)
    }`,
  );
  const img = rand(32 * 4 * 84 * 84, rng), col = new Float32Array(256 * 32 * 400);
  const geo = {
    batch: 32,
    channels: 4,
    height: 84,
    width: 84,
    kernelH: 8,
    kernelW: 8,
    strideH: 4,
    strideW: 4,
    padH: 0,
    padW: 0,
    outH: 20,
    outW: 20,
  };
  console.log(`kernel im2col conv1 B=32: ${nativeVsTs(() => cpuBackend.im2col(img, geo, col), reps)}`);
  // Space-to-depth of conv1's input (stride 4): the 6-D strided copy conv2d "flat" uses.
  const S = new Float32Array(img.length);
  console.log(
    `kernel space-to-depth conv1 B=32: ${
      nativeVsTs(() =>
        cpuBackend.copyStrided(
          img,
          0,
          [7056, 28224, 336, 84, 1, 4],
          [4, 32, 21, 4, 4, 21],
          S,
          0,
          [225792, 441, 21, 56448, 14112, 1],
          false,
        ), reps)
    }`,
  );
}

// ---- Small MLP (CleanRL PPO on CartPole: 4 → 64 → 64 → 2, tanh) --------------------------------------------------
{
  const mlp = new Sequential([
    new Linear(4, 64, { rng }),
    new Tanh(),
    new Linear(64, 64, { rng }),
    new Tanh(),
    new Linear(64, 2, { rng }),
  ]);
  const opt = new Adam(mlp.parameters(), { lr: 2.5e-4, eps: 1e-5 });
  const x = input([128, 4]), target = input([128, 2]);
  const train = () => {
    opt.zeroGrad();
    mean(square(sub(mlp.forward(x), target))).backward();
    opt.step();
  };
  console.log(`mlp 4-64-64-2 tanh train step B=128: ${nativeVsTs(train, quick ? 200 : 1000)}`);
  const x1 = input([1, 4]);
  console.log(
    `mlp 4-64-64-2 tanh inference B=1: ${nativeVsTs(() => noGrad(() => mlp.forward(x1)), quick ? 500 : 2000)}`,
  );
}

// ---- Networks ------------------------------------------------------------------------------------------------
function natureCnn(actions: number): Sequential {
  const g = Math.SQRT2;
  return new Sequential([
    new Conv2d(4, 32, 8, { stride: 4, rng, orthogonalGain: g }),
    new ReLU(),
    new Conv2d(32, 64, 4, { stride: 2, rng, orthogonalGain: g }),
    new ReLU(),
    new Conv2d(64, 64, 3, { stride: 1, rng, orthogonalGain: g }),
    new ReLU(),
    new Flatten(),
    new Linear(3136, 512, { rng, orthogonalGain: g }),
    new ReLU(),
    new Linear(512, actions, { rng, orthogonalGain: 0.01 }),
  ]);
}

function input(shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(rand(n, rng).map((v) => (v + 1) / 2), { shape });
}

{
  const net = natureCnn(6);
  const opt = new Adam(net.parameters(), { lr: 2.5e-4, eps: 1e-5 });
  const x32 = input([32, 4, 84, 84]), x1 = input([1, 4, 84, 84]);
  const target = input([32, 6]);
  const train = () => {
    opt.zeroGrad();
    mean(square(sub(net.forward(x32), target))).backward();
    opt.step();
  };
  const reps = quick ? 5 : 20;
  console.log(`nature-cnn train step B=32 (fwd+bwd+Adam): ${fmtTime(timeBoth(train, reps))} (goal <= 25)`);
  setNativeKernelsEnabled(false);
  console.log(`nature-cnn train step B=32, TypeScript kernels: ${fmtTime(timeBoth(train, reps))}`);
  setNativeKernelsEnabled(true);
  const inf1 = timeBoth(() => noGrad(() => net.forward(x1)), reps * 10);
  console.log(`nature-cnn inference B=1: ${fmtTime(inf1, 3)} (goal <= 0.5)`);
  console.log(`nature-cnn inference B=32: ${fmtTime(timeBoth(() => noGrad(() => net.forward(x32)), reps))}`);
  if (bf16) {
    const step = withBf16(() => timeBoth(train, reps)),
      one = withBf16(() => timeBoth(() => noGrad(() => net.forward(x1)), reps * 10));
    console.log(`nature-cnn train step B=32, matmul precision medium: ${fmtTime(step)}`);
    console.log(`nature-cnn inference B=1, matmul precision medium: ${fmtTime(one, 3)}`);
  }
}

{
  const encoder = new Sequential([
    new Conv2d(3, 32, 8, { stride: 4, rng }),
    new ELU(),
    new Conv2d(32, 64, 4, { stride: 2, rng }),
    new ELU(),
    new Conv2d(64, 128, 3, { stride: 2, rng }),
    new ELU(),
    new Flatten(),
    new Linear(2304, 512, { rng }),
    new ELU(),
  ]);
  const gru = new GRUCell(512, 512, { rng });
  const head = new Linear(512, 6, { rng });
  const params = [...encoder.parameters(), ...gru.parameters(), ...head.parameters()];
  const opt = new Adam(params, { lr: 1e-4 });
  const x32 = input([32, 3, 72, 128]), x1 = input([1, 3, 72, 128]);
  const h32 = input([32, 512]), h1 = input([1, 512]);
  const target = input([32, 6]);
  const forward = (x: Tensor, h: Tensor) => head.forward(gru.forward(encoder.forward(x), h));
  const train = () => {
    opt.zeroGrad();
    mean(square(sub(forward(x32, h32), target))).backward();
    opt.step();
  };
  const reps = quick ? 5 : 20;
  console.log(`doom encoder+GRU(512) train step B=32 (fwd+bwd+Adam): ${fmtTime(timeBoth(train, reps))}`);
  setNativeKernelsEnabled(false);
  console.log(`doom encoder+GRU(512) train step B=32, TypeScript kernels: ${fmtTime(timeBoth(train, reps))}`);
  setNativeKernelsEnabled(true);
  const inf1 = timeBoth(() => noGrad(() => forward(x1, h1)), reps * 10);
  console.log(`doom encoder+GRU(512) inference B=1: ${fmtTime(inf1, 3)}`);
  console.log(
    `doom encoder+GRU(512) inference B=32: ${fmtTime(timeBoth(() => noGrad(() => forward(x32, h32)), reps))}`,
  );
  if (bf16) {
    console.log(
      `doom encoder+GRU(512) train step B=32, matmul precision medium: ${
        fmtTime(withBf16(() => timeBoth(train, reps)))
      }`,
    );
  }
}

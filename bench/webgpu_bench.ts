// WebGPU backend benchmark: adapter, the cost of one synchronisation in Deno, per-kernel time (one recorded call plus
// the readback of its output), and the Nature-CNN training step at batch 32 (forward, backward, grad-norm clipping,
// Adam; with submits and readbacks per step), against the CPU backend on the same machine.
// Run: deno run -A bench/webgpu_bench.ts [--quick]
import {
  Adam,
  clipGradNormTensor,
  Conv2d,
  Flatten,
  Linear,
  mean,
  ReLU,
  Rng,
  Sequential,
  square,
  tensor,
  useBackend,
} from "../models/mod.ts";
import type { Backend, ConvGeometry } from "../models/primitives.ts";
import { cpuBackend } from "../models/backends/cpu.ts";
import {
  resolvedGemmKernel,
  setWebGpuGemmKernel,
  startWebGpu,
  webgpuBackend,
  webgpuStats,
} from "../models/backends/webgpu.ts";

const quick = Deno.args.includes("--quick");

function rand(n: number, rng: Rng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.range(-1, 1);
  return a;
}

/** Median milliseconds of `reps` runs after one warm-up. */
function time(fn: () => void, reps: number): number {
  fn();
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const s = performance.now();
    fn();
    t.push(performance.now() - s);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
}

/** Raw synchronisation costs on a device of our own (main thread), to explain the per-call floor. */
async function syncCosts(): Promise<void> {
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) return;
  const dev = await adapter.requestDevice();
  const bufs = Array.from(
    { length: 8 },
    () => dev.createBuffer({ size: 256, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
  );
  const med = async (fn: () => Promise<unknown>) => {
    const t: number[] = [];
    for (let i = 0; i < 7; i++) {
      const s = performance.now();
      await fn();
      t.push(performance.now() - s);
    }
    return t.sort((a, b) => a - b)[3];
  };
  const one = await med(async () => {
    await bufs[0].mapAsync(GPUMapMode.READ);
    bufs[0].unmap();
  });
  const eight = await med(async () => {
    await Promise.all(bufs.map((b) => b.mapAsync(GPUMapMode.READ)));
    bufs.forEach((b) => b.unmap());
  });
  const done = await med(() => dev.queue.onSubmittedWorkDone());
  const timer = await med(() => new Promise((r) => setTimeout(r, 0)));
  console.log(
    `sync: mapAsync (256 B, idle GPU) ${one.toFixed(1)} ms | 8 mapAsync together ${eight.toFixed(1)} ms | ` +
      `onSubmittedWorkDone ${done.toFixed(1)} ms | setTimeout(0) ${timer.toFixed(2)} ms`,
  );
  dev.destroy();
}

function kernels(reps: number): void {
  const rng = new Rng(0);
  const n = 1 << 20;
  const x = rand(n, rng), y = rand(n, rng), out = new Float32Array(n);
  const rows: [string, (be: Backend) => Float32Array, number][] = [];
  rows.push([
    "unary relu 1 elt (sync floor)",
    (be) => (be.unary("relu", x.subarray(0, 1), out.subarray(0, 1), 0, 0), out),
    0,
  ]);
  rows.push(["unary tanh 1M", (be) => (be.unary("tanh", x, out, 0, 0), out), 0]);
  rows.push(["binary add 1M", (be) => (be.binary("add", x, [n], y, [n], out, [n]), out), 0]);
  rows.push([
    "binary mul bcast [1024,1024]*[1024]",
    (be) => (be.binary("mul", x, [1024, 1024], y.subarray(0, 1024), [1024], out, [1024, 1024]), out),
    0,
  ]);
  rows.push([
    "sumTo [1024,1024]->[1024]",
    (be) => (be.sumTo(x, [1024, 1024], out.subarray(0, 1024), [1024], 1), out),
    0,
  ]);
  rows.push(["logSoftmax [4096,256]", (be) => (be.logSoftmax(x, 4096, 256, 1, out), out), 0]);
  for (const [m, nn, k] of [[512, 512, 512], [32, 512, 3136], [64, 2592, 512]]) {
    const a = rand(m * k, rng), b = rand(k * nn, rng), c = new Float32Array(m * nn);
    rows.push([`gemm ${m}x${nn}x${k}`, (be) => (be.gemm(false, false, m, nn, k, 1, a, b, 0, c), c), 2 * m * nn * k]);
  }
  const g: ConvGeometry = {
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
  const img = rand(32 * 4 * 84 * 84, rng), col = new Float32Array(256 * 32 * 400);
  rows.push(["im2col Nature conv1 B=32", (be) => (be.im2col(img, g, col), col), 0]);
  rows.push(["col2im Nature conv1 B=32", (be) => (be.col2im(col, g, img), img), 0]);
  // The webgpu backend records calls; reading the output back runs them (one submit, one readback).
  const run = (fn: (be: Backend) => Float32Array) => webgpuBackend.sync!(fn(webgpuBackend), false);
  const floor = time(() => run(rows[0][1]), reps);
  for (const [name, fn, flops] of rows) {
    const tg = time(() => run(fn), reps), tc = time(() => fn(cpuBackend), reps);
    const gf = flops ? ` | ${(flops / (tg - floor) / 1e6).toFixed(1)} GFLOP/s on device (floor removed)` : "";
    console.log(
      `kernel ${name.padEnd(38)} webgpu ${tg.toFixed(2).padStart(8)} ms (device ~${
        Math.max(0, tg - floor).toFixed(2)
      } ms)` +
        ` | cpu ${tc.toFixed(2).padStart(7)} ms${gf}`,
    );
  }
}

async function natureStep(name: "cpu" | "webgpu", batch: number, steps: number): Promise<void> {
  const rng = new Rng(1);
  const obs = tensor(rand(batch * 4 * 84 * 84, rng), { shape: [batch, 4, 84, 84] });
  useBackend("cpu");
  const r = new Rng(2);
  const net = new Sequential([
    new Conv2d(4, 32, 8, { stride: 4, rng: r }),
    new ReLU(),
    new Conv2d(32, 64, 4, { stride: 2, rng: r }),
    new ReLU(),
    new Conv2d(64, 64, 3, { stride: 1, rng: r }),
    new ReLU(),
    new Flatten(),
    new Linear(3136, 512, { rng: r }),
    new ReLU(),
    new Linear(512, 7, { rng: r }),
  ]);
  useBackend(name);
  const opt = new Adam(net.parameters(), { lr: 2.5e-4, eps: 1e-5 });
  const step = () => {
    opt.zeroGrad();
    const loss = mean(square(net.forward(obs)));
    loss.backward();
    clipGradNormTensor(net.parameters(), 0.5);
    opt.step();
    return loss.item(); // the step's one readback on webgpu
  };
  // A training loop turns the event loop between steps (env stepping, logging): that is when the device buffers of
  // dropped tensors go back to the pool.
  const tick = () => new Promise((r) => setTimeout(r, 0));
  for (let i = 0; i < 2; i++) {
    step();
    await tick();
  }
  const before = webgpuStats();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const s = performance.now();
    step();
    times.push(performance.now() - s);
    await tick();
  }
  const after = webgpuStats();
  const ms = times.sort((a, b) => a - b)[Math.floor(steps / 2)];
  const per = (k: keyof typeof before) => ((after[k] - before[k]) / steps).toFixed(0);
  const extra = name === "webgpu"
    ? ` | per step: ${per("calls")} calls recorded, ${per("dispatches")} dispatches, ${per("submits")} submits, ` +
      `${per("readbacks")} readbacks, ${per("bufferAllocs")} buffer allocs, ${per("pipelineCompiles")} compiles, ` +
      `${per("uploadBytes")} bytes uploaded`
    : "";
  console.log(`train step Nature CNN B=${batch} ${name.padEnd(6)} ${ms.toFixed(0)} ms${extra}`);
  useBackend("cpu");
}

const info = startWebGpu();
console.log(
  `adapter: ${info.description} | fallback: ${info.isFallbackAdapter} | gemm kernel: ${resolvedGemmKernel()} | ` +
    `max storage binding ${(info.maxStorageBufferBindingSize / (1 << 20)).toFixed(0)} MiB`,
);
await syncCosts();
kernels(quick ? 3 : 7);
if (!quick) {
  const prev = setWebGpuGemmKernel(resolvedGemmKernel() === "tiled" ? "blocked" : "tiled");
  const a = rand(512 * 512, new Rng(3)), c = new Float32Array(512 * 512);
  const t = time(() => {
    webgpuBackend.gemm(false, false, 512, 512, 512, 1, a, a, 0, c);
    webgpuBackend.sync!(c, false);
  }, 5);
  console.log(`kernel gemm 512x512x512 with the other kernel (${resolvedGemmKernel()}): ${t.toFixed(2)} ms`);
  setWebGpuGemmKernel(prev);
}
await natureStep("webgpu", 32, quick ? 2 : 3);
await natureStep("cpu", 32, quick ? 3 : 5);

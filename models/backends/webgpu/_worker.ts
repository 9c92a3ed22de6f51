/**
 * The thread that owns the WebGPU device. The main thread's `Backend` is synchronous while WebGPU readback is
 * asynchronous (`mapAsync`), so the main thread records primitive calls into batches, sends a batch here when the
 * host needs values (or the batch grows large), and blocks in `Atomics.wait` until the worker has submitted it and
 * copied the requested buffers into the shared arena. This worker is a dumb executor: kernel choice, WGSL, buffer
 * ids and dispatch sizes are decided on the main thread (`../webgpu.ts`); here live the device, the buffers, their
 * pools and the pipeline cache, so a steady-state batch allocates no GPU buffers and compiles no shaders.
 *
 * @module
 */

import { parentPort } from "node:worker_threads";
import { CTRL, type ExecMessage, type InitMessage, STAT, STATUS } from "./_protocol.ts";

let ctrl: Int32Array;
let stats: Float64Array;
let msgBytes: Uint8Array;
let arena: Uint8Array = new Uint8Array(0);
let device: GPUDevice | null = null;

const storagePool = new Map<number, GPUBuffer[]>();
const stagingPool = new Map<number, GPUBuffer[]>();
const pipelines = new Map<string, GPUComputePipeline>();
const layouts = new Map<string, GPUBindGroupLayout>();
const pipelineLayouts = new Map<string, GPUPipelineLayout>();

/** Size classes: powers of two from 256 bytes, so a steady workload reuses the same buffers. */
function sizeClass(bytes: number): number {
  let c = 256;
  while (c < bytes) c *= 2;
  return c;
}

function take(pool: Map<number, GPUBuffer[]>, bytes: number, usage: number): GPUBuffer {
  const c = sizeClass(bytes);
  const b = pool.get(c)?.pop();
  if (b) return b;
  stats[STAT.bufferAllocs]++;
  return device!.createBuffer({ size: c, usage });
}

function give(pool: Map<number, GPUBuffer[]>, b: GPUBuffer): void {
  let list = pool.get(b.size);
  if (!list) pool.set(b.size, list = []);
  list.push(b);
}

function layoutFor(reads: number, writes: number): [GPUBindGroupLayout, GPUPipelineLayout] {
  const key = `${reads},${writes}`;
  let bgl = layouts.get(key);
  if (!bgl) {
    const entries: GPUBindGroupLayoutEntry[] = [];
    for (let i = 0; i <= reads + writes; i++) {
      entries.push({
        binding: i,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: i <= reads ? "read-only-storage" : "storage" },
      });
    }
    bgl = device!.createBindGroupLayout({ entries });
    layouts.set(key, bgl);
    pipelineLayouts.set(key, device!.createPipelineLayout({ bindGroupLayouts: [bgl] }));
  }
  return [bgl, pipelineLayouts.get(key)!];
}

function reply(status: number, message?: unknown): void {
  if (message !== undefined) {
    const bytes = new TextEncoder().encode(JSON.stringify(message));
    msgBytes.set(bytes.subarray(0, msgBytes.length));
    Atomics.store(ctrl, CTRL.msgLength, Math.min(bytes.length, msgBytes.length));
  }
  Atomics.store(ctrl, CTRL.status, status);
  Atomics.notify(ctrl, CTRL.status);
}

async function init(m: InitMessage): Promise<void> {
  ctrl = new Int32Array(m.ctrl);
  stats = new Float64Array(m.stats);
  msgBytes = new Uint8Array(m.msg);
  if (!("gpu" in navigator) || !navigator.gpu) {
    reply(STATUS.error, { kind: "no-adapter", detail: "navigator.gpu is not defined in this Deno build" });
    return;
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) {
    reply(STATUS.error, { kind: "no-adapter", detail: "navigator.gpu.requestAdapter() returned null" });
    return;
  }
  const l = adapter.limits;
  device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxStorageBuffersPerShaderStage: Math.min(l.maxStorageBuffersPerShaderStage, 8),
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    },
  });
  // No `device.lost` handler: a pending promise in this worker keeps the whole process alive.
  const info = adapter.info;
  reply(STATUS.ok, {
    description: info.description || `${info.vendor} ${info.architecture} ${info.device}`.trim(),
    vendor: info.vendor,
    architecture: info.architecture,
    // Deno 2.9 reports the flag on `info` (newer spec); older builds on the adapter.
    isFallbackAdapter: Boolean(
      (info as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
        (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter,
    ),
    maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
    maxBufferSize: device.limits.maxBufferSize,
  });
}

/** Device buffers by the main thread's ids (each a pooled buffer of at least the requested size). */
const buffers = new Map<number, GPUBuffer>();
const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

async function exec(m: ExecMessage): Promise<void> {
  const dev = device!;
  if (m.arena) arena = new Uint8Array(m.arena);
  for (let i = 0; i < m.allocs.length; i += 2) buffers.set(m.allocs[i], take(storagePool, m.allocs[i + 1], USAGE));
  const params = m.steps.length > 0 ? take(storagePool, m.steps.length * 256, USAGE) : null;
  dev.pushErrorScope("validation");
  let scoped = true;
  try {
    await run(dev, m, params, () => (scoped = false));
  } finally {
    if (scoped) await dev.popErrorScope().catch(() => null); // keep the scope stack balanced after a throw
    if (params) give(storagePool, params);
    // Freed after the submit: later batches reuse them in queue order, after this one's commands.
    for (const id of m.frees) {
      const b = buffers.get(id);
      if (b) give(storagePool, b);
      buffers.delete(id);
    }
  }
  reply(STATUS.ok);
}

function buffer(id: number): GPUBuffer {
  const b = buffers.get(id);
  if (!b) throw new Error(`webgpu worker: unknown buffer id ${id}`);
  return b;
}

async function run(dev: GPUDevice, m: ExecMessage, params: GPUBuffer | null, popped: () => void): Promise<void> {
  for (let i = 0; i < m.uploads.length; i += 3) {
    // Straight from the shared arena (Deno accepts shared memory here; the DOM types do not say so).
    const bytes = m.uploads[i + 2];
    dev.queue.writeBuffer(buffer(m.uploads[i]), 0, arena as Uint8Array<ArrayBuffer>, m.uploads[i + 1], bytes);
    stats[STAT.uploadBytes] += bytes;
  }
  const encoder = dev.createCommandEncoder();
  if (params) {
    // One params buffer per batch: step i reads its 256-byte slot (the storage offset alignment).
    dev.queue.writeBuffer(params, 0, m.params as Uint32Array<ArrayBuffer>, 0, m.steps.length * 64);
    const pass = encoder.beginComputePass();
    for (let i = 0; i < m.steps.length; i++) {
      const s = m.steps[i];
      const [bgl, pl] = layoutFor(s.reads, s.binds.length - s.reads);
      let pipeline = pipelines.get(s.key);
      if (!pipeline) {
        if (s.source === undefined) throw new Error(`webgpu worker: no WGSL source for kernel '${s.key}'`);
        const module = dev.createShaderModule({ code: s.source, label: s.key });
        pipeline = dev.createComputePipeline({ layout: pl, compute: { module, entryPoint: "main" }, label: s.key });
        pipelines.set(s.key, pipeline);
        stats[STAT.pipelineCompiles]++;
      }
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: params, offset: i * 256, size: 256 } }];
      s.binds.forEach((id, j) => entries.push({ binding: j + 1, resource: { buffer: buffer(id) } }));
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, dev.createBindGroup({ layout: bgl, entries }));
      pass.dispatchWorkgroups(s.groups[0], s.groups[1], s.groups[2]);
      stats[STAT.dispatches]++;
    }
    pass.end();
  }
  const reads: [number, GPUBuffer][] = [];
  for (let i = 0; i < m.readbacks.length; i += 3) {
    const bytes = m.readbacks[i + 2];
    const st = take(stagingPool, bytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    encoder.copyBufferToBuffer(buffer(m.readbacks[i]), 0, st, 0, Math.ceil(bytes / 4) * 4);
    reads.push([i, st]);
  }
  dev.queue.submit([encoder.finish()]);
  stats[STAT.submits]++;
  const err = await dev.popErrorScope();
  popped();
  if (err) throw new Error(`WebGPU validation error: ${err.message}`);
  if (reads.length > 0) {
    // All maps in flight together: Deno's mapAsync sleeps ~10 ms per wait, so one wait covers every output.
    await Promise.all(reads.map(([, st]) => st.mapAsync(GPUMapMode.READ, 0, st.size)));
    stats[STAT.readbacks]++;
    for (const [i, st] of reads) {
      const bytes = m.readbacks[i + 2];
      arena.set(new Uint8Array(st.getMappedRange(0, st.size), 0, bytes), m.readbacks[i + 1]);
      st.unmap();
      stats[STAT.readbackBytes] += bytes;
      give(stagingPool, st);
    }
  }
}

// node:worker_threads rather than a web Worker: only it can be unref'd, and a web Worker that has mapped a buffer
// keeps the process alive after the main module finishes.
parentPort!.on("message", async (data: InitMessage | ExecMessage) => {
  try {
    if (data.type === "init") await init(data);
    else await exec(data);
  } catch (err) {
    reply(STATUS.error, { kind: "exec", detail: err instanceof Error ? err.message : String(err) });
  }
});

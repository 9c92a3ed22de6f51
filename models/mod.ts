/**
 * Arcadia's tensor library: float32 tensors with reverse-mode autograd, a CPU backend (OpenBLAS or pure TypeScript
 * GEMM), neural-network modules, optimizers, losses, distributions and safetensors checkpoints.
 *
 * @example
 * ```ts
 * import { linear, mean, square, tensor } from "./mod.ts";
 * const w = tensor([[0.5, -0.5]], { requiresGrad: true });
 * const loss = mean(square(linear(tensor([[1, 2]]), w)));
 * loss.backward();
 * console.log(w.grad?.toArray()); // [-0.5, -1]
 * ```
 *
 * @module
 */

export * from "./tensor.ts";
export * from "./autograd.ts";
export * from "./ops.ts";
export type { Backend, BinaryOp, ConvGeometry, ReduceOp, UnaryOp } from "./primitives.ts";
export { cpuInfo, setBlasThreads } from "./backends/cpu.ts";
export type { CpuInfo } from "./backends/cpu.ts";
export * from "./rng.ts";
export * from "./init.ts";
export * from "./nn.ts";
export * from "./optim.ts";
export * from "./losses.ts";
export * from "./distributions.ts";
export * from "./checkpoint.ts";

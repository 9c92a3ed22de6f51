/**
 * Arcadia's tensor library: float32 tensors with reverse-mode autograd, a CPU backend (our own AVX-512 GEMM, else
 * OpenBLAS, else pure TypeScript), neural-network modules, optimizers, losses, distributions and safetensors
 * checkpoints.
 *
 * @example
 * ```ts
 * import { linear, mean, square, tensor } from "./mod.ts";
 * const w = tensor([[0.5, -0.5]], { requiresGrad: true });
 * const loss = mean(square(linear(tensor([[1, 2]]), w)));
 * loss.backward();
 * console.log(w.grad?.toArray()); // [-1, -2]
 * ```
 *
 * Layout: `primitives.ts` lists the kernels a backend implements (`backends/cpu.ts` is the CPU one: GEMM through our
 * `backends/native/gemm.c` on AVX-512 CPUs, OpenBLAS via `backends/blas/ffi.ts`, or `backends/gemm_ts.ts`; the loops
 * around it in `backends/native/kernels.c`, both compiled into the cache on first use); `tensor.ts` holds `Tensor`,
 * the autograd engine and the backend registry; `autograd.ts` has one differentiable function per primitive and
 * `ops.ts` the compositions.
 *
 * Environment: `ARCADIA_GEMM=blas` (BLAS instead of our GEMM), `ARCADIA_BLAS` (path to a CBLAS library),
 * `ARCADIA_NO_BLAS=1` (no BLAS), `ARCADIA_NO_NATIVE_KERNELS=1` (TypeScript loops, GEMM through BLAS),
 * `OPENBLAS_CORETYPE` (respected; set automatically from /proc/cpuinfo when unset), `ARCADIA_BLAS_THREADS` (threads
 * for large GEMMs and kernels, also `setBlasThreads`; use 1 when env workers keep the other cores busy), and
 * `ARCADIA_NAN_CHECK=1`.
 *
 * @module
 */

export * from "./tensor.ts";
export * from "./autograd.ts";
export * from "./ops.ts";
export type { Backend, BinaryOp, ConvGeometry, ReduceOp, UnaryOp } from "./primitives.ts";
export { broadcastShapes, shapeSize } from "./primitives.ts";
export { cpuInfo, type MatmulPrecision, setBlasThreads, setMatmulPrecision } from "./backends/cpu.ts";
export { clearBufferPool } from "./pool.ts";
export type { CpuInfo } from "./backends/cpu.ts";
export * from "./rng.ts";
export * from "./init.ts";
export * from "./nn.ts";
export * from "./optim.ts";
export * from "./losses.ts";
export * from "./distributions.ts";
export * from "./checkpoint.ts";
export * from "./onnx.ts";
export * from "./image.ts";
export * from "./standardize.ts";

/**
 * The CPU backend: kernels over `Float32Array`, with GEMM (and so conv and linear layers) through OpenBLAS when FFI is
 * allowed and a library is found, else through the pure-TypeScript GEMM. The memory-bound loops around GEMM
 * (activations, broadcasting, bias-grad reductions, strided copies, im2col) run in our native kernel library
 * (`native/kernels.c`, built into the cache on first use) for arrays of 256+ elements, else in the TypeScript loops
 * below, which compute the same values (`ARCADIA_NO_NATIVE_KERNELS=1` forces them).
 *
 * @module
 */

import type { Backend, BinaryOp, ConvGeometry, IndexArray, ReduceOp, UnaryOp } from "../primitives.ts";
import { broadcastStrides, contiguousStrides } from "../primitives.ts";
import { CBLAS_NO_TRANS, CBLAS_ROW_MAJOR, CBLAS_TRANS, openBlas, readCString } from "./blas/ffi.ts";
import type { BlasLibrary } from "./blas/ffi.ts";
import { gemmTs } from "./gemm_ts.ts";
import type { KernelLibrary } from "./native/ffi.ts";
import { kernelThreads, nativeKernels, nativeKernelsInfo, setKernelThreads } from "./native/native.ts";
import { cpuAdamStep, cpuClipGradNorm, cpuFill, cpuRmspropStep, cpuSgdStep } from "./cpu_optim.ts";

// ---------------------------------------------------------------------------------------------------------------
// Native kernels (kernels.c): vectorized C for the memory-bound loops; the TypeScript loops below are the fallback.

/** Below this many elements the TypeScript loop wins (a sync FFI call costs ~10-100 ns, about 50 elements' work). */
const NATIVE_MIN = 256;

/** Unary op codes of kernels.c (`pow` goes native only as a square). */
const NATIVE_UNARY: Partial<Record<UnaryOp, number>> = {
  neg: 0,
  exp: 1,
  log: 2,
  sqrt: 3,
  abs: 4,
  relu: 5,
  elu: 6,
  tanh: 7,
  sigmoid: 8,
  clamp: 10,
};
const NATIVE_SQUARE = 9;

/** Binary op codes of kernels.c. */
const NATIVE_BINARY: Record<BinaryOp, number> = {
  add: 0,
  sub: 1,
  mul: 2,
  div: 3,
  maximum: 4,
  minimum: 5,
  gt: 6,
  ge: 7,
  lt: 8,
  le: 9,
  eq: 10,
};

function nativeUnaryCode(op: UnaryOp, p0: number): number | undefined {
  return op === "pow" ? (p0 === 2 ? NATIVE_SQUARE : undefined) : NATIVE_UNARY[op];
}

/** Scratch geometry for native calls (shapes/strides as int32), reused so calls stay allocation-free. */
const geo18 = new Int32Array(18);
const geo12 = new Int32Array(12);

function convGeo(g: ConvGeometry): Int32Array {
  geo12[0] = g.batch;
  geo12[1] = g.channels;
  geo12[2] = g.height;
  geo12[3] = g.width;
  geo12[4] = g.kernelH;
  geo12[5] = g.kernelW;
  geo12[6] = g.strideH;
  geo12[7] = g.strideW;
  geo12[8] = g.padH;
  geo12[9] = g.padW;
  geo12[10] = g.outH;
  geo12[11] = g.outW;
  return geo12;
}

// ---------------------------------------------------------------------------------------------------------------
// BLAS state

interface BlasState {
  lib: BlasLibrary | null;
  path: string | null;
  core: string;
  note: string;
  /** Threads for large GEMMs (OpenBLAS's own count, `ARCADIA_BLAS_THREADS`, or `setBlasThreads`). */
  maxThreads: number;
  /** The count last passed to `openblas_set_num_threads` (we only call it when it changes). */
  curThreads: number;
}

/**
 * GEMMs with fewer multiply-adds (M·N·K) run on one BLAS thread: below this, OpenBLAS's thread hand-off costs more
 * than the second core saves (measured on 2 cores: 2048x64x4 is 1.6x slower on 2 threads, 256x64x64 10% slower,
 * 512x64x64 15% faster; on a loaded machine 2 threads lose at every size).
 */
const SMALL_GEMM_WORK = 2 * 1024 * 1024;
/**
 * The same bound for our own GEMM, whose helper thread spins between calls and whose caller takes the helper's
 * slices when it is descheduled: two threads win from about 32x256x64 up (measured on the batch-1 conv shapes:
 * 64x49x576 0.066 → 0.043 ms, 32x400x64 0.023 → 0.017 ms; 64x64x64 and below lose ~5%).
 */
const OWN_SMALL_GEMM_WORK = 512 * 1024;
/**
 * Batch-1 GEMVs reading at least this many matrix elements use every thread: they are memory-bound and two cores
 * stream twice the bandwidth (Nature-CNN fc 512x3136: 0.29 → 0.15 ms even on a loaded machine).
 */
const LARGE_GEMV_ELEMENTS = 512 * 1024;

let blasState: BlasState | undefined;

/** What the CPU backend computes GEMM with. */
export interface CpuInfo {
  /** Path of the loaded BLAS library, or null when the pure-TypeScript GEMM is used. */
  blas: string | null;
  /** OpenBLAS core name (e.g. "SkylakeX"), "unknown" for a BLAS without `openblas_get_corename`, or "pure-ts". */
  core: string;
  /** Threads for large GEMMs: our kernel's (1 or 2) when it runs them, else BLAS's (1 for pure TS). */
  threads: number;
  /** Why this choice was made (forced core type, self-test result, load error). */
  note: string;
  /** Path of the native kernel library (kernels.c) used for the non-GEMM loops, or null for TypeScript kernels. */
  kernels: string | null;
  /** How the native kernels were found or built, or why they are not used. */
  kernelsNote: string;
  /**
   * Which GEMM runs products of 8+ rows and 16+ columns: `"arcadia-avx512"` (our kernel, `native/gemm.c`), `"blas"`
   * or `"pure-ts"`. Smaller products and batch-1 GEMVs always go to BLAS when it is loaded.
   */
  gemm: "arcadia-avx512" | "blas" | "pure-ts";
  /** The internal precision of this thread's products (see `setMatmulPrecision`). */
  matmulPrecision: MatmulPrecision;
  /** `"amx"` when bfloat16 products can run here, else why not. */
  bf16: string;
}

function ffiGranted(): boolean {
  try {
    return Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  } catch {
    return false;
  }
}

/** Compare BLAS against the TS reference on all transpose combinations; returns the worst relative error. */
function blasSelfTest(lib: BlasLibrary): number {
  const m = 37, n = 29, k = 41;
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296) - 0.5;
  const a = Float32Array.from({ length: m * k }, rnd);
  const b = Float32Array.from({ length: k * n }, rnd);
  let worst = 0;
  for (const ta of [false, true]) {
    for (const tb of [false, true]) {
      const c1 = Float32Array.from({ length: m * n }, rnd);
      const c2 = c1.slice();
      gemmTs(ta, tb, m, n, k, 0.75, a, b, 0.5, c1);
      blasCall(lib, ta, tb, m, n, k, 0.75, a, b, 0.5, c2);
      for (let i = 0; i < c1.length; i++) {
        const err = Math.abs(c1[i] - c2[i]) / (1 + Math.abs(c1[i]));
        if (!(err <= worst)) worst = Number.isNaN(err) ? Infinity : err;
      }
    }
  }
  return worst;
}

function blasCall(
  lib: BlasLibrary,
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  b: Float32Array,
  beta: number,
  c: Float32Array,
  lda = transA ? m : k,
  ldb = transB ? k : n,
  ldc = n,
): void {
  lib.symbols.cblas_sgemm(
    CBLAS_ROW_MAJOR,
    transA ? CBLAS_TRANS : CBLAS_NO_TRANS,
    transB ? CBLAS_TRANS : CBLAS_NO_TRANS,
    m,
    n,
    k,
    alpha,
    a,
    lda,
    b,
    ldb,
    beta,
    c,
    ldc,
  );
}

function loadBlas(): BlasState {
  let disabled: string | undefined;
  try {
    disabled = Deno.env.get("ARCADIA_NO_BLAS");
  } catch { /* env permission missing: treat as unset */ }
  const none = { lib: null, path: null, core: "pure-ts", maxThreads: 1, curThreads: 1 };
  if (disabled === "1") return { ...none, note: "ARCADIA_NO_BLAS=1" };
  if (!ffiGranted()) return { ...none, note: "FFI not permitted (run with --allow-ffi for BLAS)" };
  let opened;
  try {
    opened = openBlas();
  } catch (err) {
    return { ...none, note: (err as Error).message };
  }
  const { lib, path, forcedCore } = opened;
  const core = readCString(lib.symbols.openblas_get_corename?.()) ?? "unknown";
  const err = blasSelfTest(lib);
  if (!(err < 1e-4)) {
    lib.close();
    const note = `BLAS at ${path} (core ${core}${forcedCore ? `, forced OPENBLAS_CORETYPE=${forcedCore}` : ""}) ` +
      `failed its self-test (relative error ${err}); using the pure TypeScript GEMM (much slower). Set ` +
      "OPENBLAS_CORETYPE to a core your CPU supports, or ARCADIA_BLAS to another library.";
    console.warn(`arcadia/models: ${note}`);
    return { ...none, note };
  }
  let threadsEnv: string | undefined;
  try {
    threadsEnv = Deno.env.get("ARCADIA_BLAS_THREADS");
  } catch { /* no env permission */ }
  if (threadsEnv && Number(threadsEnv) >= 1) lib.symbols.openblas_set_num_threads?.(Math.floor(Number(threadsEnv)));
  const threads = lib.symbols.openblas_get_num_threads?.() ?? 1;
  return {
    lib,
    path,
    core,
    maxThreads: threads,
    curThreads: threads,
    note: forcedCore
      ? `OPENBLAS_CORETYPE=${forcedCore} set from /proc/cpuinfo; self-test passed`
      : `${userCoreNote()}self-test passed`,
  };
}

function userCoreNote(): string {
  try {
    const v = Deno.env.get("OPENBLAS_CORETYPE");
    return v ? `OPENBLAS_CORETYPE=${v} from the environment; ` : "";
  } catch {
    return "";
  }
}

function blas(): BlasState {
  return blasState ??= loadBlas();
}

/**
 * Which GEMM the CPU backend uses (loads BLAS on first call).
 *
 * @example
 * ```ts
 * import { cpuInfo } from "./cpu.ts";
 * const { blas, core, threads } = cpuInfo();
 * console.log(blas ?? "pure TypeScript", core, threads);
 * ```
 */
export function cpuInfo(): CpuInfo {
  const s = blas();
  const k = nativeKernelsInfo();
  const gemm = ownGemm() !== null ? "arcadia-avx512" : s.lib !== null ? "blas" : "pure-ts";
  return {
    blas: s.path,
    core: s.core,
    threads: gemm === "arcadia-avx512" ? Math.min(2, kernelThreads()) : s.maxThreads,
    note: s.note,
    kernels: k.path,
    kernelsNote: k.note,
    gemm,
    matmulPrecision: precision,
    bf16: bf16Support(),
  };
}

/**
 * Set the thread count for large GEMMs: OpenBLAS's (no-op without `openblas_set_num_threads`) and our own kernel's
 * (1 or 2). GEMMs below ~2M multiply-adds still run on one thread. Use 1 in actors and all cores in a learner.
 */
export function setBlasThreads(threads: number): void {
  const own = ownGemm() !== null;
  setKernelThreads(own ? threads : 1); // see ownGemm: one spinning thread pool at a time
  const s = blas();
  if (own) return; // BLAS keeps one thread
  if (!s.lib?.symbols.openblas_set_num_threads) return;
  s.lib.symbols.openblas_set_num_threads(threads);
  s.maxThreads = s.lib.symbols.openblas_get_num_threads?.() ?? threads;
  s.curThreads = s.maxThreads;
}

/** Use one BLAS thread for small GEMMs, `maxThreads` for large ones; calls OpenBLAS only when the count changes. */
function pickThreads(s: BlasState, lib: BlasLibrary, work: number): void {
  const want = work < SMALL_GEMM_WORK ? 1 : s.maxThreads;
  if (want !== s.curThreads) {
    lib.symbols.openblas_set_num_threads?.(want);
    s.curThreads = want;
  }
}

/** Raw `cblas_sgemm` (no checks), or null when BLAS is not loaded; for benchmarks comparing against the wrapper. */
export function rawBlasSgemm(): BlasLibrary["symbols"]["cblas_sgemm"] | null {
  return blas().lib?.symbols.cblas_sgemm ?? null;
}

/** Close the BLAS library (idempotent); later GEMMs reload it. */
export function closeBlas(): void {
  blasState?.lib?.close();
  blasState = undefined;
}

/**
 * Our own AVX-512 GEMM (`native/gemm.c`): faster than the Debian OpenBLAS on the learners' shapes (small M against
 * long N or K), 1 or 2 threads. Null when the kernel library is unavailable, was built without AVX-512, or
 * `ARCADIA_GEMM=blas` asks for BLAS.
 */
function ownGemm(): KernelLibrary | null {
  if (ownGemmOff) return null;
  const lib = nativeKernels();
  if (lib === null) return null;
  if (ownGemmProbed) return lib;
  ownGemmProbed = true;
  let choice: string | undefined;
  try {
    choice = Deno.env.get("ARCADIA_GEMM");
  } catch { /* no env permission: default */ }
  // A 1x1x1 product tells whether the build has the AVX-512 kernel (-1 otherwise).
  const one = new Float32Array([1]), out = new Float32Array(1);
  if (choice === "blas" || lib.symbols.arc_sgemm(0, 0, 1, 1, 1, 1, one, 1, one, 1, 0, out, 1, 1) !== 0) {
    ownGemmOff = true;
    // OpenBLAS's idle threads spin for ~0.1 s after each call; next to our helper thread that oversubscribes the
    // cores, so our other kernels stay on one thread when BLAS runs the products.
    if ((blasState ?? blas()).maxThreads > 1) setKernelThreads(1);
    return null;
  }
  // The reverse: with our GEMM in charge, BLAS only gets small products, on one thread.
  const s = blasState ?? blas();
  s.lib?.symbols.openblas_set_num_threads?.(1);
  s.maxThreads = s.curThreads = 1;
  return lib;
}
let ownGemmOff = false;
let ownGemmProbed = false;

/** GEMM through our AVX-512 kernel or BLAS when loaded, else pure TypeScript. Same contract as `Backend.gemm`. */
export function gemm(
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  b: Float32Array,
  beta: number,
  c: Float32Array,
  lda = transA ? m : k,
  ldb = transB ? k : n,
  ldc = n,
): void {
  if (m === 0 || n === 0) return;
  if (precision === "medium" && bf16Shape(m, n, k)) {
    const threads = ownGemmThreads(m, n, k);
    const lib = nativeKernels()!;
    if (
      lib.symbols.arc_sgemm_bf16(+transA, +transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads, null) === 0
    ) {
      return;
    } // else out of memory: float32 below
  }
  const s = blasState ?? blas();
  const own = ownGemmFor(m, n, k);
  if (own !== null) {
    const threads = ownGemmThreads(m, n, k);
    const rc = own.symbols.arc_sgemm(+transA, +transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads);
    if (rc === 0) return; // else out of memory for the packing buffers: BLAS below
  }
  const lib = s.lib;
  if (lib === null || k === 0) {
    gemmTs(transA, transB, m, n, k, alpha, a, b, beta, c, lda, ldb, ldc);
    return;
  }
  const gemv = m === 1 && !transA && n > 1;
  if (s.maxThreads > 1) pickThreads(s, lib, gemv && n * k >= LARGE_GEMV_ELEMENTS ? Infinity : m * n * k);
  if (gemv) {
    // Row vector times matrix (batch-1 inference): GEMV streams the matrix once, GEMM packs it first.
    if (beta === 0) c.fill(0, 0, n); // some OpenBLAS versions compute 0 * NaN for beta = 0 in GEMV
    if (transB) lib.symbols.cblas_sgemv(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, n, k, alpha, b, ldb, a, 1, beta, c, 1);
    else lib.symbols.cblas_sgemv(CBLAS_ROW_MAJOR, CBLAS_TRANS, k, n, alpha, b, ldb, a, 1, beta, c, 1);
  } else blasCall(lib, transA, transB, m, n, k, alpha, a, b, beta, c, lda, ldb, ldc);
}

/** `gemm` over rows of B at given offsets, through our AVX-512 kernel only; see `Backend.gemmRows`. */
export function gemmRows(
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  b: Float32Array,
  bRows: Int32Array,
  beta: number,
  c: Float32Array,
  lda = transA ? m : k,
  ldc = n,
): boolean {
  const own = bRows.length === (transB ? n : k) ? ownGemmFor(m, n, k) : null;
  if (own === null) return false;
  const threads = ownGemmThreads(m, n, k);
  if (
    precision === "medium" && bf16Shape(m, n, k) &&
    own.symbols.arc_sgemm_bf16(+transA, +transB, m, n, k, alpha, a, lda, b, 0, beta, c, ldc, threads, bRows) === 0
  ) return true;
  return own.symbols.arc_sgemm_rows(+transA, +transB, m, n, k, alpha, a, lda, b, 0, beta, c, ldc, threads, bRows) === 0;
}

/** Our AVX-512 kernel for an m×n×k product, or null where BLAS serves it (or our kernel is not built). */
function ownGemmFor(m: number, n: number, k: number): KernelLibrary | null {
  // Its 8x32 tiles waste most of their work at 2-7 rows or under 16 columns: BLAS serves those.
  return (m >= 8 || m === 1) && n >= 16 && k > 0 ? ownGemm() : null;
}

/** Threads for our kernel: one below the sizes where the second thread pays off. */
function ownGemmThreads(m: number, n: number, k: number): number {
  return m * n * k >= (m === 1 ? LARGE_GEMV_ELEMENTS : OWN_SMALL_GEMM_WORK) ? kernelThreads() : 1;
}

// ---------------------------------------------------------------------------------------------------------------
// Matmul precision

/**
 * Internal precision of float32 products, with the names of PyTorch's `torch.set_float32_matmul_precision`:
 * `"highest"` computes in float32; `"medium"` rounds both inputs to bfloat16 (8-bit mantissa) and sums their exact
 * products in float32, on AMX tiles (`native/gemm_bf16.c`; Intel Sapphire Rapids and later).
 */
export type MatmulPrecision = "highest" | "medium";

let precision: MatmulPrecision = "highest";
let bf16Why: string | undefined; // "amx" when bfloat16 products run here, else why not; undefined until probed

/** `"amx"` when `arc_sgemm_bf16` runs here (probed once with a 1x1x1 product), else why not. */
function bf16Support(): string {
  if (bf16Why !== undefined) return bf16Why;
  const lib = ownGemm();
  if (lib === null) return bf16Why = "needs the native kernels with our AVX-512 GEMM";
  const one = new Float32Array([1]), out = new Float32Array(1);
  const rc = lib.symbols.arc_sgemm_bf16(0, 0, 1, 1, 1, 1, one, 1, one, 1, 0, out, 1, 1, null);
  return bf16Why = rc === 0 && out[0] === 1 ? "amx" : "this CPU or kernel cannot run AMX tiles (AMX-BF16, Linux 5.16+)";
}

/**
 * Products with at least 16 rows, 16 columns and 32 terms per sum: smaller ones would waste most of a 16x32·32x16
 * tile product, and batch-1 GEMVs are bound by reading the weights, not by arithmetic.
 */
function bf16Shape(m: number, n: number, k: number): boolean {
  return m >= 16 && n >= 16 && k >= 32;
}

/**
 * Choose the internal precision of this thread's float32 products (module state: each Worker chooses its own) and
 * return the one in effect: `"medium"` (bfloat16 products, float32 sums) where AMX runs, else `"highest"`. Tensors
 * stay float32 either way; only GEMMs and convolutions change, by about 2^-9 relative per input (as PyTorch's
 * `set_float32_matmul_precision("medium")`). Measured on the Doom learner's conv shapes: 2-2.7x the float32 GEMM.
 *
 * @example
 * ```ts
 * import { cpuInfo, setMatmulPrecision } from "./cpu.ts";
 * const used = setMatmulPrecision("medium"); // "highest" where the CPU has no AMX
 * console.log(used, cpuInfo().bf16);
 * setMatmulPrecision("highest");
 * ```
 */
export function setMatmulPrecision(p: MatmulPrecision): MatmulPrecision {
  if (p !== "highest" && p !== "medium") {
    throw new Error(
      `setMatmulPrecision: "${p}" is not supported (use "highest" for float32 products or "medium" for bfloat16 ones)`,
    );
  }
  precision = p === "medium" && bf16Support() === "amx" ? "medium" : "highest";
  return precision;
}

// ---------------------------------------------------------------------------------------------------------------
// Strided iteration helpers

interface Collapsed {
  shape: number[];
  strides: number[][];
}

/** Drop size-1 dims and merge dims that are contiguous for every operand, so inner loops run as long as possible. */
function collapse(shape: readonly number[], stridesList: readonly (readonly number[])[]): Collapsed {
  const dims: number[] = [];
  const strides: number[][] = stridesList.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = dims.length - 1;
    let merge = last >= 0;
    for (let o = 0; merge && o < stridesList.length; o++) {
      if (strides[o][last] !== stridesList[o][d] * shape[d]) merge = false;
    }
    if (merge) {
      dims[last] *= shape[d];
      for (let o = 0; o < stridesList.length; o++) strides[o][last] = stridesList[o][d];
    } else {
      dims.push(shape[d]);
      for (let o = 0; o < stridesList.length; o++) strides[o].push(stridesList[o][d]);
    }
  }
  if (dims.length === 0) {
    dims.push(1);
    for (const s of strides) s.push(0);
  }
  return { shape: dims, strides };
}

/** Start offsets of every inner row (all dims but the last) for one operand. */
function rowOffsets(shape: readonly number[], strides: readonly number[], base: number): Int32Array {
  const nd = shape.length - 1;
  let rows = 1;
  for (let d = 0; d < nd; d++) rows *= shape[d];
  const out = new Int32Array(rows);
  if (nd === 0) {
    out[0] = base;
    return out;
  }
  const idx = new Int32Array(nd);
  let off = base;
  for (let r = 0; r < rows; r++) {
    out[r] = off;
    for (let d = nd - 1; d >= 0; d--) {
      off += strides[d];
      if (++idx[d] < shape[d]) break;
      off -= strides[d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Elementwise kernels

function unary(op: UnaryOp, x: Float32Array, out: Float32Array, p0: number, p1: number): void {
  const n = x.length;
  if (n >= NATIVE_MIN) {
    const k = nativeKernels(), code = nativeUnaryCode(op, p0);
    if (k !== null && code !== undefined) return k.symbols.arc_unary(code, x, out, n, p0, p1);
  }
  unaryTs(op, x, out, p0, p1);
}

const fr = Math.fround;
const LOG2E_F = fr(Math.LOG2E), LN2_LO_F = fr(Math.LN2 - 0.693145751953125);
/** 1/9! .. 1/2! as float32: the Taylor coefficients of expm1NegF32. */
const EXPM1_TAYLOR = [362880, 40320, 5040, 720, 120, 24, 6, 2].map((f) => fr(1 / f));

/**
 * ELU's exp(x) - 1 for x <= 0 in float32, operation by operation as `expm1_neg_f` in kernels.c (every `fr` is one
 * float32 rounding, which computing in double then rounding reproduces exactly), so both paths give the same bits.
 */
function expm1NegF32(x: number): number {
  const c = x < -30 ? -30 : x;
  const k = fr(fr(fr(c * LOG2E_F) + 12582912) - 12582912);
  const r = fr(fr(c - fr(k * 0.693145751953125)) - fr(k * LN2_LO_F));
  let p = EXPM1_TAYLOR[0];
  for (let i = 1; i < EXPM1_TAYLOR.length; i++) p = fr(fr(p * r) + EXPM1_TAYLOR[i]);
  const em1 = fr(fr(fr(p * r) * r) + r), scale = 2 ** k;
  return fr(fr(scale * em1) + fr(scale - 1));
}

function unaryTs(op: UnaryOp, x: Float32Array, out: Float32Array, p0: number, p1: number): void {
  const n = x.length;
  switch (op) {
    case "neg":
      for (let i = 0; i < n; i++) out[i] = -x[i];
      break;
    case "exp":
      for (let i = 0; i < n; i++) out[i] = Math.exp(x[i]);
      break;
    case "log":
      for (let i = 0; i < n; i++) out[i] = Math.log(x[i]);
      break;
    case "sqrt":
      for (let i = 0; i < n; i++) out[i] = Math.sqrt(x[i]);
      break;
    case "abs":
      for (let i = 0; i < n; i++) out[i] = Math.abs(x[i]);
      break;
    case "relu":
      for (let i = 0; i < n; i++) {
        const v = x[i];
        out[i] = v > 0 ? v : 0;
      }
      break;
    case "elu": {
      const alpha = Math.fround(p0);
      for (let i = 0; i < n; i++) {
        const v = x[i];
        out[i] = v > 0 ? v : v !== v ? v : alpha * expm1NegF32(v);
      }
      break;
    }
    case "tanh":
      // Math.tanh is ~1.5-2x slower than one Math.exp in V8; near 0 the series avoids 1 - e's cancellation.
      for (let i = 0; i < n; i++) {
        const v = x[i];
        const a = v < 0 ? -v : v;
        let t: number;
        if (a < 0.004) t = a * (1 - (a * a) / 3);
        else {
          const e = Math.exp(-2 * a);
          t = (1 - e) / (1 + e);
        }
        out[i] = v < 0 ? -t : t;
      }
      break;
    case "sigmoid":
      for (let i = 0; i < n; i++) {
        const v = x[i];
        // Branch keeps exp's argument non-positive (no overflow).
        if (v >= 0) out[i] = 1 / (1 + Math.exp(-v));
        else {
          const e = Math.exp(v);
          out[i] = e / (1 + e);
        }
      }
      break;
    case "pow":
      if (p0 === 2) { for (let i = 0; i < n; i++) out[i] = x[i] * x[i]; }
      else if (p0 === 0.5) { for (let i = 0; i < n; i++) out[i] = Math.sqrt(x[i]); }
      else for (let i = 0; i < n; i++) out[i] = Math.pow(x[i], p0);
      break;
    case "clamp":
      for (let i = 0; i < n; i++) {
        const v = x[i];
        out[i] = v < p0 ? p0 : v > p1 ? p1 : v;
      }
      break;
    default:
      throw new Error(`cpu backend: unknown unary op '${op satisfies never}'`);
  }
}

function unaryGrad(
  op: UnaryOp,
  x: Float32Array,
  y: Float32Array,
  gy: Float32Array,
  gx: Float32Array,
  p0: number,
  p1: number,
): void {
  const n = x.length;
  if (n >= NATIVE_MIN) {
    const k = nativeKernels(), code = nativeUnaryCode(op, p0);
    if (k !== null && code !== undefined) return k.symbols.arc_unary_grad(code, x, y, gy, gx, n, p0, p1);
  }
  switch (op) {
    case "neg":
      for (let i = 0; i < n; i++) gx[i] -= gy[i];
      break;
    case "exp":
      for (let i = 0; i < n; i++) gx[i] += gy[i] * y[i];
      break;
    case "log":
      for (let i = 0; i < n; i++) gx[i] += gy[i] / x[i];
      break;
    case "sqrt":
      for (let i = 0; i < n; i++) gx[i] += (0.5 * gy[i]) / y[i];
      break;
    case "abs":
      for (let i = 0; i < n; i++) gx[i] += x[i] > 0 ? gy[i] : x[i] < 0 ? -gy[i] : 0;
      break;
    case "relu":
      for (let i = 0; i < n; i++) if (x[i] > 0) gx[i] += gy[i];
      break;
    case "elu":
      for (let i = 0; i < n; i++) gx[i] += x[i] > 0 ? gy[i] : gy[i] * (y[i] + p0);
      break;
    case "tanh":
      for (let i = 0; i < n; i++) gx[i] += gy[i] * (1 - y[i] * y[i]);
      break;
    case "sigmoid":
      for (let i = 0; i < n; i++) gx[i] += gy[i] * y[i] * (1 - y[i]);
      break;
    case "pow":
      if (p0 === 2) { for (let i = 0; i < n; i++) gx[i] += 2 * gy[i] * x[i]; }
      else for (let i = 0; i < n; i++) gx[i] += gy[i] * p0 * Math.pow(x[i], p0 - 1);
      break;
    case "clamp":
      // PyTorch passes the gradient where min <= x <= max (inclusive).
      for (let i = 0; i < n; i++) if (x[i] >= p0 && x[i] <= p1) gx[i] += gy[i];
      break;
    default:
      throw new Error(`cpu backend: unknown unary op '${op satisfies never}'`);
  }
}

/** One inner row of a binary op; `sa`/`sb` are each 0 or the element stride. */
function binaryRow(
  op: BinaryOp,
  a: Float32Array,
  ao: number,
  sa: number,
  b: Float32Array,
  bo: number,
  sb: number,
  out: Float32Array,
  oo: number,
  so: number,
  n: number,
): void {
  if (sa === 1 && sb === 1 && so === 1) {
    // Fast contiguous path (the common same-shape case).
    switch (op) {
      case "add":
        for (let i = 0; i < n; i++) out[oo + i] = a[ao + i] + b[bo + i];
        return;
      case "sub":
        for (let i = 0; i < n; i++) out[oo + i] = a[ao + i] - b[bo + i];
        return;
      case "mul":
        for (let i = 0; i < n; i++) out[oo + i] = a[ao + i] * b[bo + i];
        return;
      case "div":
        for (let i = 0; i < n; i++) out[oo + i] = a[ao + i] / b[bo + i];
        return;
    }
  }
  if (sa === 1 && sb === 0 && so === 1) {
    const v = b[bo];
    switch (op) {
      case "add":
        for (let i = 0; i < n; i++) out[oo + i] = a[ao + i] + v;
        return;
      case "sub":
        for (let i = 0; i < n; i++) out[oo + i] = a[ao + i] - v;
        return;
      case "mul":
        for (let i = 0; i < n; i++) out[oo + i] = a[ao + i] * v;
        return;
      case "div":
        for (let i = 0; i < n; i++) out[oo + i] = a[ao + i] / v;
        return;
    }
  }
  let ia = ao, ib = bo, io = oo;
  switch (op) {
    case "add":
      for (let i = 0; i < n; i++, ia += sa, ib += sb, io += so) out[io] = a[ia] + b[ib];
      break;
    case "sub":
      for (let i = 0; i < n; i++, ia += sa, ib += sb, io += so) out[io] = a[ia] - b[ib];
      break;
    case "mul":
      for (let i = 0; i < n; i++, ia += sa, ib += sb, io += so) out[io] = a[ia] * b[ib];
      break;
    case "div":
      for (let i = 0; i < n; i++, ia += sa, ib += sb, io += so) out[io] = a[ia] / b[ib];
      break;
    case "maximum":
      for (let i = 0; i < n; i++, ia += sa, ib += sb, io += so) {
        const x = a[ia], y = b[ib];
        out[io] = x !== x || y !== y ? NaN : x >= y ? x : y;
      }
      break;
    case "minimum":
      for (let i = 0; i < n; i++, ia += sa, ib += sb, io += so) {
        const x = a[ia], y = b[ib];
        out[io] = x !== x || y !== y ? NaN : x <= y ? x : y;
      }
      break;
    case "gt":
      for (let i = 0; i < n; i++, ia += sa, ib += sb, io += so) out[io] = a[ia] > b[ib] ? 1 : 0;
      break;
    case "ge":
      for (let i = 0; i < n; i++, ia += sa, ib += sb, io += so) out[io] = a[ia] >= b[ib] ? 1 : 0;
      break;
    case "lt":
      for (let i = 0; i < n; i++, ia += sa, ib += sb, io += so) out[io] = a[ia] < b[ib] ? 1 : 0;
      break;
    case "le":
      for (let i = 0; i < n; i++, ia += sa, ib += sb, io += so) out[io] = a[ia] <= b[ib] ? 1 : 0;
      break;
    case "eq":
      for (let i = 0; i < n; i++, ia += sa, ib += sb, io += so) out[io] = a[ia] === b[ib] ? 1 : 0;
      break;
    default:
      throw new Error(`cpu backend: unknown binary op '${op satisfies never}'`);
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function binary(
  op: BinaryOp,
  a: Float32Array,
  aShape: readonly number[],
  b: Float32Array,
  bShape: readonly number[],
  out: Float32Array,
  outShape: readonly number[],
): void {
  const k = out.length >= NATIVE_MIN ? nativeKernels() : null;
  if (sameShape(aShape, outShape) && sameShape(bShape, outShape)) {
    if (k !== null) k.symbols.arc_binary2d(NATIVE_BINARY[op], a, 0, 1, b, 0, 1, out, 1, out.length);
    else binaryRow(op, a, 0, 1, b, 0, 1, out, 0, 1, out.length);
    return;
  }
  const c = collapse(outShape, [
    broadcastStrides(aShape, outShape),
    broadcastStrides(bShape, outShape),
    contiguousStrides(outShape),
  ]);
  const last = c.shape.length - 1;
  const n = c.shape[last];
  if (k !== null && last <= 1) {
    // One call covers bias rows, per-channel columns and scalar operands (the shapes layers produce).
    const [sa0, sa1] = last === 1 ? c.strides[0] : [0, c.strides[0][0]];
    const [sb0, sb1] = last === 1 ? c.strides[1] : [0, c.strides[1][0]];
    k.symbols.arc_binary2d(NATIVE_BINARY[op], a, sa0, sa1, b, sb0, sb1, out, last === 1 ? c.shape[0] : 1, n);
    return;
  }
  const oa = rowOffsets(c.shape, c.strides[0], 0);
  const ob = rowOffsets(c.shape, c.strides[1], 0);
  const sa = c.strides[0][last], sb = c.strides[1][last];
  for (let r = 0; r < oa.length; r++) binaryRow(op, a, oa[r], sa, b, ob[r], sb, out, r * n, 1, n);
}

function where(
  cond: Float32Array,
  condShape: readonly number[],
  a: Float32Array,
  aShape: readonly number[],
  b: Float32Array,
  bShape: readonly number[],
  out: Float32Array,
  outShape: readonly number[],
): void {
  const c = collapse(outShape, [
    broadcastStrides(condShape, outShape),
    broadcastStrides(aShape, outShape),
    broadcastStrides(bShape, outShape),
    contiguousStrides(outShape),
  ]);
  const last = c.shape.length - 1;
  const n = c.shape[last];
  const oc = rowOffsets(c.shape, c.strides[0], 0);
  const oa = rowOffsets(c.shape, c.strides[1], 0);
  const ob = rowOffsets(c.shape, c.strides[2], 0);
  const sc = c.strides[0][last], sa = c.strides[1][last], sb = c.strides[2][last];
  for (let r = 0; r < oc.length; r++) {
    let ic = oc[r], ia = oa[r], ib = ob[r], io = r * n;
    for (let i = 0; i < n; i++, ic += sc, ia += sa, ib += sb, io++) out[io] = cond[ic] !== 0 ? a[ia] : b[ib];
  }
}

function sumTo(
  x: Float32Array,
  xShape: readonly number[],
  out: Float32Array,
  outShape: readonly number[],
  alpha: number,
): void {
  const k = x.length >= NATIVE_MIN ? nativeKernels() : null;
  if (sameShape(xShape, outShape)) {
    const n = x.length;
    if (k !== null) k.symbols.arc_sum_to2d(x, 1, n, out, 0, 1, alpha);
    else if (alpha === 1) { for (let i = 0; i < n; i++) out[i] += x[i]; }
    else for (let i = 0; i < n; i++) out[i] += alpha * x[i];
    return;
  }
  const c = collapse(xShape, [contiguousStrides(xShape), broadcastStrides(outShape, xShape)]);
  const last = c.shape.length - 1;
  const n = c.shape[last];
  if (k !== null && last <= 1) {
    // Fused bias-grad reductions: row sums ([O, N·P] → [O]) or column sums ([M, N] → [N]) in one vectorized pass.
    if (last === 0) k.symbols.arc_sum_to2d(x, 1, n, out, 0, c.strides[1][0], alpha);
    else k.symbols.arc_sum_to2d(x, c.shape[0], n, out, c.strides[1][0], c.strides[1][1], alpha);
    return;
  }
  const ox = rowOffsets(c.shape, c.strides[0], 0);
  const oo = rowOffsets(c.shape, c.strides[1], 0);
  const so = c.strides[1][last];
  for (let r = 0; r < ox.length; r++) {
    const xo = ox[r], o = oo[r];
    if (so === 0) {
      let s = 0;
      for (let i = 0; i < n; i++) s += x[xo + i];
      out[o] += alpha * s;
    } else {
      for (let i = 0; i < n; i++) out[o + i * so] += alpha * x[xo + i];
    }
  }
}

function reduce(op: ReduceOp, x: Float32Array, outer: number, n: number, inner: number, out: Float32Array): void {
  for (let o = 0; o < outer; o++) {
    const base = o * n * inner;
    const ob = o * inner;
    if (inner === 1) {
      if (op === "sum") {
        let s = 0;
        for (let j = 0; j < n; j++) s += x[base + j];
        out[ob] = s;
      } else {
        let best = -Infinity, arg = 0;
        for (let j = 0; j < n; j++) {
          const v = x[base + j];
          if (v > best || v !== v) {
            best = v;
            arg = j;
            if (v !== v) break; // NaN propagates, like PyTorch
          }
        }
        out[ob] = op === "max" ? best : arg;
      }
      continue;
    }
    if (op === "sum") {
      for (let i = 0; i < inner; i++) out[ob + i] = x[base + i];
      for (let j = 1; j < n; j++) {
        const row = base + j * inner;
        for (let i = 0; i < inner; i++) out[ob + i] += x[row + i];
      }
    } else {
      for (let i = 0; i < inner; i++) {
        let best = -Infinity, arg = 0;
        for (let j = 0; j < n; j++) {
          const v = x[base + j * inner + i];
          if (v > best || v !== v) {
            best = v;
            arg = j;
            if (v !== v) break;
          }
        }
        out[ob + i] = op === "max" ? best : arg;
      }
    }
  }
}

function im2col(x: Float32Array, g: ConvGeometry, col: Float32Array): void {
  const k = nativeKernels();
  if (k !== null) return k.symbols.arc_im2col(x, convGeo(g), col, kernelThreads());
  const { batch, channels, height, width, kernelH, kernelW, strideH, strideW, padH, padW, outH, outW } = g;
  const P = outH * outW;
  const cols = batch * P;
  const hw = height * width;
  for (let c = 0; c < channels; c++) {
    for (let ki = 0; ki < kernelH; ki++) {
      for (let kj = 0; kj < kernelW; kj++) {
        const row = ((c * kernelH + ki) * kernelW + kj) * cols;
        for (let b = 0; b < batch; b++) {
          const xb = (b * channels + c) * hw;
          let o = row + b * P;
          for (let oh = 0; oh < outH; oh++) {
            const ih = oh * strideH + ki - padH;
            if (ih < 0 || ih >= height) {
              col.fill(0, o, o + outW);
              o += outW;
              continue;
            }
            const xr = xb + ih * width;
            let iw = kj - padW;
            if (iw >= 0 && iw + (outW - 1) * strideW < width) {
              for (let ow = 0; ow < outW; ow++, iw += strideW) col[o++] = x[xr + iw];
            } else {
              for (let ow = 0; ow < outW; ow++, iw += strideW) col[o++] = iw >= 0 && iw < width ? x[xr + iw] : 0;
            }
          }
        }
      }
    }
  }
}

function col2im(col: Float32Array, g: ConvGeometry, dx: Float32Array): void {
  const k = nativeKernels();
  if (k !== null) return k.symbols.arc_col2im(col, convGeo(g), dx, kernelThreads());
  const { batch, channels, height, width, kernelH, kernelW, strideH, strideW, padH, padW, outH, outW } = g;
  const P = outH * outW;
  const cols = batch * P;
  const hw = height * width;
  const phased = strideH * strideW * Math.ceil(height / strideH) * Math.ceil(width / strideW);
  if (padH === 0 && padW === 0 && outW >= 8 && phased <= 16384) {
    // kernels.c's col2im_unpadded order, for the same bits: each plane's terms summed from zero, then added to dx.
    const plane = new Float32Array(hw);
    for (let c = 0; c < channels; c++) {
      for (let b = 0; b < batch; b++) {
        plane.fill(0);
        for (let ki = 0; ki < kernelH; ki++) {
          for (let kj = 0; kj < kernelW; kj++) {
            let o = ((c * kernelH + ki) * kernelW + kj) * cols + b * P;
            for (let oh = 0; oh < outH; oh++) {
              const xr = (oh * strideH + ki) * width + kj;
              for (let ow = 0; ow < outW; ow++) plane[xr + ow * strideW] += col[o++];
            }
          }
        }
        const xb = (b * channels + c) * hw;
        for (let i = 0; i < hw; i++) dx[xb + i] += plane[i];
      }
    }
    return;
  }
  for (let c = 0; c < channels; c++) {
    for (let ki = 0; ki < kernelH; ki++) {
      for (let kj = 0; kj < kernelW; kj++) {
        const row = ((c * kernelH + ki) * kernelW + kj) * cols;
        for (let b = 0; b < batch; b++) {
          const xb = (b * channels + c) * hw;
          let o = row + b * P;
          for (let oh = 0; oh < outH; oh++) {
            const ih = oh * strideH + ki - padH;
            if (ih < 0 || ih >= height) {
              o += outW;
              continue;
            }
            const xr = xb + ih * width;
            let iw = kj - padW;
            if (iw >= 0 && iw + (outW - 1) * strideW < width) {
              for (let ow = 0; ow < outW; ow++, iw += strideW) dx[xr + iw] += col[o++];
            } else {
              for (let ow = 0; ow < outW; ow++, iw += strideW, o++) if (iw >= 0 && iw < width) dx[xr + iw] += col[o];
            }
          }
        }
      }
    }
  }
}

function copyStrided(
  src: Float32Array,
  srcOffset: number,
  srcStrides: readonly number[],
  shape: readonly number[],
  dst: Float32Array,
  dstOffset: number,
  dstStrides: readonly number[],
  accumulate: boolean,
): void {
  const c = collapse(shape, [srcStrides, dstStrides]);
  let d = c.shape, s0 = c.strides[0], s1 = c.strides[1];
  if (d.length > 6) {
    // Rare: fall back to per-row offsets for > 6 non-mergeable dims.
    const last = d.length - 1;
    const os = rowOffsets(d, s0, srcOffset), od = rowOffsets(d, s1, dstOffset);
    for (let r = 0; r < os.length; r++) copyRow(src, os[r], s0[last], dst, od[r], s1[last], d[last], accumulate);
    return;
  }
  while (d.length < 6) {
    d = [1, ...d];
    s0 = [0, ...s0];
    s1 = [0, ...s1];
  }
  const k = nativeKernels();
  if (k !== null && d[0] * d[1] * d[2] * d[3] * d[4] * d[5] >= NATIVE_MIN) {
    // Permutes and space-to-depth boxes run ~2 ns/element in V8 (bounds checks, no SIMD); C copies rows with memcpy.
    for (let i = 0; i < 6; i++) {
      geo18[i] = d[i];
      geo18[6 + i] = s0[i];
      geo18[12 + i] = s1[i];
    }
    k.symbols.arc_copy6(src, srcOffset, dst, dstOffset, geo18, accumulate ? 1 : 0, kernelThreads());
    return;
  }
  // Explicit nested loops: no offset tables, and the row kernel sees monomorphic arguments.
  const [n0, n1, n2, n3, n4, n] = d;
  const [a0, a1, a2, a3, a4, ss] = s0;
  const [b0, b1, b2, b3, b4, sd] = s1;
  for (let i0 = 0; i0 < n0; i0++) {
    for (let i1 = 0; i1 < n1; i1++) {
      for (let i2 = 0; i2 < n2; i2++) {
        for (let i3 = 0; i3 < n3; i3++) {
          let is = srcOffset + i0 * a0 + i1 * a1 + i2 * a2 + i3 * a3;
          let id = dstOffset + i0 * b0 + i1 * b1 + i2 * b2 + i3 * b3;
          for (let i4 = 0; i4 < n4; i4++, is += a4, id += b4) copyRow(src, is, ss, dst, id, sd, n, accumulate);
        }
      }
    }
  }
}

function copyRow(
  src: Float32Array,
  is: number,
  ss: number,
  dst: Float32Array,
  id: number,
  sd: number,
  n: number,
  accumulate: boolean,
): void {
  if (accumulate) {
    if (ss === 1 && sd === 1) { for (let i = 0; i < n; i++) dst[id + i] += src[is + i]; }
    else for (let i = 0; i < n; i++, is += ss, id += sd) dst[id] += src[is];
  } else if (ss === 1 && sd === 1) {
    if (n >= 256) dst.set(src.subarray(is, is + n), id); // memcpy for long rows
    else for (let i = 0; i < n; i++) dst[id + i] = src[is + i];
  } else if (ss === 0) {
    const v = src[is];
    for (let i = 0; i < n; i++, id += sd) dst[id] = v;
  } else for (let i = 0; i < n; i++, is += ss, id += sd) dst[id] = src[is];
}

function checkIndex(v: number, n: number): number {
  if (!(v >= 0 && v < n) || v !== Math.floor(v)) {
    throw new RangeError(`gather: index ${v} out of range for an axis of size ${n}`);
  }
  return v;
}

function gather(
  x: Float32Array,
  outer: number,
  n: number,
  inner: number,
  index: IndexArray,
  m: number,
  out: Float32Array,
): void {
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < m; j++) {
      const io = (o * m + j) * inner;
      for (let i = 0; i < inner; i++) out[io + i] = x[(o * n + checkIndex(index[io + i], n)) * inner + i];
    }
  }
}

function scatterAdd(
  g: Float32Array,
  outer: number,
  n: number,
  inner: number,
  index: IndexArray,
  m: number,
  gx: Float32Array,
): void {
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < m; j++) {
      const io = (o * m + j) * inner;
      for (let i = 0; i < inner; i++) gx[(o * n + checkIndex(index[io + i], n)) * inner + i] += g[io + i];
    }
  }
}

function logSoftmax(x: Float32Array, outer: number, n: number, inner: number, out: Float32Array): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let mx = -Infinity;
      for (let j = 0; j < n; j++) mx = Math.max(mx, x[base + j * inner]);
      if (mx === -Infinity) mx = 0;
      let s = 0;
      for (let j = 0; j < n; j++) s += Math.exp(x[base + j * inner] - mx);
      const lse = mx + Math.log(s);
      for (let j = 0; j < n; j++) out[base + j * inner] = x[base + j * inner] - lse;
    }
  }
}

function logSoftmaxGrad(
  y: Float32Array,
  gy: Float32Array,
  outer: number,
  n: number,
  inner: number,
  gx: Float32Array,
): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let s = 0;
      for (let j = 0; j < n; j++) s += gy[base + j * inner];
      for (let j = 0; j < n; j++) {
        const k = base + j * inner;
        gx[k] += gy[k] - Math.exp(y[k]) * s;
      }
    }
  }
}

/** The CPU backend instance. */
export const cpuBackend: Backend = {
  name: "cpu",
  // 1 MiB of the 2 MiB L2 per core of our machines: the packing buffers and the chunk's output need the rest.
  cacheFloats: 256 * 1024,
  unary,
  unaryGrad,
  binary,
  where,
  sumTo,
  reduce,
  gemm,
  gemmRows,
  im2col,
  col2im,
  copyStrided,
  gather,
  scatterAdd,
  logSoftmax,
  logSoftmaxGrad,
  fill: cpuFill,
  adamStep: cpuAdamStep,
  rmspropStep: cpuRmspropStep,
  sgdStep: cpuSgdStep,
  clipGradNorm: cpuClipGradNorm,
};

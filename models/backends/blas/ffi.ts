/**
 * OpenBLAS through `Deno.dlopen`: the symbol table, library lookup and CPU-core selection.
 *
 * Lookup order: `ARCADIA_BLAS` (a path to a CBLAS shared library) → known system paths. A failed load lists every
 * path tried and keeps the first error as `cause`.
 *
 * @module
 */

/** CBLAS enum values (cblas.h). */
export const CBLAS_ROW_MAJOR = 101;
/** `CblasNoTrans`. */
export const CBLAS_NO_TRANS = 111;
/** `CblasTrans`. */
export const CBLAS_TRANS = 112;

/** Symbols used from a CBLAS/OpenBLAS library. OpenBLAS-only extras are optional (absent in reference BLAS). */
export const BLAS_SYMBOLS = {
  // void cblas_sgemm(CBLAS_ORDER order, CBLAS_TRANSPOSE transA, CBLAS_TRANSPOSE transB, blasint M, blasint N,
  //                  blasint K, float alpha, const float *A, blasint lda, const float *B, blasint ldb, float beta,
  //                  float *C, blasint ldc);
  cblas_sgemm: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    result: "void",
  },
  // void cblas_sgemv(CBLAS_ORDER order, CBLAS_TRANSPOSE trans, blasint M, blasint N, float alpha, const float *A,
  //                  blasint lda, const float *X, blasint incX, float beta, float *Y, blasint incY);
  cblas_sgemv: {
    parameters: ["i32", "i32", "i32", "i32", "f32", "buffer", "i32", "buffer", "i32", "f32", "buffer", "i32"],
    result: "void",
  },
  // void openblas_set_num_threads(int num_threads);
  openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
  // int openblas_get_num_threads(void);
  openblas_get_num_threads: { parameters: [], result: "i32", optional: true },
  // char *openblas_get_corename(void);
  openblas_get_corename: { parameters: [], result: "pointer", optional: true },
  // char *openblas_get_config(void);
  openblas_get_config: { parameters: [], result: "pointer", optional: true },
} as const satisfies Deno.ForeignLibraryInterface;

/** An opened BLAS library. */
export type BlasLibrary = Deno.DynamicLibrary<typeof BLAS_SYMBOLS>;

/** System locations tried after `ARCADIA_BLAS`, most specific first. */
export function defaultBlasPaths(): string[] {
  if (Deno.build.os === "darwin") {
    return [
      "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
      "/usr/local/opt/openblas/lib/libopenblas.dylib",
      "/System/Library/Frameworks/Accelerate.framework/Accelerate",
    ];
  }
  if (Deno.build.os === "windows") return ["libopenblas.dll", "openblas.dll"];
  const arch = Deno.build.arch === "aarch64" ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
  return [
    `/usr/lib/${arch}/openblas-pthread/libopenblas.so.0`,
    `/usr/lib/${arch}/libopenblas.so.0`,
    `/usr/lib/${arch}/openblas-openmp/libopenblas.so.0`,
    `/usr/lib/${arch}/libopenblas.so`,
    "/usr/lib64/libopenblas.so.0",
    "/usr/lib/libopenblas.so.0",
    `/usr/lib/${arch}/libblas.so.3`,
  ];
}

/** Result of `openBlas`: the library, the path it came from, and the core type forced before loading (if any). */
export interface OpenedBlas {
  lib: BlasLibrary;
  path: string;
  /** `OPENBLAS_CORETYPE` value we set before `dlopen`, or null if we left detection to OpenBLAS. */
  forcedCore: string | null;
}

/** Options for `openBlas`. */
export interface OpenBlasOptions {
  /** Paths to try instead of `ARCADIA_BLAS` + the defaults. */
  paths?: string[];
  /** Force `OPENBLAS_CORETYPE` selection on (default: on when the variable is unset). */
  pickCore?: boolean;
}

/**
 * The OpenBLAS kernel family this CPU supports, from /proc/cpuinfo flags (Linux x86-64 only), or null.
 * OpenBLAS 0.3.21 (Debian 12) misdetects some virtualised AVX-512 CPUs as "Prescott" (SSE3 kernels, ~5x slower).
 */
export function detectCoreType(): string | null {
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") return null;
  let info: string;
  try {
    info = Deno.readTextFileSync("/proc/cpuinfo");
  } catch {
    return null;
  }
  const flagsLine = info.split("\n").find((l) => l.startsWith("flags"));
  if (!flagsLine) return null;
  const flags = new Set(flagsLine.split(":")[1].trim().split(/\s+/));
  if (flags.has("avx512f") && flags.has("avx512bw") && flags.has("avx512vl")) return "SkylakeX";
  if (flags.has("avx2") && flags.has("fma")) return "Haswell";
  return null;
}

function envGet(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/**
 * Open the first loadable BLAS. Before `dlopen`, when `OPENBLAS_CORETYPE` is unset and the CPU supports AVX-512 or
 * AVX2, sets it to the matching core so OpenBLAS cannot fall back to a generic core; the variable is restored right
 * after loading (OpenBLAS reads it once, in its library constructor). Callers must verify the result with a
 * self-test GEMM, since a wrong forced core cannot be undone in-process.
 */
export function openBlas(options: OpenBlasOptions = {}): OpenedBlas {
  const fromEnv = envGet("ARCADIA_BLAS");
  const paths = options.paths ?? (fromEnv ? [fromEnv] : defaultBlasPaths());
  const userCore = envGet("OPENBLAS_CORETYPE");
  const forcedCore = (options.pickCore ?? true) && userCore === undefined ? detectCoreType() : null;
  const errors: string[] = [];
  let firstError: unknown = undefined;
  for (const path of paths) {
    if (forcedCore) Deno.env.set("OPENBLAS_CORETYPE", forcedCore);
    try {
      const lib = Deno.dlopen(path, BLAS_SYMBOLS);
      pinLibrary(path);
      return { lib, path, forcedCore };
    } catch (err) {
      firstError ??= err;
      errors.push(`  ${path}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      if (forcedCore) Deno.env.delete("OPENBLAS_CORETYPE");
    }
  }
  throw new Error(
    `no BLAS library could be loaded; tried:\n${errors.join("\n")}\n` +
      "Install OpenBLAS (Debian: apt-get install libopenblas0-pthread) or set ARCADIA_BLAS=/path/to/libopenblas.so",
    { cause: firstError },
  );
}

/**
 * Keeps OpenBLAS mapped until the process exits. Each Worker that closes its handle may drop the last reference, and
 * OpenBLAS's unload destructor then shuts its threads down under the same lock as its fork handler: a thread that
 * forks at that moment (spawning a Doom engine, `Deno.Command`) deadlocks with it. Measured: a test run hung in
 * exactly that pair of stacks. `RTLD_NODELETE` through libc's own `dlopen` makes the unload never happen.
 */
function pinLibrary(path: string): void {
  if (Deno.build.os !== "linux") return;
  const RTLD_NOW = 0x2, RTLD_NODELETE = 0x1000;
  try {
    const libc = Deno.dlopen("libc.so.6", { dlopen: { parameters: ["buffer", "i32"], result: "pointer" } });
    libc.symbols.dlopen(new TextEncoder().encode(path + "\0"), RTLD_NOW | RTLD_NODELETE);
    libc.close();
  } catch {
    // Best effort: without the pin, only the unload-during-fork race remains.
  }
}

/** Read a NUL-terminated C string returned by an optional OpenBLAS symbol. */
export function readCString(ptr: Deno.PointerValue | undefined): string | null {
  if (!ptr) return null;
  return Deno.UnsafePointerView.getCString(ptr);
}

/**
 * Arcadia's native kernel library: `kernels.c` compiled on first use into the cache
 * (`<cache>/kernels/<key>/libarcadia_kernels.so`, the key hashing the source, the compiler flags and the CPU's
 * feature flags, since `-march=native` code must not run on another CPU) and opened with `Deno.dlopen`.
 *
 * Lookup order: `ARCADIA_KERNELS_LIB` (a built library) → the cached build → compile with `cc` (`-O3 -march=native`,
 * falling back to `-O3 -mavx2 -mfma`, then plain `-O3`). Concurrent builders are harmless: each compiles to a temp
 * file and renames it into place. `ARCADIA_NO_NATIVE_KERNELS=1` (or any failure: no FFI/run permission, no
 * compiler) leaves the pure-TypeScript kernels in use; `nativeKernelsInfo().note` says why.
 *
 * This folder is self-contained on purpose: `models/` may not import `envs/` (where the env provisioning lives).
 *
 * @module
 */

import { KERNEL_SYMBOLS, type KernelLibrary, KERNELS_ABI } from "./ffi.ts";

// One translation unit: the helper thread, the loops around GEMM, then our AVX-512 GEMM (`#line` keeps compiler
// messages per file).
const SOURCE_URLS = ["./parallel.c", "./kernels.c", "./gemm.c", "./gemm_bf16.c"].map((f) =>
  new URL(f, import.meta.url)
);
const LIB_NAME = "libarcadia_kernels.so";
// No -ffast-math (NaN must propagate) and no FMA contraction (results must round exactly as V8's double math does);
// -fno-trapping-math lets GCC turn branches into blends (we never enable FP exceptions).
const COMMON_FLAGS = [
  "-fno-math-errno",
  "-fno-trapping-math",
  "-ffp-contract=off",
  "-fPIC",
  "-shared",
  "-pthread",
  "-D_GNU_SOURCE",
];
/** Flag sets tried in order: the first that compiles wins. */
// 512-bit vectors where the CPU has them: GCC defaults to 256 on AVX-512 parts, which halves the double-precision
// activations' throughput (they are compute-bound; measured 2x).
const FLAG_LADDER = [["-O3", "-march=native", "-mprefer-vector-width=512"], ["-O3", "-mavx2", "-mfma"], ["-O3"]];

/** Where the native kernels came from, or why they are not used. */
export interface NativeKernelsInfo {
  /** Path of the loaded library, or null when the TypeScript kernels are used. */
  path: string | null;
  /** Compiler flags of the build (empty for `ARCADIA_KERNELS_LIB` or when not loaded). */
  flags: string[];
  /** How it was found or built, or why it is not loaded. */
  note: string;
}

interface State extends NativeKernelsInfo {
  lib: KernelLibrary | null;
}

let state: State | undefined;
let enabled = true;

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

function granted(name: "ffi" | "run"): boolean {
  try {
    return Deno.permissions.querySync({ name }).state === "granted";
  } catch {
    return false;
  }
}

/** The root of Arcadia's cache: `$ARCADIA_CACHE`, else `$XDG_CACHE_HOME/arcadia`, else `~/.cache/arcadia`. */
function cacheRoot(): string {
  const explicit = env("ARCADIA_CACHE");
  if (explicit) return explicit;
  const xdg = env("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/arcadia`;
  const home = env("HOME") ?? env("USERPROFILE");
  if (!home) throw new Error("cannot find a cache directory: set ARCADIA_CACHE (or HOME)");
  return Deno.build.os === "darwin" ? `${home}/Library/Caches/arcadia` : `${home}/.cache/arcadia`;
}

/** 32-bit FNV-1a hash as hex: a cache key, not a security check. */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}

/** The CPU's feature flags (Linux), so a `-march=native` build is never reused on a different CPU. */
function cpuSignature(): string {
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    return info.split("\n").find((l) => l.startsWith("flags")) ?? "";
  } catch {
    return `${Deno.build.os}-${Deno.build.arch}`;
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Compile `source` into the cache unless a build for this key is there; returns the library path and flags. */
function buildCached(source: string): { path: string; flags: string[]; built: boolean } {
  const key = `${fnv1a(source)}-${fnv1a(JSON.stringify([FLAG_LADDER, COMMON_FLAGS]))}-${fnv1a(cpuSignature())}`;
  const dir = `${cacheRoot()}/kernels/${key}-${Deno.build.arch}`;
  const lib = `${dir}/${LIB_NAME}`;
  const stampPath = `${dir}/stamp.json`;
  if (exists(lib)) {
    try {
      return { path: lib, flags: JSON.parse(Deno.readTextFileSync(stampPath)).flags ?? [], built: false };
    } catch {
      return { path: lib, flags: [], built: false };
    }
  }
  if (!granted("run")) throw new Error("not built yet and running the compiler is not permitted (--allow-run)");
  Deno.mkdirSync(dir, { recursive: true });
  const tmp = `${lib}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const src = `${tmp}.c`;
  Deno.writeTextFileSync(src, source);
  const errors: string[] = [];
  try {
    for (const flags of FLAG_LADDER) {
      let out;
      try {
        out = new Deno.Command("cc", { args: [...flags, ...COMMON_FLAGS, "-o", tmp, src], stderr: "piped" })
          .outputSync();
      } catch (err) {
        throw new Error(`cannot run the C compiler 'cc': ${(err as Error).message}`, { cause: err });
      }
      if (out.success) {
        Deno.renameSync(tmp, lib); // atomic: a concurrent builder's identical file may be replaced, never torn
        const stamp = JSON.stringify({ abi: KERNELS_ABI, flags, source: fnv1a(source) });
        const stampTmp = `${stampPath}.tmp-${Deno.pid}`;
        Deno.writeTextFileSync(stampTmp, stamp);
        Deno.renameSync(stampTmp, stampPath);
        return { path: lib, flags, built: true };
      }
      errors.push(
        `cc ${flags.join(" ")}: ${new TextDecoder().decode(out.stderr).trim().split("\n").slice(-5).join("\n")}`,
      );
    }
  } finally {
    try {
      Deno.removeSync(src);
    } catch { /* already gone */ }
  }
  throw new Error(`compiling ${SOURCE_URLS.map((u) => u.pathname).join(" + ")} failed:\n${errors.join("\n")}`);
}

function load(): State {
  const none = (note: string): State => ({ lib: null, path: null, flags: [], note });
  if (env("ARCADIA_NO_NATIVE_KERNELS") === "1") return none("ARCADIA_NO_NATIVE_KERNELS=1");
  if (!granted("ffi")) return none("FFI not permitted (run with --allow-ffi for native kernels)");
  let path: string, flags: string[] = [], note: string;
  try {
    const override = env("ARCADIA_KERNELS_LIB");
    if (override) {
      path = override;
      note = "from ARCADIA_KERNELS_LIB";
    } else {
      if (SOURCE_URLS[0].protocol !== "file:") {
        return none(`kernels.c is not a local file (${SOURCE_URLS[0].protocol})`);
      }
      const source = SOURCE_URLS.map((u) => `#line 1 "${u.pathname}"\n${Deno.readTextFileSync(u)}`).join("\n");
      const built = buildCached(source);
      ({ path, flags } = built);
      note = built.built ? "compiled into the cache" : "cached build";
    }
  } catch (err) {
    return none(`native kernels unavailable: ${(err as Error).message}`);
  }
  let lib: KernelLibrary;
  try {
    lib = Deno.dlopen(path, KERNEL_SYMBOLS);
  } catch (err) {
    return none(`cannot open ${path}: ${(err as Error).message}`);
  }
  const abi = lib.symbols.arc_kernels_abi();
  if (abi !== KERNELS_ABI) {
    lib.close();
    return none(`${path} has kernel ABI ${abi}, these bindings need ${KERNELS_ABI}`);
  }
  return { lib, path, flags, note };
}

/**
 * The native kernel library, or null when it is disabled or unavailable (callers then run the TypeScript kernels).
 * Builds it on first call when needed (~1 s, once per machine).
 */
export function nativeKernels(): KernelLibrary | null {
  if (!enabled) return null;
  return (state ??= load()).lib;
}

/**
 * Turn the native kernels off (or back on) for this process, e.g. to compare against the TypeScript kernels.
 *
 * @example
 * ```ts
 * import { nativeKernels, setNativeKernelsEnabled } from "./native.ts";
 * setNativeKernelsEnabled(false);
 * console.assert(nativeKernels() === null);
 * setNativeKernelsEnabled(true);
 * ```
 */
export function setNativeKernelsEnabled(on: boolean): void {
  enabled = on;
}

let threads = 0;

/**
 * Threads our kernels may use for large work (GEMM, Adam; they use 1 or 2): `setKernelThreads`, else
 * `ARCADIA_BLAS_THREADS`, else `OPENBLAS_NUM_THREADS`, else the core count. Actors should run with 1.
 *
 * @example
 * ```ts
 * import { kernelThreads, setKernelThreads } from "./native.ts";
 * setKernelThreads(1);
 * console.assert(kernelThreads() === 1);
 * ```
 */
export function kernelThreads(): number {
  if (threads === 0) {
    const fromEnv = Number(env("ARCADIA_BLAS_THREADS") ?? env("OPENBLAS_NUM_THREADS") ?? NaN);
    threads = fromEnv >= 1 ? Math.floor(fromEnv) : navigator.hardwareConcurrency ?? 1;
  }
  return threads;
}

/** Set the thread count of `kernelThreads()` (`setBlasThreads` in cpu.ts sets it with BLAS's). */
export function setKernelThreads(count: number): void {
  threads = Math.max(1, Math.floor(count));
}

/**
 * Where the native kernels came from, or why they are not used (loads them on first call).
 *
 * @example
 * ```ts
 * import { nativeKernelsInfo } from "./native.ts";
 * const { path, note } = nativeKernelsInfo();
 * console.log(path ?? "TypeScript kernels", note);
 * ```
 */
export function nativeKernelsInfo(): NativeKernelsInfo {
  const s = state ??= load();
  if (!enabled) return { path: null, flags: [], note: "disabled by setNativeKernelsEnabled(false)" };
  return { path: s.path, flags: s.flags, note: s.note };
}

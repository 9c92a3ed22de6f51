/**
 * Provisioning of the Arcade Learning Environment: one code path for examples, tests and users.
 *
 * `await ensureAle()` makes sure that, in Arcadia's cache (see `cacheRoot()`), there is
 *
 * - `ale-0.12.1-core/`: ALE's C++ sources from the ale-py 0.12.1 sdist, built once with CMake as a static library
 *   (no Python, no SDL);
 * - `ale-0.12.1-<shimhash>/libarcadia_ale.so`: our `shim.cpp` linked with that library into one shared library that
 *   needs only libc and libz (libstdc++ is linked in statically and hidden), and `roms/*.bin`, the ROMs ale-py ships.
 *
 * A stamp with the versions marks a finished build, so later calls return at once. Builds run under a lock, so
 * parallel tests and workers build once. After `ensureAle()`, `aleInstallation()` answers synchronously (env
 * constructors use it, including inside Workers).
 *
 * Overrides: `ARCADIA_ALE_LIB` (a prebuilt `libarcadia_ale.so`) and `ARCADIA_ALE_ROMS` (a directory of `<id>.bin`).
 * Needs: `g++`, `cmake`, `make`, `zlib1g-dev` (installed with apt-get when running as root on Debian/Ubuntu).
 *
 * @module
 */

import { createHash } from "node:crypto";
import {
  buildHash,
  cacheRoot,
  downloadFromPypi,
  ensureSystemPackages,
  exists,
  extractArchive,
  readStamp,
  run,
  say,
  withLock,
  writeFileAtomic,
} from "../_native/provision.ts";
import { ROM_IDS, ROM_MD5 } from "./roms.ts";

/** The ALE (ale-py) version Arcadia builds. */
export const ALE_VERSION = "0.12.1";

/** File name of the shared library (shim + ALE). */
export const ALE_LIBRARY_NAME = "libarcadia_ale.so";

/** Where the provisioned ALE lives. */
export interface AleInstallation {
  /** Path of `libarcadia_ale.so`. */
  library: string;
  /** Directory holding `<rom id>.bin`. */
  roms: string;
}

interface Stamp {
  ale: string;
  shim: string;
  library: string;
  roms: number;
  builtAt: string;
}

interface CoreStamp {
  ale: string;
  flags: string;
  builtAt: string;
}

const SHIM_URL = new URL("./shim.cpp", import.meta.url);
// Part of the shim hash: a change of flags rebuilds.
const CMAKE_FLAGS = [
  "-DCMAKE_BUILD_TYPE=Release",
  "-DBUILD_PYTHON_LIB=OFF",
  "-DBUILD_CPP_LIB=ON",
  "-DSDL_SUPPORT=OFF",
  "-DBUILD_SHARED_LIBS=OFF",
  "-DBUILD_VECTOR_LIB=OFF",
];
const LINK_FLAGS = [
  "-O3",
  "-std=c++17",
  // The shim's area resize must round like the TypeScript one: no fused multiply-adds (the default on aarch64).
  "-ffp-contract=off",
  "-fPIC",
  "-shared",
  "-flto=auto",
  "-static-libstdc++",
  "-static-libgcc",
  "-Wl,--exclude-libs,ALL",
];
const SYSTEM_PACKAGES = [
  { deb: "g++", provides: "/usr/bin/g++" },
  { deb: "cmake", provides: "/usr/bin/cmake" },
  { deb: "make", provides: "/usr/bin/make" },
  { deb: "zlib1g-dev", provides: "/usr/include/zlib.h" },
];

let installed: AleInstallation | undefined;

/**
 * Builds ALE and our shim once (about 1.5 min on 2 cores, then cached) and collects the ROMs; returns where they
 * are. Later calls, in this or any process, return in milliseconds.
 *
 * @example
 * ```ts ignore
 * import { ensureAle } from "./provision.ts";
 * const { library, roms } = await ensureAle();
 * console.log(library, roms);
 * ```
 */
export async function ensureAle(): Promise<AleInstallation> {
  if (installed) return installed;
  const override = overrides();
  const libOverride = override.library, romsOverride = override.roms;
  if (libOverride && romsOverride) return installed = checked({ library: libOverride, roms: romsOverride });

  const source = await shimSource();
  const dir = buildDir(source);
  const ready = validInstallation(dir);
  if (ready) {
    rememberLast(dir);
    return installed = { library: libOverride ?? ready.library, roms: romsOverride ?? ready.roms };
  }
  await withLock(`${dir}.lock`, async () => {
    if (validInstallation(dir)) return; // another process built it while we waited
    await build(dir, source);
  });
  const built = validInstallation(dir);
  if (!built) throw new Error(`ALE build in ${dir} finished without a valid stamp; delete ${dir} and run again`);
  rememberLast(dir);
  return installed = { library: libOverride ?? built.library, roms: romsOverride ?? built.roms };
}

/**
 * Where the provisioned ALE is, synchronously (for env constructors, also inside Workers). Throws, saying to call
 * `ensureAle()` first, when nothing is provisioned yet.
 *
 * @example
 * ```ts ignore
 * import { aleInstallation, ensureAle } from "./provision.ts";
 * await ensureAle();
 * console.log(aleInstallation().library);
 * ```
 */
export function aleInstallation(): AleInstallation {
  if (installed) return installed;
  const override = overrides();
  if (override.library && override.roms) return installed = checked(override as AleInstallation);
  const dir = buildDirSync();
  const ready = dir ? validInstallation(dir) : undefined;
  if (!ready) {
    throw new Error(
      `the Arcade Learning Environment is not provisioned${dir ? ` (no finished build in ${dir})` : ""}: ` +
        "call `await ensureAle()` first (from envs/ale/mod.ts; it builds ALE once into Arcadia's cache), " +
        "or set ARCADIA_ALE_LIB and ARCADIA_ALE_ROMS",
    );
  }
  return installed = { library: override.library ?? ready.library, roms: override.roms ?? ready.roms };
}

/**
 * The path of a ROM by id (e.g. `pong`), checking that the file is there.
 *
 * @example
 * ```ts ignore
 * import { ensureAle, romPath } from "./provision.ts";
 * await ensureAle();
 * console.log(romPath("pong"));
 * ```
 */
export function romPath(id: string, installation: AleInstallation = aleInstallation()): string {
  const path = `${installation.roms}/${id}.bin`;
  if (!exists(path)) {
    const fix = Deno.env.get("ARCADIA_ALE_ROMS")
      ? `put ${id}.bin into ARCADIA_ALE_ROMS (${installation.roms}) or unset ARCADIA_ALE_ROMS`
      : `delete ${installation.roms.replace(/\/roms$/, "")} and call ensureAle() again`;
    throw new Error(`ROM file ${path} is missing: ${fix}`);
  }
  return path;
}

function overrides(): Partial<AleInstallation> {
  return {
    library: Deno.env.get("ARCADIA_ALE_LIB") || undefined,
    roms: Deno.env.get("ARCADIA_ALE_ROMS") || undefined,
  };
}

function checked(inst: AleInstallation): AleInstallation {
  if (!exists(inst.library)) {
    throw new Error(`ARCADIA_ALE_LIB points to ${inst.library}, which does not exist: fix or unset it`);
  }
  if (!exists(inst.roms)) {
    throw new Error(`ARCADIA_ALE_ROMS points to ${inst.roms}, which does not exist: fix or unset it`);
  }
  return inst;
}

async function shimSource(): Promise<string> {
  if (SHIM_URL.protocol === "file:") return Deno.readTextFileSync(SHIM_URL);
  const res = await fetch(SHIM_URL);
  if (!res.ok) throw new Error(`cannot fetch the ALE shim source ${SHIM_URL}: HTTP ${res.status}`);
  return await res.text();
}

function shimHash(source: string): string {
  return buildHash(ALE_VERSION, CMAKE_FLAGS.join(" "), LINK_FLAGS.join(" "), source);
}

function buildDir(source: string): string {
  return `${cacheRoot()}/ale-${ALE_VERSION}-${shimHash(source)}`;
}

const LAST = () => `${cacheRoot()}/ale-${ALE_VERSION}-last.json`;

/** The build directory without async work: from the shim source when it is a local file, else the last one built. */
function buildDirSync(): string | undefined {
  if (SHIM_URL.protocol === "file:") {
    try {
      return buildDir(Deno.readTextFileSync(SHIM_URL));
    } catch { /* fall through */ }
  }
  return readStamp<{ dir: string }>(LAST())?.dir;
}

function rememberLast(dir: string): void {
  if (readStamp<{ dir: string }>(LAST())?.dir === dir) return;
  try {
    writeFileAtomic(LAST(), JSON.stringify({ dir }));
  } catch { /* only a hint for modules imported by URL */ }
}

function validInstallation(dir: string): AleInstallation | undefined {
  const stamp = readStamp<Stamp>(`${dir}/stamp.json`);
  if (!stamp || stamp.ale !== ALE_VERSION || stamp.shim !== dir.slice(dir.lastIndexOf("-") + 1)) return undefined;
  const library = `${dir}/${stamp.library}`, roms = `${dir}/roms`;
  if (!exists(library) || !exists(roms)) return undefined;
  return { library, roms };
}

async function build(dir: string, source: string): Promise<void> {
  if (Deno.build.os !== "linux") {
    throw new Error(
      `building ALE is only automated on Linux; on ${Deno.build.os}, build envs/ale/shim.cpp against ALE ` +
        `${ALE_VERSION} yourself and set ARCADIA_ALE_LIB and ARCADIA_ALE_ROMS`,
    );
  }
  const started = performance.now();
  say(`building the Arcade Learning Environment ${ALE_VERSION} into ${dir} (once)`);
  await ensureSystemPackages(SYSTEM_PACKAGES, "building the Arcade Learning Environment");
  const core = await ensureCore();
  Deno.mkdirSync(dir, { recursive: true });
  const log = `${dir}/build.log`;

  // The shim: compiled and linked with the static ALE into one library that exports only arc_ale_*.
  const shim = `${dir}/shim.cpp`, versionScript = `${dir}/exports.map`;
  Deno.writeTextFileSync(shim, source);
  Deno.writeTextFileSync(versionScript, "{ global: arc_ale_*; local: *; };\n");
  const tmpLib = `${dir}/${ALE_LIBRARY_NAME}.tmp`;
  await run([
    "g++",
    ...LINK_FLAGS,
    `-I${core.src}/src`,
    `-I${core.src}/src/ale`,
    `-I${core.build}/src/ale`,
    shim,
    "-o",
    tmpLib,
    `${core.build}/src/ale/libale.a`,
    "-lz",
    `-Wl,--version-script=${versionScript}`,
  ], { label: "linking the ALE shim", log });
  Deno.renameSync(tmpLib, `${dir}/${ALE_LIBRARY_NAME}`);

  const roms = await collectRoms(core.src, `${dir}/roms`);
  writeFileAtomic(
    `${dir}/stamp.json`,
    JSON.stringify(
      {
        ale: ALE_VERSION,
        shim: dir.slice(dir.lastIndexOf("-") + 1),
        library: ALE_LIBRARY_NAME,
        roms,
        builtAt: new Date().toISOString(),
      } satisfies Stamp,
      null,
      2,
    ),
  );
  say(`ALE ready in ${((performance.now() - started) / 1000).toFixed(1)} s (${roms} ROMs)`);
}

/** The sdist unpacked and ALE's static library built, shared by every shim version. */
async function ensureCore(): Promise<{ src: string; build: string }> {
  const root = `${cacheRoot()}/ale-${ALE_VERSION}-core`;
  const src = `${root}/ale_py-${ALE_VERSION}`, buildPath = `${root}/build`;
  const flags = CMAKE_FLAGS.join(" ");
  const stamp = readStamp<CoreStamp>(`${root}/stamp.json`);
  if (stamp?.ale === ALE_VERSION && stamp.flags === flags && exists(`${buildPath}/src/ale/libale.a`)) {
    return { src, build: buildPath };
  }
  return await withLock(`${root}.lock`, async () => {
    const again = readStamp<CoreStamp>(`${root}/stamp.json`);
    if (again?.ale === ALE_VERSION && again.flags === flags && exists(`${buildPath}/src/ale/libale.a`)) {
      return { src, build: buildPath };
    }
    try {
      Deno.removeSync(root, { recursive: true });
    } catch { /* first build */ }
    Deno.mkdirSync(root, { recursive: true });
    const sdist = await downloadFromPypi({ project: "ale-py", version: ALE_VERSION, kind: "sdist" });
    await extractArchive(sdist, root);
    if (!exists(`${src}/src/ale/ale_interface.hpp`)) {
      throw new Error(`${sdist} does not hold src/ale/ale_interface.hpp; delete it and run again`);
    }
    const log = `${root}/build.log`;
    const jobs = String(navigator.hardwareConcurrency || 2);
    await run(["cmake", "-S", src, "-B", buildPath, ...CMAKE_FLAGS], { label: "configuring ALE (cmake)", log });
    await run(["cmake", "--build", buildPath, "--target", "ale-lib", "-j", jobs], {
      label: `compiling ALE (cmake, ${jobs} jobs, about 1.5 min on 2 cores)`,
      log,
    });
    writeFileAtomic(
      `${root}/stamp.json`,
      JSON.stringify({ ale: ALE_VERSION, flags, builtAt: new Date().toISOString() } satisfies CoreStamp),
    );
    return { src, build: buildPath };
  });
}

/** Copies the ROMs from the sdist (or, if it lacks them, from the wheel) into `dest`; checks their MD5 sums. */
async function collectRoms(src: string, dest: string): Promise<number> {
  Deno.mkdirSync(dest, { recursive: true });
  let from = `${src}/src/ale/python/roms`;
  if (!exists(`${from}/pong.bin`)) {
    const wheel = await downloadFromPypi({ project: "ale-py", version: ALE_VERSION, kind: "wheel" });
    const unpacked = `${dest}.wheel`;
    await extractArchive(wheel, unpacked, { only: (p) => p.startsWith("ale_py/roms/") });
    from = `${unpacked}/ale_py/roms`;
  }
  const bad: string[] = [];
  let count = 0;
  for (const id of ROM_IDS) {
    const file = `${from}/${id}.bin`;
    if (!exists(file)) {
      bad.push(`${id} (missing)`);
      continue;
    }
    const bytes = Deno.readFileSync(file);
    if (createHash("md5").update(bytes).digest("hex") !== ROM_MD5[id]) {
      bad.push(`${id} (MD5 mismatch)`);
      continue;
    }
    writeFileAtomic(`${dest}/${id}.bin`, bytes);
    count++;
  }
  if (bad.length) {
    throw new Error(`ale-py ${ALE_VERSION} ROMs are incomplete: ${bad.join(", ")}; delete ${src} and run again`);
  }
  return count;
}

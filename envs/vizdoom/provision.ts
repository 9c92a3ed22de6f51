/**
 * Provisioning of ViZDoom for Deno: one code path for examples, tests and users, which also works when Arcadia is
 * imported by URL (the shim source is read next to this module through `import.meta.url`).
 *
 * `ensureVizdoom()` (async, once per machine, cached; about 1-2 min the first time, under a second afterwards):
 * 1. Debian packages to build: g++, cmake, make, Boost (filesystem thread system date_time chrono regex iostreams).
 * 2. The vizdoom 1.3.2 wheel from PyPI: the engine binary `vizdoom` (with the libraries it was bundled with),
 *    `vizdoom.pk3`, `freedoom2.wad`, `bots.cfg` and `scenarios/`.
 * 3. The vizdoom 1.3.2 sdist from PyPI: the C++ controller library, built with CMake (`-DBUILD_ENGINE=OFF
 *    -DBUILD_PYTHON=OFF`, static).
 * 4. Our shim (`shim.cpp`) linked with that library into one shared library,
 *    `<cache>/vizdoom-1.3.2-<shim hash>/libarcadia_vizdoom.so` (Boost linked statically when the static Boost
 *    libraries are position-independent, otherwise dynamically), plus the engine launcher built from the same file.
 *
 * Environment overrides: `ARCADIA_VIZDOOM_LIB` (the shim library), `ARCADIA_VIZDOOM_ENGINE` (the engine binary),
 * `ARCADIA_VIZDOOM_SCENARIOS` (a directory of `.cfg`/`.wad` scenarios), `ARCADIA_CACHE` (the cache root).
 *
 * Env constructors are synchronous (Worker vector envs build envs with `make()`), so they use `vizdoomPathsSync()`,
 * which only looks at what `ensureVizdoom()` left in the cache and says to run it when nothing is there.
 *
 * @module
 */

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
  type SystemPackage,
  withLock,
  writeFileAtomic,
} from "../_native/provision.ts";

/** The ViZDoom release the shim is built against; the engine must match it exactly. */
export const VIZDOOM_VERSION = "1.3.2";

/** The Sample Factory release whose Doom scenarios (`.cfg` + `.wad`) the `doom_*` env ids use. */
export const SAMPLE_FACTORY_VERSION = "2.1.1";

/** Where the pieces of a provisioned ViZDoom are. */
export interface VizdoomPaths {
  /** The shim shared library (`libarcadia_vizdoom.so`). */
  library: string;
  /** The launcher that starts the engine with a parent-death signal; empty when the engine is started directly. */
  launcher: string;
  /** The engine binary. */
  engine: string;
  /** Directory of scenario `.cfg`/`.wad` files. */
  scenarios: string;
  /** The free IWAD (`freedoom2.wad`) next to the engine. */
  iwad: string;
  /** Directory of Sample Factory's Doom scenarios (the `doom_*` env ids use them, as Sample Factory does). */
  sampleFactoryScenarios: string;
  /** ViZDoom version. */
  version: string;
}

interface ShimStamp extends VizdoomPaths {
  shimHash: string;
  boost: "static" | "dynamic";
  compiler: string;
  builtAt: string;
}

interface PartStamp {
  version: string;
}

const SHIM_URL = new URL("./shim.cpp", import.meta.url);
/** Compiler flags of the shim; part of the build's hash, so changing them rebuilds. */
const SHIM_FLAGS = ["-std=c++11", "-O3", "-fPIC", "-shared", "-fvisibility=hidden"];
const BOOST_COMPONENTS = ["filesystem", "thread", "system", "date_time", "chrono", "regex", "iostreams"];

/** Options of `ensureVizdoom`. */
export interface EnsureVizdoomOptions {
  /** Rebuild the shim even when the cache holds a valid build. */
  force?: boolean;
}

/**
 * Makes ViZDoom usable from Deno: downloads, builds and caches what is missing (see the module doc), then returns
 * the paths. Fast (< 1 s) when the cache is valid. Concurrent callers (test files, processes) build once.
 *
 * @example
 * ```ts
 * import { ensureVizdoom } from "./provision.ts";
 * const paths = await ensureVizdoom();
 * console.log(paths.library, paths.engine);
 * ```
 */
export async function ensureVizdoom(options: EnsureVizdoomOptions = {}): Promise<VizdoomPaths> {
  assertSupportedPlatform();
  const shim = await readShimSource();
  const hash = shimHash(shim);
  const dir = shimDir(hash);
  if (!options.force) {
    const ready = validStamp(dir, hash);
    if (ready) return applyOverrides(ready);
  }
  return await withLock(`${cacheRoot()}/vizdoom.lock`, async () => {
    if (!options.force) {
      const ready = validStamp(dir, hash);
      if (ready) return applyOverrides(ready);
    }
    const started = performance.now();
    say(`provisioning ViZDoom ${VIZDOOM_VERSION} (first run builds it; later runs use the cache)`);
    await ensureBuildPackages();
    const engine = await ensureEngine();
    const sampleFactoryScenarios = await ensureSampleFactoryScenarios();
    const archive = await ensureControllerLibrary();
    const stamp = await buildShim(shim, hash, dir, archive, { ...engine, sampleFactoryScenarios });
    writeFileAtomic(`${cacheRoot()}/vizdoom-current.json`, JSON.stringify({ dir }, null, 2));
    say(`ViZDoom ready in ${((performance.now() - started) / 1000).toFixed(1)} s: ${stamp.library}`);
    return applyOverrides(stamp);
  });
}

/**
 * The paths of an already provisioned ViZDoom, found synchronously (for env constructors): environment overrides,
 * then the build matching this module's shim, then the latest build. Throws "run ensureVizdoom() first" when the
 * cache has none.
 *
 * @example
 * ```ts
 * import { ensureVizdoom, vizdoomPathsSync } from "./provision.ts";
 * await ensureVizdoom();
 * console.log(vizdoomPathsSync().scenarios);
 * ```
 */
export function vizdoomPathsSync(): VizdoomPaths {
  const env = Deno.env.toObject();
  const candidates: string[] = [];
  if (SHIM_URL.protocol === "file:") {
    try {
      candidates.push(shimDir(shimHash(Deno.readTextFileSync(SHIM_URL))));
    } catch { /* unreadable: fall back to the latest build */ }
  }
  const current = readStamp<{ dir: string }>(`${cacheRoot()}/vizdoom-current.json`);
  if (current?.dir) candidates.push(current.dir);
  for (const dir of candidates) {
    const stamp = readStamp<ShimStamp>(`${dir}/stamp.json`);
    if (stamp && stamp.version === VIZDOOM_VERSION) return applyOverrides(stamp);
  }
  if (env.ARCADIA_VIZDOOM_LIB && env.ARCADIA_VIZDOOM_ENGINE && env.ARCADIA_VIZDOOM_SCENARIOS) {
    const engineDir = env.ARCADIA_VIZDOOM_ENGINE.slice(0, env.ARCADIA_VIZDOOM_ENGINE.lastIndexOf("/"));
    return {
      library: env.ARCADIA_VIZDOOM_LIB,
      launcher: env.ARCADIA_VIZDOOM_LAUNCHER ?? "",
      engine: env.ARCADIA_VIZDOOM_ENGINE,
      scenarios: env.ARCADIA_VIZDOOM_SCENARIOS,
      iwad: `${engineDir}/freedoom2.wad`,
      sampleFactoryScenarios: env.ARCADIA_VIZDOOM_SCENARIOS,
      version: VIZDOOM_VERSION,
    };
  }
  throw new Error(
    `ViZDoom is not provisioned (looked in ${candidates.join(", ") || cacheRoot()}): ` +
      `run \`await ensureVizdoom()\` (from envs/vizdoom/mod.ts) first, once per machine, before constructing ` +
      `Doom envs synchronously; or set ARCADIA_VIZDOOM_LIB, ARCADIA_VIZDOOM_ENGINE and ARCADIA_VIZDOOM_SCENARIOS`,
  );
}

function assertSupportedPlatform(): void {
  if (Deno.build.os !== "linux") {
    throw new Error(
      `ViZDoom provisioning supports Linux only for now (this is ${Deno.build.os}-${Deno.build.arch}); build ` +
        `envs/vizdoom/shim.cpp yourself and set ARCADIA_VIZDOOM_LIB, ARCADIA_VIZDOOM_ENGINE, ARCADIA_VIZDOOM_SCENARIOS`,
    );
  }
}

async function readShimSource(): Promise<string> {
  if (SHIM_URL.protocol === "file:") return await Deno.readTextFile(SHIM_URL);
  const res = await fetch(SHIM_URL);
  if (!res.ok) throw new Error(`cannot fetch the ViZDoom shim source ${SHIM_URL.href}: HTTP ${res.status}`);
  return await res.text();
}

function shimHash(source: string): string {
  return buildHash(SHIM_FLAGS.join(" "), source);
}

function shimDir(hash: string): string {
  return `${cacheRoot()}/vizdoom-${VIZDOOM_VERSION}-${hash}`;
}

function partsDir(): string {
  return `${cacheRoot()}/vizdoom-${VIZDOOM_VERSION}`;
}

function validStamp(dir: string, hash: string): ShimStamp | undefined {
  const stamp = readStamp<ShimStamp>(`${dir}/stamp.json`);
  if (!stamp || stamp.version !== VIZDOOM_VERSION || stamp.shimHash !== hash) return undefined;
  const files = [
    stamp.library,
    stamp.launcher,
    stamp.engine,
    stamp.iwad,
    `${stamp.scenarios}/basic.cfg`,
    `${stamp.sampleFactoryScenarios}/basic.cfg`,
  ];
  return files.every((f) => !f || exists(f)) ? stamp : undefined;
}

function applyOverrides(paths: VizdoomPaths): VizdoomPaths {
  const env = Deno.env.toObject();
  const out = { ...paths };
  if (env.ARCADIA_VIZDOOM_LIB) out.library = env.ARCADIA_VIZDOOM_LIB;
  if (env.ARCADIA_VIZDOOM_ENGINE) out.engine = env.ARCADIA_VIZDOOM_ENGINE;
  if (env.ARCADIA_VIZDOOM_SCENARIOS) out.scenarios = env.ARCADIA_VIZDOOM_SCENARIOS;
  return out;
}

function multiarchLibDir(): string {
  return `/usr/lib/${Deno.build.arch === "x86_64" ? "x86_64" : "aarch64"}-linux-gnu`;
}

async function ensureBuildPackages(): Promise<void> {
  const lib = multiarchLibDir();
  const packages: SystemPackage[] = [
    { deb: "g++", provides: "/usr/bin/g++" },
    { deb: "make", provides: "/usr/bin/make" },
    { deb: "cmake", provides: "/usr/bin/cmake" },
    ...BOOST_COMPONENTS.map((c) => ({
      deb: `libboost-${c.replace("_", "-")}-dev`,
      provides: `${lib}/libboost_${c}.so`,
    })),
  ];
  await ensureSystemPackages(packages, "building the ViZDoom library");
}

interface EnginePaths {
  engine: string;
  iwad: string;
  scenarios: string;
}

/** The engine binary, its data files and the scenarios, from the wheel. */
async function ensureEngine(): Promise<EnginePaths> {
  const root = `${partsDir()}/engine`;
  const paths: EnginePaths = {
    engine: `${root}/vizdoom/vizdoom`,
    iwad: `${root}/vizdoom/freedoom2.wad`,
    scenarios: `${root}/vizdoom/scenarios`,
  };
  const stamp = readStamp<PartStamp>(`${root}/stamp.json`);
  if (stamp?.version === VIZDOOM_VERSION && exists(paths.engine) && exists(`${paths.scenarios}/basic.cfg`)) {
    return paths;
  }
  const wheel = await downloadFromPypi({ project: "vizdoom", version: VIZDOOM_VERSION, kind: "wheel" });
  try {
    Deno.removeSync(root, { recursive: true });
  } catch { /* absent */ }
  say("unpacking the ViZDoom engine, its data files and scenarios from the wheel");
  await extractArchive(wheel, root, {
    only: (p) =>
      p === "vizdoom/vizdoom" || p === "vizdoom/vizdoom.pk3" || p === "vizdoom/freedoom2.wad" ||
      p === "vizdoom/bots.cfg" || p.startsWith("vizdoom/scenarios/") ||
      // The engine's RPATH is $ORIGIN/../vizdoom.libs: SDL2 and Boost come bundled with it.
      /^vizdoom\.libs\/lib(SDL2|boost)/.test(p),
  });
  Deno.chmodSync(paths.engine, 0o755);
  const ldd = await run(["ldd", paths.engine]).catch((e) => String(e));
  const missing = ldd.split("\n").filter((l) => l.includes("not found")).map((l) => l.trim().split(" ")[0]);
  if (missing.length) {
    throw new Error(
      `the ViZDoom engine ${paths.engine} cannot find the libraries ${missing.join(", ")}; ` +
        `install them (e.g. apt-get install -y libsdl2-2.0-0) or delete ${root} and run ensureVizdoom() again`,
    );
  }
  writeFileAtomic(`${root}/stamp.json`, JSON.stringify({ version: VIZDOOM_VERSION }));
  return paths;
}

/** Sample Factory's Doom scenarios, from its sdist (they differ from ViZDoom's own: rewards, buttons, maps). */
async function ensureSampleFactoryScenarios(): Promise<string> {
  const root = `${partsDir()}/sample_factory`;
  const dir = `${root}/scenarios`;
  const stamp = readStamp<PartStamp>(`${root}/stamp.json`);
  if (stamp?.version === SAMPLE_FACTORY_VERSION && exists(`${dir}/basic.cfg`)) return dir;
  const sdist = await downloadFromPypi({ project: "sample-factory", version: SAMPLE_FACTORY_VERSION, kind: "sdist" });
  try {
    Deno.removeSync(root, { recursive: true });
  } catch { /* absent */ }
  Deno.mkdirSync(root, { recursive: true });
  const member = `sample-factory-${SAMPLE_FACTORY_VERSION}/sf_examples/vizdoom/doom/scenarios`;
  await run(["tar", "-xzf", sdist, "-C", root, member], { label: "unpacking Sample Factory's Doom scenarios" });
  Deno.renameSync(`${root}/${member}`, dir);
  Deno.removeSync(`${root}/sample-factory-${SAMPLE_FACTORY_VERSION}`, { recursive: true });
  writeFileAtomic(`${root}/stamp.json`, JSON.stringify({ version: SAMPLE_FACTORY_VERSION }));
  return dir;
}

interface ControllerLibrary {
  archive: string;
  include: string[];
}

/** ViZDoom's C++ controller library (static), built from the sdist with CMake. */
async function ensureControllerLibrary(): Promise<ControllerLibrary> {
  const root = `${partsDir()}/controller`;
  const src = `${root}/src/vizdoom-${VIZDOOM_VERSION}`;
  const build = `${root}/build`;
  const out: ControllerLibrary = {
    archive: `${build}/bin/libvizdoom.a`,
    include: [`${src}/include`, `${src}/src/lib`],
  };
  const stamp = readStamp<PartStamp>(`${root}/stamp.json`);
  if (stamp?.version === VIZDOOM_VERSION && exists(out.archive) && exists(`${src}/src/lib/ViZDoomVersion.h`)) {
    return out;
  }
  const sdist = await downloadFromPypi({ project: "vizdoom", version: VIZDOOM_VERSION, kind: "sdist" });
  try {
    Deno.removeSync(root, { recursive: true });
  } catch { /* absent */ }
  Deno.mkdirSync(build, { recursive: true });
  await extractArchive(sdist, `${root}/src`);
  const log = `${root}/build.log`;
  await run([
    "cmake",
    "-S",
    src,
    "-B",
    build,
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_ENGINE=OFF",
    "-DBUILD_PYTHON=OFF",
    "-DCMAKE_POSITION_INDEPENDENT_CODE=ON",
  ], { label: "configuring the ViZDoom library (CMake)", log });
  await run(
    ["cmake", "--build", build, "--target", "libvizdoom_static", "-j", String(navigator.hardwareConcurrency || 2)],
    { label: "building the ViZDoom library (about a minute)", log },
  );
  writeFileAtomic(`${root}/stamp.json`, JSON.stringify({ version: VIZDOOM_VERSION }));
  return out;
}

/** Compiles shim.cpp into the shared library (and the launcher) in a fresh directory, stamp written last. */
async function buildShim(
  shim: string,
  hash: string,
  dir: string,
  lib: ControllerLibrary,
  engine: EnginePaths & { sampleFactoryScenarios: string },
): Promise<ShimStamp> {
  const tmp = `${dir}.tmp-${Deno.pid}`;
  try {
    Deno.removeSync(tmp, { recursive: true });
  } catch { /* absent */ }
  Deno.mkdirSync(tmp, { recursive: true });
  const source = `${tmp}/shim.cpp`;
  Deno.writeTextFileSync(source, shim);
  const log = `${tmp}/build.log`;
  const includes = lib.include.flatMap((i) => ["-I", i]);
  const object = `${tmp}/shim.o`;
  await run(["g++", ...SHIM_FLAGS.filter((f) => f !== "-shared"), ...includes, "-c", source, "-o", object], {
    label: "compiling the ViZDoom shim",
    log,
  });
  const link = ["g++", "-shared", object, lib.archive];
  const tail = [
    "-lpthread",
    "-lrt",
    "-static-libstdc++",
    "-static-libgcc",
    "-Wl,--exclude-libs,ALL",
    "-Wl,--no-undefined",
  ];
  const boostLibs = BOOST_COMPONENTS.map((c) => `-lboost_${c}`);
  const output = `${tmp}/libarcadia_vizdoom.so`;
  let boost: "static" | "dynamic" = "static";
  try {
    // Debian's static Boost archives are not position-independent; then this fails and Boost is linked dynamically.
    const statics = ["-Wl,-Bstatic", ...boostLibs, "-lboost_atomic", "-Wl,-Bdynamic"];
    await run([...link, ...statics, ...tail, "-o", output], { label: "linking (Boost static)", log });
  } catch {
    boost = "dynamic";
    await run([...link, ...boostLibs, ...tail, "-o", output], { label: "linking (Boost dynamic)", log });
  }
  const launcher = `${tmp}/arcadia_vizdoom_launcher`;
  await run(["g++", "-O2", "-DARCADIA_VIZDOOM_LAUNCHER", source, "-o", launcher], {
    label: "compiling the engine launcher",
    log,
  });
  const compiler = (await run(["g++", "--version"])).split("\n")[0];
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch { /* absent */ }
  Deno.renameSync(tmp, dir);
  const stamp: ShimStamp = {
    library: `${dir}/libarcadia_vizdoom.so`,
    launcher: `${dir}/arcadia_vizdoom_launcher`,
    engine: engine.engine,
    scenarios: engine.scenarios,
    iwad: engine.iwad,
    sampleFactoryScenarios: engine.sampleFactoryScenarios,
    version: VIZDOOM_VERSION,
    shimHash: hash,
    boost,
    compiler,
    builtAt: new Date().toISOString(),
  };
  writeFileAtomic(`${dir}/stamp.json`, JSON.stringify(stamp, null, 2));
  return stamp;
}

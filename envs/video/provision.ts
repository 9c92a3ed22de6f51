/**
 * Provisioning of the H.264 encoder: Debian's libx264 plus our `shim.c`, compiled once into the cache
 * (`<cache>/video/<key>/libarcadia_video.so`, the key hashing the shim source and `X264_BUILD`) and loaded with
 * `Deno.dlopen`.
 *
 * Lookup order: `$ARCADIA_VIDEO_LIB` → the cached build. `ensureVideoEncoder()` installs the Debian packages when
 * running as root and builds under a lock; `loadVideoLibrary()` (synchronous, used by `Mp4Writer`) also builds on
 * first use when the compiler and headers are already there, so a plain script needs no set-up call.
 *
 * @module
 */

import {
  buildHash,
  cacheRoot,
  ensureSystemPackages,
  exists,
  type LibraryCandidate,
  openLibrary,
  readStamp,
  run,
  say,
  type SystemPackage,
  withLock,
  writeFileAtomic,
} from "../_native/provision.ts";
import { VIDEO_SHIM_ABI, type VideoLibrary, videoSymbols } from "./ffi.ts";

/** Debian packages the encoder needs to build (the runtime needs only `libx264-164`, pulled in by `libx264-dev`). */
export const VIDEO_PACKAGES: SystemPackage[] = [
  { deb: "libx264-dev", provides: "/usr/include/x264.h" },
  { deb: "gcc", provides: "/usr/bin/cc" },
  { deb: "libc6-dev", provides: "/usr/include/stdio.h" },
];

const INSTALL_HINT = `Install the encoder with: sudo apt-get install -y ${VIDEO_PACKAGES.map((p) => p.deb).join(" ")}` +
  " (or call `await ensureVideoEncoder()`, which installs them when running as root)," +
  " or point ARCADIA_VIDEO_LIB at a built libarcadia_video.so.";

const SHIM_URL = new URL("./shim.c", import.meta.url);
const LIB_NAME = "libarcadia_video.so";

interface Stamp {
  abi: number;
  x264Build: number;
  source: string;
}

let provisioned: string | undefined;
let loaded: VideoLibrary | undefined;

/**
 * Installs libx264's development files when missing (as root; otherwise throws with the command) and builds the
 * shim into the cache unless a valid build is there. Returns the library path. Safe to call concurrently from
 * several processes.
 *
 * @example
 * ```ts
 * import { ensureVideoEncoder } from "./provision.ts";
 * const path = await ensureVideoEncoder();
 * console.assert(path.endsWith(".so"));
 * ```
 */
export async function ensureVideoEncoder(): Promise<string> {
  const override = Deno.env.get("ARCADIA_VIDEO_LIB");
  if (override) return override;
  await ensureSystemPackages(VIDEO_PACKAGES, "H.264 video recording");
  const source = SHIM_URL.protocol === "file:" ? Deno.readTextFileSync(SHIM_URL) : await (await fetch(SHIM_URL)).text();
  const { dir, lib, stamp } = buildPaths(source);
  if (!stampValid(dir, stamp)) {
    await withLock(`${cacheRoot()}/video.lock`, async () => {
      if (stampValid(dir, stamp)) return;
      Deno.mkdirSync(dir, { recursive: true });
      Deno.writeTextFileSync(`${dir}/shim.c`, source);
      const tmp = `${lib}.tmp-${Deno.pid}`;
      await run(compileCommand(`${dir}/shim.c`, tmp), {
        label: "compiling the H.264 encoder shim",
        log: `${dir}/build.log`,
      });
      Deno.renameSync(tmp, lib);
      writeFileAtomic(`${dir}/stamp.json`, JSON.stringify(stamp));
    });
  }
  provisioned = lib;
  return lib;
}

/**
 * Opens the encoder library (once per process). Builds the shim synchronously on first use when `cc` and
 * `x264.h` are present; otherwise throws with the install command.
 *
 * @example
 * ```ts
 * import { loadVideoLibrary } from "./provision.ts";
 * const lib = loadVideoLibrary();
 * console.assert(lib.symbols.arc_video_abi() === 1);
 * ```
 */
export function loadVideoLibrary(): VideoLibrary {
  if (loaded) return loaded;
  const candidates: LibraryCandidate[] = [];
  const override = Deno.env.get("ARCADIA_VIDEO_LIB");
  if (override) candidates.push({ path: override, from: "ARCADIA_VIDEO_LIB" });
  else if (provisioned) candidates.push({ path: provisioned, from: "ensureVideoEncoder()" });
  else candidates.push({ path: buildSync(), from: "cache" });
  const { lib, path } = openLibrary("the H.264 encoder shim", candidates, videoSymbols, INSTALL_HINT);
  const abi = lib.symbols.arc_video_abi();
  if (abi !== VIDEO_SHIM_ABI) {
    lib.close();
    throw new Error(`${path} has shim ABI ${abi}, these bindings need ${VIDEO_SHIM_ABI}: rebuild it (${INSTALL_HINT})`);
  }
  loaded = lib;
  return lib;
}

/** Builds the shim without a lock (compile to a temp file, then rename: concurrent builders are harmless). */
function buildSync(): string {
  if (SHIM_URL.protocol !== "file:") {
    throw new Error(`the H.264 encoder shim is not built yet: call \`await ensureVideoEncoder()\` first`);
  }
  const source = Deno.readTextFileSync(SHIM_URL);
  const { dir, lib, stamp } = buildPaths(source);
  if (stampValid(dir, stamp)) return lib;
  const missing = VIDEO_PACKAGES.filter((p) => !exists(p.provides)).map((p) => p.deb);
  if (missing.length > 0) {
    throw new Error(
      `H.264 video recording needs system packages that are missing: ${missing.join(", ")}.\n${INSTALL_HINT}`,
    );
  }
  Deno.mkdirSync(dir, { recursive: true });
  const tmp = `${lib}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const src = `${tmp}.c`;
  Deno.writeTextFileSync(src, source);
  say("compiling the H.264 encoder shim...");
  const [cmd, ...args] = compileCommand(src, tmp);
  const out = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).outputSync();
  Deno.removeSync(src);
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr).trimEnd().split("\n").slice(-20).join("\n");
    throw new Error(`compiling ${SHIM_URL.pathname} failed (exit ${out.code}):\n${text}\n${INSTALL_HINT}`);
  }
  Deno.renameSync(tmp, lib);
  writeFileAtomic(`${dir}/stamp.json`, JSON.stringify(stamp));
  return lib;
}

function compileCommand(src: string, out: string): string[] {
  return ["cc", "-O2", "-shared", "-fPIC", "-o", out, src, "-lx264"];
}

function buildPaths(source: string): { dir: string; lib: string; stamp: Stamp } {
  const x264Build = readX264Build();
  const key = `${buildHash(source)}-x264-${x264Build}-${Deno.build.arch}`;
  const dir = `${cacheRoot()}/video/${key}`;
  return { dir, lib: `${dir}/${LIB_NAME}`, stamp: { abi: VIDEO_SHIM_ABI, x264Build, source: buildHash(source) } };
}

function stampValid(dir: string, want: Stamp): boolean {
  const have = readStamp<Stamp>(`${dir}/stamp.json`);
  return !!have && have.abi === want.abi && have.x264Build === want.x264Build && have.source === want.source &&
    exists(`${dir}/${LIB_NAME}`);
}

/** `X264_BUILD` of the installed headers (0 when absent: the build then fails with the install hint). */
function readX264Build(): number {
  try {
    const match = /#define\s+X264_BUILD\s+(\d+)/.exec(Deno.readTextFileSync("/usr/include/x264.h"));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

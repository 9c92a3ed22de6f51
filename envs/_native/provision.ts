/**
 * Set-up-time provisioning shared by the native envs (ALE, ViZDoom): a per-user cache, downloads from PyPI with
 * hash checks, archive extraction, Debian packages, builds with logged output, and a cross-process lock so parallel
 * tests and workers build once. Nothing here runs per step.
 *
 * Cache location: `$ARCADIA_CACHE`, else `$XDG_CACHE_HOME/arcadia`, else `~/.cache/arcadia` (macOS:
 * `~/Library/Caches/arcadia`).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { unzipSync } from "npm:fflate@0.8.2";

/** The root of Arcadia's cache for downloads and native builds. */
export function cacheRoot(): string {
  const env = Deno.env.toObject();
  if (env.ARCADIA_CACHE) return env.ARCADIA_CACHE;
  if (env.XDG_CACHE_HOME) return `${env.XDG_CACHE_HOME}/arcadia`;
  const home = env.HOME ?? env.USERPROFILE;
  if (!home) throw new Error("cannot find a cache directory: set ARCADIA_CACHE (or HOME)");
  return Deno.build.os === "darwin" ? `${home}/Library/Caches/arcadia` : `${home}/.cache/arcadia`;
}

/**
 * A cache key for a native build: the first 12 hex digits of the SHA-256 of `parts` (versions, flags, sources) joined
 * by newlines, so any change to one of them selects a fresh build directory.
 */
export function buildHash(...parts: string[]): string {
  return createHash("sha256").update(parts.join("\n")).digest("hex").slice(0, 12);
}

/** Prints one provisioning step to stderr (a progress display for long set-up work). */
export function say(message: string): void {
  if (Deno.env.get("ARCADIA_QUIET") !== "1") console.error(`[arcadia] ${message}`);
}

/** Whether a path exists. */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Writes a file atomically: temp file in the same directory, fsync, rename. */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const file = Deno.openSync(tmp, { write: true, create: true, truncate: true });
  try {
    let off = 0;
    while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
    file.syncSync();
  } finally {
    file.close();
  }
  Deno.renameSync(tmp, path);
}

/**
 * Runs `fn` while holding an exclusive lock on `path` (a lock file created with `createNew`), so concurrent test
 * processes and workers provision once. A lock left by a dead process is broken.
 */
export async function withLock<T>(
  path: string,
  fn: () => Promise<T>,
  options: { timeoutMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 20 * 60_000);
  Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")) || ".", { recursive: true });
  let waited = false;
  while (true) {
    try {
      const f = Deno.openSync(path, { write: true, createNew: true });
      f.writeSync(new TextEncoder().encode(String(Deno.pid)));
      f.close();
      break;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      const owner = Number(readText(path));
      if (owner > 0 && !processAlive(owner)) {
        Deno.removeSync(path);
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for the lock ${path} (held by pid ${owner})`);
      if (!waited) say(`waiting for another process (pid ${owner}) to finish provisioning`);
      waited = true;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    try {
      Deno.removeSync(path);
    } catch { /* already gone */ }
  }
}

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

function processAlive(pid: number): boolean {
  if (Deno.build.os !== "linux") return true; // no cheap check: rely on the timeout
  return exists(`/proc/${pid}`);
}

/** One file of a PyPI release. */
export interface PypiFile {
  filename: string;
  url: string;
  sha256: string;
}

/** What to download from PyPI. */
export interface PypiRequest {
  /** Project name, e.g. `vizdoom`. */
  project: string;
  /** Exact version, e.g. `1.3.2`. */
  version: string;
  /** `sdist` (C++ sources) or `wheel` (prebuilt engine, data files, ROMs) for this platform. */
  kind: "sdist" | "wheel";
}

/** Picks the release file for this machine from PyPI's JSON API. */
export async function pypiFile(req: PypiRequest): Promise<PypiFile> {
  const index = Deno.env.get("ARCADIA_PYPI_URL") ?? "https://pypi.org/pypi";
  const url = `${index}/${req.project}/json`;
  type Release = { filename: string; url: string; packagetype: string; digests: { sha256: string } }[];
  let releases: Record<string, Release>;
  try {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    releases = (await res.json()).releases;
  } catch (e) {
    throw new Error(`cannot read ${url} (${(e as Error).message}); check the network or set ARCADIA_PYPI_URL`, {
      cause: e,
    });
  }
  const all = releases[req.version];
  if (!all) throw new Error(`PyPI has no release ${req.version} of ${req.project}`);
  const files = all.filter((f) => f.packagetype === (req.kind === "sdist" ? "sdist" : "bdist_wheel"));
  const tags = wheelPlatformTags();
  const pick = req.kind === "sdist" ? files[0] : files
    .filter((f) => tags.some((t) => f.filename.includes(t)))
    // Any Python tag of the right platform will do: wheels only supply the engine binary and data files here.
    .sort((a, b) => b.filename.localeCompare(a.filename))[0];
  if (!pick) {
    throw new Error(
      `PyPI has no ${req.kind} of ${req.project} ${req.version} for ${Deno.build.os}-${Deno.build.arch}` +
        ` (files: ${all.map((f) => f.filename).join(", ")})`,
    );
  }
  // Mirrors may answer with URLs relative to the JSON document.
  return { filename: pick.filename, url: new URL(pick.url, url).href, sha256: pick.digests.sha256 };
}

function wheelPlatformTags(): string[] {
  const { os, arch } = Deno.build;
  if (os === "linux") return arch === "x86_64" ? ["manylinux_2_28_x86_64"] : ["manylinux_2_28_aarch64"];
  if (os === "darwin") return arch === "aarch64" ? ["arm64", "universal2"] : ["x86_64", "universal2"];
  return ["win_amd64"];
}

/** Downloads a PyPI release file into `<cache>/downloads` (once; the sha256 is checked) and returns its path. */
export async function downloadFromPypi(req: PypiRequest): Promise<string> {
  const dir = `${cacheRoot()}/downloads`;
  Deno.mkdirSync(dir, { recursive: true });
  const file = await pypiFile(req);
  const dest = `${dir}/${file.filename}`;
  if (exists(dest) && (await sha256File(dest)) === file.sha256) return dest;
  say(`downloading ${file.filename}`);
  const started = performance.now();
  const res = await fetch(file.url);
  if (!res.ok || !res.body) throw new Error(`download of ${file.url} failed: HTTP ${res.status}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const digest = await sha256(bytes);
  if (digest !== file.sha256) {
    throw new Error(`download of ${file.filename} is corrupt: sha256 ${digest}, PyPI says ${file.sha256}; run again`);
  }
  writeFileAtomic(dest, bytes);
  say(`downloaded ${(bytes.length / 1e6).toFixed(1)} MB in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return dest;
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256File(path: string): Promise<string> {
  return await sha256(await Deno.readFile(path));
}

/**
 * Extracts a wheel (zip) or an sdist (`.tar.gz`) into `dest`. With `only`, extracts just the zip members whose
 * path passes the filter (wheels carry much we don't need).
 */
export async function extractArchive(
  archive: string,
  dest: string,
  options: { only?: (path: string) => boolean } = {},
): Promise<void> {
  Deno.mkdirSync(dest, { recursive: true });
  if (archive.endsWith(".tar.gz")) {
    await run(["tar", "-xzf", archive, "-C", dest], { label: `unpacking ${basename(archive)}` });
    return;
  }
  const only = options.only ?? (() => true);
  const files = unzipSync(await Deno.readFile(archive), { filter: (f) => only(f.name) });
  for (const [name, data] of Object.entries(files)) {
    if (name.endsWith("/")) continue;
    const path = `${dest}/${name}`;
    Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    Deno.writeFileSync(path, data);
  }
}

/** Basename of a path. */
export function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** Options of `run`. */
export interface RunOptions {
  /** Working directory. */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** What the step does, for the progress display. */
  label?: string;
  /** File that receives stdout and stderr (kept for diagnosis). */
  log?: string;
}

/** Runs a command; on failure throws with the command, the exit code and the tail of its output. */
export async function run(cmd: string[], options: RunOptions = {}): Promise<string> {
  if (options.label) say(`${options.label}...`);
  const started = performance.now();
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      cwd: options.cwd,
      env: options.env,
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    throw new Error(`cannot run ${cmd[0]}: ${(e as Error).message}`, { cause: e });
  }
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (options.log) Deno.writeTextFileSync(options.log, `$ ${cmd.join(" ")}\n${text}\n`, { append: true });
  if (!out.success) {
    const tail = text.trimEnd().split("\n").slice(-25).join("\n");
    throw new Error(
      `command failed (exit ${out.code}): ${cmd.join(" ")}\n${tail}` +
        (options.log ? `\n(full log: ${options.log})` : ""),
    );
  }
  if (options.label) say(`${options.label}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return text;
}

/** A Debian package and a file whose presence shows it is installed. */
export interface SystemPackage {
  /** Debian package name. */
  deb: string;
  /** A path (glob-free) the package provides; checked instead of asking dpkg. */
  provides: string;
}

/**
 * Makes sure Debian packages are installed: installs the missing ones with apt-get when running as root on a
 * Debian-like system, otherwise throws with the exact command to run.
 */
export async function ensureSystemPackages(packages: SystemPackage[], purpose: string): Promise<void> {
  const missing = packages.filter((p) => !exists(p.provides));
  if (missing.length === 0) return;
  const names = missing.map((p) => p.deb);
  const command = `apt-get install -y ${names.join(" ")}`;
  const isRoot = Deno.uid?.() === 0;
  if (!isRoot || !exists("/usr/bin/apt-get") || Deno.env.get("ARCADIA_NO_APT") === "1") {
    throw new Error(
      `${purpose} needs system packages that are missing: ${names.join(", ")}.\n` +
        `Install them with: sudo ${command}` + (exists("/usr/bin/apt-get") ? "" : " (or your system's equivalent)"),
    );
  }
  await withLock(`${cacheRoot()}/apt.lock`, async () => {
    const env = { DEBIAN_FRONTEND: "noninteractive" };
    try {
      await run(["apt-get", "install", "-y", "-q", ...names], { env, label: `apt-get install ${names.join(" ")}` });
    } catch {
      await run(["apt-get", "update", "-q"], { env, label: "apt-get update" });
      await run(["apt-get", "install", "-y", "-q", ...names], { env, label: `apt-get install ${names.join(" ")}` });
    }
  });
}

/** A set of candidate paths for a native library, in lookup order, with where each came from. */
export interface LibraryCandidate {
  path: string;
  from: string;
}

/**
 * Opens the first candidate library that loads. On failure the error lists every path tried and why, and keeps
 * the original errors as `cause`.
 */
export function openLibrary<S extends Deno.ForeignLibraryInterface>(
  name: string,
  candidates: LibraryCandidate[],
  symbols: S,
  hint: string,
): { lib: Deno.DynamicLibrary<S>; path: string } {
  const errors: Error[] = [];
  const tried: string[] = [];
  for (const c of candidates) {
    if (!exists(c.path)) {
      tried.push(`  ${c.path} (${c.from}): not found`);
      continue;
    }
    try {
      return { lib: Deno.dlopen(c.path, symbols), path: c.path };
    } catch (e) {
      errors.push(e as Error);
      tried.push(`  ${c.path} (${c.from}): ${(e as Error).message}`);
    }
  }
  throw new Error(`cannot load ${name}; tried:\n${tried.join("\n")}\n${hint}`, { cause: errors.at(-1) });
}

/** Reads a JSON stamp file (versions of a provisioned build), or undefined when absent or unreadable. */
export function readStamp<T>(path: string): T | undefined {
  try {
    return JSON.parse(Deno.readTextFileSync(path)) as T;
  } catch {
    return undefined;
  }
}

/**
 * Test-suite set-up, run by `deno task test` before `deno test`: everything a fresh machine needs for the whole
 * suite, installed by the project's own code and cached, so the one test command works on a new machine.
 *
 * - Debian packages: OpenBLAS (CPU backend), Mesa's lavapipe (WebGPU on CPU), x264 + ffmpeg (videos, ffprobe checks).
 * - A Python venv in the cache with the reference packages the cross-checks read our files with (safetensors,
 *   numpy, tensorboard). The tests find it through `tests/_python.ts`.
 * - The native envs (ALE, ViZDoom), provisioned once here so parallel test files don't queue on the build lock.
 *
 * @module
 */

import { cacheRoot, ensureSystemPackages, exists, run, say, withLock } from "../envs/_native/provision.ts";
import { ensureVideoEncoder, VIDEO_PACKAGES } from "../envs/video/provision.ts";
import { pythonPath } from "./_python.ts";

const PYTHON_PACKAGES = ["numpy==2.3.4", "safetensors==0.6.2", "tensorboard==2.20.0"];

async function setupSystem(): Promise<void> {
  await ensureSystemPackages([
    { deb: "libopenblas0-pthread", provides: "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0" },
    { deb: "mesa-vulkan-drivers", provides: "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json" },
    { deb: "ffmpeg", provides: "/usr/bin/ffprobe" },
    ...VIDEO_PACKAGES,
  ], "the test suite");
  await ensureVideoEncoder();
}

async function setupPython(): Promise<void> {
  const venv = `${cacheRoot()}/test-python`;
  const stamp = `${venv}/arcadia-packages.txt`;
  const want = PYTHON_PACKAGES.join("\n");
  if (exists(stamp) && Deno.readTextFileSync(stamp) === want) return;
  await withLock(`${cacheRoot()}/test-python.lock`, async () => {
    if (!exists(pythonPath())) await run(["python3", "-m", "venv", venv], { label: "creating the test Python venv" });
    await run([pythonPath(), "-m", "pip", "install", "-q", ...PYTHON_PACKAGES], {
      label: `pip install ${PYTHON_PACKAGES.join(" ")}`,
    });
    Deno.writeTextFileSync(stamp, want);
  });
}

async function setupNativeEnvs(): Promise<void> {
  // Imported lazily so a broken native build reports itself here with its own message.
  for (
    const [name, url, fn] of [
      ["ALE", "../envs/ale/provision.ts", "ensureAle"],
      ["ViZDoom", "../envs/vizdoom/provision.ts", "ensureVizdoom"],
    ] as const
  ) {
    const started = performance.now();
    const mod = await import(new URL(url, import.meta.url).href).catch(() => undefined);
    if (!mod || typeof mod[fn] !== "function") continue;
    await mod[fn]();
    say(`${name} ready in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
}

if (import.meta.main) {
  const started = performance.now();
  await setupSystem();
  await setupPython();
  await setupNativeEnvs();
  say(`test set-up done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

/**
 * The Python interpreter of the test venv (made by `tests/setup.ts`), used only by cross-check tests that read our
 * files with the reference Python packages (safetensors, tensorboard).
 *
 * @module
 */

import { cacheRoot, exists } from "../envs/_native/provision.ts";

/** Path of the test venv's python. */
export function pythonPath(): string {
  return `${cacheRoot()}/test-python/bin/python`;
}

/** Runs a Python snippet in the test venv and returns its stdout; throws with stderr on failure. */
export async function runPython(code: string, args: string[] = []): Promise<string> {
  const python = pythonPath();
  if (!exists(python)) {
    throw new Error(`the test Python venv is missing (${python}); run \`deno run -A tests/setup.ts\` first`);
  }
  const out = await new Deno.Command(python, { args: ["-c", code, ...args], stdout: "piped", stderr: "piped" })
    .output();
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`python failed (exit ${out.code}):\n${stderr}`);
  return new TextDecoder().decode(out.stdout);
}

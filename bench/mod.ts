/**
 * `deno task bench`: runs every benchmark script in one go, each in its own process (so one's BLAS threads or
 * Workers don't disturb the next), and prints their lines under a header. Each script measures its own reference
 * in the same run and prints the ratio against it.
 *
 * ```sh
 * deno task bench                      # all of them
 * deno task bench --only models,ale    # a subset
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";

/** The benchmark scripts, in the order they run. */
const BENCHES = ["models", "vector", "ale", "vizdoom", "webgpu"] as const;

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { only: { type: "string" }, help: { type: "boolean", short: "h" } },
    strict: true,
  });
  if (values.help) {
    console.log(`Usage: deno task bench [--only ${BENCHES.join(",")}]`);
    return 0;
  }
  const only = values.only?.split(",").map((s) => s.trim()).filter(Boolean);
  const unknown = only?.filter((n) => !(BENCHES as readonly string[]).includes(n)) ?? [];
  if (unknown.length) {
    console.error(`--only: unknown benchmark ${unknown.join(", ")}; valid: ${BENCHES.join(", ")}`);
    return 2;
  }
  let failed = 0;
  for (const name of BENCHES) {
    if (only && !only.includes(name)) continue;
    const script = new URL(`./${name}_bench.ts`, import.meta.url);
    try {
      Deno.statSync(script);
    } catch {
      continue;
    }
    console.log(`\n=== ${name} (${new URL(script).pathname}) ===`);
    const { code } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script.href],
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (code !== 0) {
      console.log(`=== ${name}: exited with code ${code} ===`);
      failed++;
    }
  }
  return failed ? 1 : 0;
}

Deno.exit(await main());

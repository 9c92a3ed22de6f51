/**
 * `mod.ts` works when imported by URL: the repository is served over HTTP on 127.0.0.1 and a fresh Deno process,
 * started outside the checkout (so no deno.json or import map applies), imports it and trains CartPole briefly —
 * Workers included, since their scripts are located relative to `import.meta.url`.
 */
import assert from "node:assert/strict";
import { serveDir } from "./_serve_dir.ts";

Deno.test("mod.ts imported by URL trains CartPole in a fresh process", async () => {
  const root = new URL("../", import.meta.url).pathname;
  await using server = serveDir(root);
  const dir = await Deno.makeTempDir();
  const script = `${dir}/main.ts`;
  await Deno.writeTextFile(
    script,
    `
import { evaluate, make, makeVectorEnv, trainPpo } from "${server.url}mod.ts";
const envs = await makeVectorEnv("CartPole-v1", 4, { backend: "worker", numWorkers: 2 });
const { policy, globalStep } = await trainPpo({
  envs, envId: "CartPole-v1", totalTimesteps: 4096, numSteps: 128, runsDir: ${JSON.stringify(dir)},
  tensorboard: false, handleSigint: false,
});
envs.close();
using env = make("CartPole-v1");
const { mean } = evaluate(policy, env, { episodes: 2, deterministic: true });
console.log(JSON.stringify({ globalStep, mean }));
`,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-lock", `--reload=${server.url}`, script],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout), stderr = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `the URL-importing process failed (exit ${out.code}):\n${stderr.slice(-3000)}`);
  const result = JSON.parse(stdout.trim().split("\n").at(-1)!);
  assert.equal(result.globalStep, 4096);
  assert.ok(result.mean > 0, `evaluation ran: ${stdout}`);
  assert.ok(server.requests.some((p) => p.includes("/envs/vector/")), "the Workers' modules were served too");
  await Deno.remove(dir, { recursive: true });
});

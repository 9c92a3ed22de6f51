import assert from "node:assert/strict";
import { checkEnv } from "../envs/checker.ts";
import { make } from "../envs/registry.ts";
import { Box, Dict, Discrete, MultiDiscrete } from "../envs/spaces.ts";
import { SyncVectorEnv, WorkerVectorEnv } from "../envs/vector/mod.ts";
import {
  cleanStaleEngineFiles,
  DOOM_SPECS,
  DoomEnv,
  type DoomObservation,
  ensureVizdoom,
  findEnginePids,
} from "../envs/vizdoom/mod.ts";

// Provisions through the same code path as users: the first run builds, later runs hit the cache.
await ensureVizdoom();

function processAlive(pid: number): boolean {
  try {
    // A zombie (killed, not yet reaped by its parent thread) counts as dead.
    return !/^State:\s+Z/m.test(Deno.readTextFileSync(`/proc/${pid}/status`));
  } catch {
    return false;
  }
}

/** Engines started by this process (other processes on the machine may run engines too). */
function ownEngines(): number[] {
  return findEnginePids().filter((pid) => {
    try {
      return Number(/^PPid:\s+(\d+)/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`))?.[1]) === Deno.pid;
    } catch {
      return false;
    }
  });
}

async function waitUntil(what: string, ok: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function copy(obs: DoomObservation): unknown {
  if (obs instanceof Uint8Array) return obs.slice();
  return Object.fromEntries(Object.entries(obs).map(([k, v]) => [k, v.slice()]));
}

/** Same seed, same actions: returns copies of every observation and reward. */
function rollout(env: DoomEnv, seed: number, steps: number) {
  const actions = new Discrete((env.actionSpace as Discrete).n);
  actions.seed(seed);
  const obs = [copy(env.reset({ seed })[0])], rewards: number[] = [];
  for (let t = 0; t < steps; t++) {
    const [o, r, terminated, truncated] = env.step(actions.sample());
    obs.push(copy(o));
    rewards.push(r);
    if (terminated || truncated) obs.push(copy(env.reset()[0]));
  }
  return { obs, rewards };
}

for (const id of ["doom_basic", "doom_health_gathering_supreme", "doom_defend_the_center"]) {
  Deno.test(`${id} passes checkEnv`, () => {
    checkEnv(make(id), { steps: 60 });
  });
}

Deno.test("the first six Sample Factory specs build with 3x72x128 CHW observations and their action spaces", () => {
  const expected: Record<string, string> = {
    doom_basic: "Discrete(4)",
    doom_two_colors_easy: "MultiDiscrete([3,3])",
    doom_health_gathering_supreme: "Discrete(5)",
    doom_defend_the_center: "MultiDiscrete([3,2])",
    doom_defend_the_line: "MultiDiscrete([3,2])",
    doom_deadly_corridor: "MultiDiscrete([3,3,3,2])",
  };
  for (const [id, space] of Object.entries(expected)) {
    using env = make(id);
    assert.equal(String(env.actionSpace), space, id);
    assert.deepEqual(env.observationSpace.shape, [3, 72, 128], id);
    const [obs] = env.reset({ seed: 1 });
    const [, reward] = env.step(env.actionSpace.sample());
    assert.ok(obs instanceof Uint8Array && Number.isFinite(reward), id);
  }
  assert.ok(DOOM_SPECS.length >= 6);
});

Deno.test("doom_deathmatch_bots hosts a deathmatch with 7 bots and respawns the agent after deaths", () => {
  using env = make("doom_deathmatch_bots");
  assert.equal(String(env.actionSpace), "MultiDiscrete([3,3,8,2,2,21])");
  env.actionSpace.seed(0);
  env.reset({ seed: 0 });
  let players = 0;
  for (let t = 0; t < 150; t++) {
    const [, reward, terminated, truncated, info] = env.step(env.actionSpace.sample());
    players = Math.max(players, info.PLAYER_COUNT as number);
    assert.ok(Number.isFinite(reward) && !terminated && !truncated);
  }
  assert.equal(players, 8);
});

Deno.test("gathering shaping adds +1 per health pickup and reports the unshaped score as true_objective", () => {
  const env = make("doom_health_gathering_supreme") as DoomEnv;
  try {
    // Walking forward from these seeds picks up medkits before the acid floor kills the player.
    let pickups = 0, episodes = 0;
    for (let seed = 0; seed < 4; seed++) {
      env.reset({ seed });
      // Like Sample Factory's wrapper, the first step has no previous health to compare with.
      let shaped = 0, bonus = 0, done = false, health = Infinity;
      while (!done) {
        const [, reward, terminated, truncated, next] = env.step(3); // MOVE_FORWARD
        done = terminated || truncated;
        shaped += reward;
        if (!done) {
          const rose = (next.HEALTH as number) > health;
          // The engine pays 0.01 per tic (4 per step); a pickup adds exactly 1 on the step where HEALTH rose.
          assert.ok(Math.abs(reward - (rose ? 1.04 : 0.04)) < 1e-6, `step reward ${reward}, health rose: ${rose}`);
          if (rose) bonus++;
          health = next.HEALTH as number;
          assert.equal(next.true_objective, undefined, "true_objective comes only at the end");
        } else {
          assert.equal(typeof next.true_objective, "number");
          assert.ok(Math.abs((next.true_objective as number) - (shaped - bonus)) < 1e-6, "unshaped score");
        }
      }
      pickups += bonus;
      episodes++;
    }
    assert.ok(pickups > 0, `no pickups in ${episodes} episodes: the shaping was not exercised`);
  } finally {
    env.close();
  }
});

Deno.test("same seed and actions give identical observations and rewards, also in a second env", () => {
  using a = new DoomEnv("basic", { resize: [128, 72], frameskip: 4 });
  const first = rollout(a, 7, 120), second = rollout(a, 7, 120);
  assert.deepEqual(second.rewards, first.rewards);
  assert.deepEqual(second.obs, first.obs);
  using b = new DoomEnv("basic", { resize: [128, 72], frameskip: 4 });
  const third = rollout(b, 7, 120);
  assert.deepEqual(third.rewards, first.rewards);
  assert.deepEqual(third.obs, first.obs);
  const other = rollout(b, 8, 120);
  assert.notDeepEqual(other.obs, first.obs);
});

Deno.test("observations are views of one preallocated buffer, rewritten in place each step", () => {
  using env = new DoomEnv("basic", { screenFormat: "GRAY8" });
  const [obs] = env.reset({ seed: 0 });
  assert.deepEqual(env.observationSpace.shape, [1, 120, 160]);
  const before = (obs as Uint8Array).slice();
  let next: DoomObservation = obs;
  for (let t = 0; t < 5; t++) [next] = env.step(1);
  assert.equal(next, obs);
  assert.notDeepEqual((obs as Uint8Array).slice(), before);
});

Deno.test("HWC layout holds the same pixels as CHW, and render() gives the RGB frame", () => {
  using chw = new DoomEnv("basic", {});
  using hwc = new DoomEnv("basic", { layout: "HWC" });
  const [a] = chw.reset({ seed: 3 }), [b] = hwc.reset({ seed: 3 });
  const [x, y] = [a as Uint8Array, b as Uint8Array];
  const plane = 160 * 120;
  for (const i of [0, 777, 5000, plane - 1]) {
    for (let c = 0; c < 3; c++) assert.equal(x[c * plane + i], y[i * 3 + c]);
  }
  const frame = chw.render();
  assert.ok(frame);
  assert.equal(frame.width, 160);
  assert.deepEqual(frame.data, y);
});

/** Reference resize of an HWC RGB frame to CHW: nearest (OpenCV INTER_NEAREST) or area (box filter). */
function resizeReference(src: Uint8Array, sw: number, sh: number, dw: number, dh: number, area: boolean) {
  const out = new Float64Array(3 * dw * dh);
  const sx = sw / dw, sy = sh / dh;
  const taps = (i: number, scale: number, n: number) => {
    if (!area) return [[Math.min(Math.floor(i * scale), n - 1), 1]];
    const lo = i * scale, hi = lo + scale, t: number[][] = [];
    for (let s = Math.floor(lo); s < hi && s < n; s++) t.push([s, (Math.min(hi, s + 1) - Math.max(lo, s)) / scale]);
    return t;
  };
  for (let y = 0; y < dh; y++) {
    for (let x = 0; x < dw; x++) {
      for (const [yy, wy] of taps(y, sy, sh)) {
        for (const [xx, wx] of taps(x, sx, sw)) {
          for (let c = 0; c < 3; c++) out[(c * dh + y) * dw + x] += wy * wx * src[(yy * sw + xx) * 3 + c];
        }
      }
    }
  }
  return out;
}

for (const interpolation of ["nearest", "area"] as const) {
  Deno.test(`the ${interpolation} resize to 128x72 CHW matches a reference computed from the native frame`, () => {
    using native = new DoomEnv("basic", { layout: "HWC" });
    using resized = new DoomEnv("basic", { resize: [128, 72], interpolation });
    const [a] = native.reset({ seed: 5 }), [b] = resized.reset({ seed: 5 });
    const want = resizeReference(a as Uint8Array, 160, 120, 128, 72, interpolation === "area");
    const got = b as Uint8Array;
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
    assert.ok(worst <= (interpolation === "area" ? 0.51 : 0), `largest difference ${worst}`);
  });
}

Deno.test("depth, labels, automap and game variables come as a Dict observation", () => {
  const env = new DoomEnv("health_gathering_supreme", {
    resize: [64, 48],
    depth: true,
    labels: true,
    automap: true,
    observeGameVariables: true,
    frameskip: 2,
  });
  assert.ok(env.observationSpace instanceof Dict);
  const [obs, info] = env.reset({ seed: 1 });
  const o = obs as Record<string, Uint8Array | Float32Array>;
  assert.deepEqual(Object.keys(o).sort(), ["automap", "depth", "gamevariables", "labels", "screen"]);
  assert.equal(o.depth.length, 64 * 48);
  assert.equal(o.gamevariables[0], info.HEALTH);
  assert.ok(o.gamevariables[0] > 0 && o.gamevariables[0] <= 100);
  checkEnv(env, { steps: 20, checkStepBeforeReset: false });
});

Deno.test("multi-discrete and box actions drive the buttons (delta buttons included)", () => {
  using md = new DoomEnv("defend_the_center", { actionSpace: { kind: "multi_discrete", groups: [3, 2] } });
  assert.ok(md.actionSpace instanceof MultiDiscrete);
  md.reset({ seed: 0 });
  md.step(Int32Array.of(2, 1));
  using box = new DoomEnv("basic", {
    buttons: ["ATTACK", "TURN_LEFT_RIGHT_DELTA"],
    actionSpace: { kind: "box", deltaScale: 10 },
    gameVariables: ["ANGLE"],
  });
  assert.ok(box.actionSpace instanceof Box);
  assert.deepEqual(box.buttons, ["ATTACK", "TURN_LEFT_RIGHT_DELTA"]);
  const [, info0] = box.reset({ seed: 0 });
  const [, , , , info1] = box.step(Float32Array.of(0, 1));
  assert.notEqual(info1.ANGLE, info0.ANGLE);
});

Deno.test("a constructor that fails after the engine started stops the engine", async () => {
  const before = new Set(ownEngines());
  assert.throws(
    () => new DoomEnv("basic", { actionSpace: { kind: "multi_discrete", groups: [3] } }),
    /the action groups drive 2 buttons, the game has 3/,
  );
  await waitUntil("no engine of ours is left", () => ownEngines().every((p) => before.has(p)));
});

Deno.test("a missing scenario names the path tried and the scenarios available", () => {
  assert.throws(
    () => new DoomEnv("no_such_scenario"),
    (e: Error) => /no scenario config at .*no_such_scenario\.cfg/.test(e.message) && /basic/.test(e.message),
  );
  assert.throws(() => new DoomEnv("/nowhere/x.cfg"), /no scenario config at \/nowhere\/x\.cfg/);
});

Deno.test("an action outside the action space throws a RangeError", () => {
  using env = make("doom_basic");
  env.reset({ seed: 0 });
  assert.throws(() => env.step(4), RangeError);
  assert.throws(() => env.step(-1), RangeError);
  assert.throws(() => env.step(1.5), RangeError);
  using md = make("doom_defend_the_center");
  md.reset({ seed: 0 });
  assert.throws(() => md.step(Int32Array.of(3, 0)), RangeError);
  assert.throws(() => md.step(Int32Array.of(0)), RangeError);
});

Deno.test("step() before reset() and after an episode ends says to call reset()", () => {
  using env = new DoomEnv("basic", { frameskip: 4, episodeTimeout: 20 });
  assert.throws(() => env.step(0), /call reset\(\)/);
  env.reset({ seed: 0 });
  let truncated = false;
  for (let t = 0; t < 10 && !truncated; t++) [, , , truncated] = env.step(0);
  assert.ok(truncated, "the 20-tic timeout ends the episode as truncated");
  assert.throws(() => env.step(0), /call reset\(\)/);
  env.reset();
  env.step(0);
});

Deno.test("killing the engine mid-episode gives a clear error from step(), and a new env works afterwards", () => {
  const env = new DoomEnv("basic");
  env.reset({ seed: 0 });
  env.step(1);
  const pid = env.enginePid;
  assert.ok(pid && processAlive(pid), "the engine runs");
  Deno.kill(pid, "SIGKILL");
  assert.throws(() => {
    for (let t = 0; t < 100; t++) env.step(1);
  }, /step\(\) failed: .*(unexpected|exit|crash|not running)/i);
  env.close();
  env.close();
  using fresh = new DoomEnv("basic");
  fresh.reset({ seed: 0 });
  fresh.step(2);
});

Deno.test("stepAsync: several engines step at once with the same results as step(); errors and close() are safe", async () => {
  const scenario = "health_gathering_supreme";
  const actions = Array.from({ length: 60 }, (_, t) => (t * 7) % 3);
  const sync = new DoomEnv(scenario, { frameskip: 4 });
  const asyncEnvs = [new DoomEnv(scenario, { frameskip: 4 }), new DoomEnv(scenario, { frameskip: 4 })];
  try {
    sync.reset({ seed: 5 });
    for (const env of asyncEnvs) env.reset({ seed: 5 });
    for (const a of actions) {
      const [obs, reward, term, trunc] = sync.step(a);
      const results = await Promise.all(asyncEnvs.map((env) => env.stepAsync(a)));
      for (const [o, r, te, tr] of results) {
        assert.deepEqual([r, te, tr], [reward, term, trunc]);
        assert.deepEqual(o, obs);
      }
      if (term || trunc) break;
    }
    // An engine killed under an in-flight step: the promise rejects with the engine's error (read per game, since
    // the step ran on another thread), and close() right after is safe.
    const [victim] = asyncEnvs;
    Deno.kill(victim.enginePid!, "SIGKILL");
    await assert.rejects(async () => {
      for (let t = 0; t < 100; t++) await victim.stepAsync(1);
    }, /step\(\) failed: \S.*(unexpected|exit|crash|not running)/i);
    // close() while a step is in flight frees the game only after the step returns.
    const inFlight = asyncEnvs[1].stepAsync(1);
    asyncEnvs[1].close();
    await inFlight.then(() => {}, () => {});
    assert.throws(() => asyncEnvs[1].step(1), /closed env/);
  } finally {
    sync.close();
    for (const env of asyncEnvs) env.close();
  }
});

Deno.test("close() stops the engine: no orphan engine processes", async () => {
  const before = new Set(ownEngines());
  const env = new DoomEnv("basic");
  const pid = env.enginePid!;
  assert.ok(!before.has(pid) && processAlive(pid));
  env.close();
  await waitUntil(`engine ${pid} exits`, () => !processAlive(pid));
  assert.equal(env.enginePid, undefined);
  assert.throws(() => env.reset(), /closed env/);
});

Deno.test("stale shared memory of dead engines is removed; engines write nothing into the working directory", () => {
  const stale = "/dev/shm/ViZDoomSMarcadiaTestDeadEngine";
  Deno.writeTextFileSync(stale, "");
  const old = new Date(Date.now() - 3_600_000);
  Deno.utimeSync(stale, old, old);
  const fresh = "/dev/shm/ViZDoomSMarcadiaTestStartingEngine";
  Deno.writeTextFileSync(fresh, "");
  try {
    cleanStaleEngineFiles();
    assert.throws(() => Deno.statSync(stale), Deno.errors.NotFound);
    assert.ok(Deno.statSync(fresh).isFile, "objects younger than a minute are left alone");
  } finally {
    Deno.removeSync(fresh);
  }
  using env = new DoomEnv("basic");
  env.reset({ seed: 0 });
  env.step(1);
  for (const name of ["_vizdoom.ini", "_vizdoom"]) {
    assert.throws(() => Deno.statSync(name), Deno.errors.NotFound, `${name} in ${Deno.cwd()}`);
  }
});

/** Runs a snippet in a fresh Deno process with extra environment variables; returns its exit status and stderr. */
async function runSnippet(code: string, env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { success: out.success, stderr: new TextDecoder().decode(out.stderr) };
}

const MOD_URL = new URL("../envs/vizdoom/mod.ts", import.meta.url).href;

Deno.test("ensureVizdoom() returns at once when the cache is valid", async () => {
  const started = performance.now();
  const paths = await ensureVizdoom();
  assert.ok(performance.now() - started < 1000);
  assert.match(paths.library, /vizdoom-1\.3\.2-[0-9a-f]{12}\/libarcadia_vizdoom\.so$/);
});

Deno.test("without a provisioned cache, a Doom env says to run ensureVizdoom() first", async () => {
  const empty = Deno.makeTempDirSync();
  try {
    const { success, stderr } = await runSnippet(
      `import { DoomEnv } from ${JSON.stringify(MOD_URL)}; new DoomEnv("basic");`,
      { ARCADIA_CACHE: empty },
    );
    assert.ok(!success);
    assert.match(stderr, /run `await ensureVizdoom\(\)`/);
  } finally {
    Deno.removeSync(empty, { recursive: true });
  }
});

Deno.test("a wrong ARCADIA_VIZDOOM_LIB is reported with the path tried, not silently ignored", async () => {
  const { success, stderr } = await runSnippet(
    `import { DoomEnv } from ${JSON.stringify(MOD_URL)}; new DoomEnv("basic");`,
    { ARCADIA_VIZDOOM_LIB: "/nonexistent/libarcadia_vizdoom.so" },
  );
  assert.ok(!success);
  assert.match(stderr, /\/nonexistent\/libarcadia_vizdoom\.so \(ARCADIA_VIZDOOM_LIB\): not found/);
});

Deno.test("engines die with their Deno process, even on SIGKILL", async () => {
  const script = `
    import { DoomEnv } from ${JSON.stringify(new URL("../envs/vizdoom/mod.ts", import.meta.url).href)};
    const env = new DoomEnv("basic");
    env.reset({ seed: 0 });
    console.log(env.enginePid);
    await new Promise(() => {});
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(script));
  await writer.close();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const pid = Number(text.trim());
  assert.ok(pid > 0 && processAlive(pid), `the child's engine runs (got "${text.trim()}")`);
  child.kill("SIGKILL");
  await child.status;
  await reader.cancel();
  await waitUntil(`engine ${pid} dies with its owner`, () => !processAlive(pid));
});

Deno.test("in a vector env, DoomEnv writes its frames straight into the vector env's observation rows", () => {
  using vec = new SyncVectorEnv([() => make("doom_basic"), () => make("doom_basic")]);
  const [obs] = vec.resetSync({ seed: 0 });
  const size = 3 * 72 * 128;
  using single = make("doom_basic");
  const [expected] = single.reset({ seed: 1 }); // vector env 1 is seeded with 0 + 1
  const row = obs.subarray(size, 2 * size) as Uint8Array;
  assert.ok(row.every((v, i) => v === (expected as Uint8Array)[i]), "row 1 holds env 1's first frame");
  const [, , , ,] = vec.stepSync(Int32Array.of(1, 2));
  const inner = vec.envs[0].unwrapped as DoomEnv;
  const [own] = inner.step(0);
  assert.equal((own as Uint8Array).buffer, obs.buffer, "the env's observation is a view of the vector buffer");
});

Deno.test("Worker vector envs build Doom envs with make() inside Workers and close their engines", async () => {
  const before = new Set(ownEngines());
  const vec = await WorkerVectorEnv.create("doom_basic", {
    numEnvs: 2,
    numWorkers: 2,
    envModules: [new URL("../envs/vizdoom/mod.ts", import.meta.url)],
  });
  try {
    await vec.reset({ seed: 0 });
    const actions = vec.buffers.actions;
    for (let t = 0; t < 20; t++) {
      actions[0] = t % 4, actions[1] = (t + 1) % 4;
      vec.send();
      await vec.recv();
    }
    assert.equal(ownEngines().filter((p) => !before.has(p)).length, 2);
    const obs = vec.buffers.observations, size = 3 * 72 * 128;
    assert.ok(obs.subarray(0, size).some((v) => v > 0) && obs.subarray(size).some((v) => v > 0));
  } finally {
    await vec.close();
  }
  await waitUntil("the Workers' engines exit", () => ownEngines().every((p) => before.has(p)));
});

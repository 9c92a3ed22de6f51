/**
 * ALE throughput: our Deno FFI path against the same shim driven by a C++ loop, and against ale-py from pip.
 *
 * 1. One env, one thread, emulator frames/s with the grayscale screen read after every step (sticky actions 0.25,
 *    random actions), frameskip 1 and 4:
 *    - `deno ffi loop`: the shim's `arc_ale_step` called straight through Deno FFI (the same calls as the C++ loop);
 *    - `deno AtariEnv.step`: the env API (`[obs, reward, terminated, truncated, info]` per step);
 *    - `c++ loop`: `bench/ale_bench_loop.cpp`, compiled here against the same `libarcadia_ale.so`;
 *    - `ale-py ALEInterface`: ale-py 0.12.1's Python bindings doing the same (act × frameskip, getScreenGrayscale);
 *    - `ale-py env.step`: `gymnasium.make("ALE/<Game>-v5", obs_type="grayscale", frameskip=k)`.
 * 2. Vectorized, 2 cores, 8 envs, Nature-DQN preprocessing (noop 30, frameskip 4 with max-pool, 84x84 grayscale,
 *    4 stacked frames, clipped rewards, sticky actions 0.25): our `WorkerVectorEnv` (2 Workers) over `makeAtari`, ale-py's
 *    C++ `AtariVectorEnv` (2 threads), Gymnasium's `AsyncVectorEnv` (one process per env) over `AtariPreprocessing`.
 *    `makeAtari`'s `AtariPreprocessing` steps natively (one `arc_ale_step_preprocessed` call per agent step); rounds
 *    are interleaved and the best of `--vector-rounds` is kept.
 *
 * Python packages go into a venv in Arcadia's cache on first run (`pip install ale-py==0.12.1 ...`).
 *
 * Run: `deno run -A bench/ale_bench.ts [--game pong] [--frames 20000] [--rounds 3] [--vector-steps 1500] [--vector-rounds 2]
 * [--no-python] [--no-single] [--no-vector]`
 *
 * @module
 */

import { parseArgs } from "node:util";
import { cacheRoot, exists, run, say, withLock } from "../envs/_native/provision.ts";
import { ale, OBS_KIND } from "../envs/ale/ffi.ts";
import { aleInstallation, AtariEnv, ensureAle, romIdToName, romPath } from "../envs/ale/mod.ts";
import type { Discrete } from "../envs/spaces.ts";
import { WorkerVectorEnv } from "../envs/vector/mod.ts";

const PYTHON_PACKAGES = ["ale-py==0.12.1", "gymnasium==1.4.0", "opencv-python-headless==5.0.0.93", "numpy==2.4.6"];

const { values: args } = parseArgs({
  options: {
    game: { type: "string", default: "pong" },
    frames: { type: "string", default: "20000" },
    rounds: { type: "string", default: "3" },
    "vector-steps": { type: "string", default: "1500" },
    "vector-rounds": { type: "string", default: "2" },
    "num-envs": { type: "string", default: "8" },
    "no-python": { type: "boolean", default: false },
    "no-vector": { type: "boolean", default: false },
    "no-single": { type: "boolean", default: false },
  },
});
const GAME = args.game!, FRAMES = Number(args.frames), ROUNDS = Number(args.rounds);
const VECTOR_STEPS = Number(args["vector-steps"]), NUM_ENVS = Number(args["num-envs"]);
const VECTOR_ROUNDS = Number(args["vector-rounds"]);
const SEED = 1;

/** Random action indices, drawn once so every variant pays the same (nothing) for them. */
function actionPool(n: number, size = 1 << 16): Int32Array {
  let s = 12345;
  return Int32Array.from({ length: size }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 16) % n);
}

function ffiLoop(skip: number): number {
  const { symbols } = ale();
  const enc = (s: string) => new TextEncoder().encode(s + "\0");
  const h = symbols.arc_ale_create()!;
  symbols.arc_ale_set_float(h, enc("repeat_action_probability"), 0.25);
  symbols.arc_ale_set_int(h, enc("random_seed"), SEED);
  if (symbols.arc_ale_load_rom(h, enc(romPath(GAME))) < 0) throw new Error("loadROM failed");
  const set = new Int32Array(32), n = symbols.arc_ale_minimal_actions(h, set, 32);
  const pool = actionPool(n), screen = new Uint8Array(210 * 160), status = new Int32Array(6);
  symbols.arc_ale_reset_game(h);
  const t0 = performance.now();
  let done = 0, i = 0;
  while (done < FRAMES) {
    const a = set[pool[i++ & 0xffff]];
    symbols.arc_ale_step(h, a, 1, skip, OBS_KIND.grayscale, screen, screen.length, null, status);
    done += skip;
    if (status[1] || status[2]) symbols.arc_ale_reset_game(h);
  }
  const seconds = (performance.now() - t0) / 1000;
  symbols.arc_ale_destroy(h);
  return done / seconds;
}

function envLoop(skip: number): number {
  using env = new AtariEnv(GAME, { obsType: "grayscale", frameskip: skip });
  const pool = actionPool(env.actionSpace.n);
  env.reset({ seed: SEED });
  const t0 = performance.now();
  let done = 0, i = 0;
  while (done < FRAMES) {
    const [, , terminated, truncated] = env.step(pool[i++ & 0xffff]);
    done += skip;
    if (terminated || truncated) env.reset();
  }
  return done / ((performance.now() - t0) / 1000);
}

async function cppLoop(skip: number, binary: string): Promise<number> {
  const out = await run([binary, romPath(GAME), String(skip), String(FRAMES), String(SEED)]);
  const [frames, seconds] = out.trim().split(/\s+/).map(Number);
  return frames / seconds;
}

async function buildCppLoop(): Promise<string> {
  const { library } = aleInstallation();
  const dir = library.slice(0, library.lastIndexOf("/"));
  const binary = `${dir}/ale_bench_loop`;
  const source = new URL("./ale_bench_loop.cpp", import.meta.url);
  const src = `${dir}/ale_bench_loop.cpp`;
  Deno.writeTextFileSync(src, await (await fetch(source)).text());
  await run(["g++", "-O3", "-std=c++17", src, "-o", binary, library, `-Wl,-rpath,${dir}`], {
    label: "compiling bench/ale_bench_loop.cpp",
  });
  return binary;
}

const PY_SCRIPT = String.raw`
import sys, time
import numpy as np
mode, game, skip, frames, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
import ale_py, gymnasium as gym
gym.register_envs(ale_py)
name = "".join(w.capitalize() for w in game.split("_"))
def pool(n):
    return np.random.default_rng(seed).integers(0, n, size=1 << 16)
if mode == "interface":
    a = ale_py.ALEInterface()
    a.setLoggerMode(ale_py.LoggerMode.Error)
    a.setFloat("repeat_action_probability", 0.25)
    a.setInt("random_seed", seed)
    a.loadROM(ale_py.roms.get_rom_path(game))
    actions = a.getMinimalActionSet()
    acts = [actions[i] for i in pool(len(actions))]
    buf = np.empty((210, 160), dtype=np.uint8)
    a.reset_game()
    t0 = time.perf_counter(); done = 0; i = 0
    while done < frames:
        act = acts[i & 0xffff]; i += 1
        for _ in range(skip):
            a.act(act)
        a.getScreenGrayscale(buf)
        done += skip
        if a.game_over():
            a.reset_game()
    print(done, time.perf_counter() - t0)
elif mode == "env":
    env = gym.make(f"ALE/{name}-v5", obs_type="grayscale", frameskip=skip)
    env.reset(seed=seed)
    acts = [int(x) for x in pool(env.action_space.n)]
    t0 = time.perf_counter(); done = 0; i = 0
    while done < frames:
        _, _, term, trunc, _ = env.step(acts[i & 0xffff]); i += 1
        done += skip
        if term or trunc:
            env.reset()
    print(done, time.perf_counter() - t0)
else:
    num_envs, steps = skip, frames
    if mode == "vector":
        from ale_py.vector_env import AtariVectorEnv
        envs = AtariVectorEnv(game, num_envs, num_threads=2, repeat_action_probability=0.25, use_fire_reset=False)
    else:
        from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, TransformReward
        def make():
            e = gym.make(f"ALE/{name}-v5", frameskip=1)
            e = AtariPreprocessing(e, noop_max=30, frame_skip=4, screen_size=84, grayscale_obs=True)
            e = TransformReward(e, lambda r: float(np.sign(r)))
            return FrameStackObservation(e, 4)
        envs = gym.vector.AsyncVectorEnv([make] * num_envs)
    envs.reset(seed=seed)
    rng = np.random.default_rng(seed)
    n = envs.single_action_space.n
    for _ in range(20):
        envs.step(rng.integers(0, n, size=num_envs))
    t0 = time.perf_counter()
    for _ in range(steps):
        envs.step(rng.integers(0, n, size=num_envs))
    print(steps * num_envs * 4, time.perf_counter() - t0)
    envs.close()
`;

async function ensurePython(): Promise<string> {
  const venv = `${cacheRoot()}/ale-bench-python`, python = `${venv}/bin/python`;
  const stamp = `${venv}/arcadia-packages.txt`, want = PYTHON_PACKAGES.join("\n");
  if (exists(stamp) && Deno.readTextFileSync(stamp) === want) return python;
  await withLock(`${venv}.lock`, async () => {
    if (!exists(python)) await run(["python3", "-m", "venv", venv], { label: "creating the bench Python venv" });
    await run([python, "-m", "pip", "install", "-q", ...PYTHON_PACKAGES], {
      label: `pip install ${PYTHON_PACKAGES.join(" ")}`,
    });
    Deno.writeTextFileSync(stamp, want);
  });
  return python;
}

async function python(py: string, mode: string, a: number, b: number): Promise<number> {
  const out = await run([py, "-c", PY_SCRIPT, mode, GAME, String(a), String(b), String(SEED)]);
  // run() appends stderr (warnings) after stdout: find the result line.
  const line = out.split("\n").find((l) => /^\d+ [\d.e-]+$/.test(l.trim()));
  if (!line) throw new Error(`ale-py ${mode} run printed no result:\n${out}`);
  const [frames, seconds] = line.trim().split(/\s+/).map(Number);
  return frames / seconds;
}

async function ourVector(): Promise<number> {
  // Workers need a registered id: a tiny module registering makeAtari's stack, written next to the build.
  const mod = `${cacheRoot()}/ale_bench_vector_env.ts`;
  const aleMod = new URL("../envs/ale/mod.ts", import.meta.url).href;
  const registry = new URL("../envs/registry.ts", import.meta.url).href;
  Deno.writeTextFileSync(
    mod,
    `import { makeAtari } from "${aleMod}";\nimport { register } from "${registry}";\n` +
      `register({ id: "Bench/AtariDQN", create: ({ game }) => makeAtari(game as string) });\n`,
  );
  const vec = await WorkerVectorEnv.create("Bench/AtariDQN", {
    numEnvs: NUM_ENVS,
    numWorkers: 2,
    envModules: [new URL(`file://${mod}`).href],
    kwargs: { game: GAME },
  });
  try {
    await vec.reset({ seed: SEED });
    const n = (vec.singleActionSpace as Discrete).n;
    const pool = actionPool(n, NUM_ENVS * 4096), actions = new Int32Array(NUM_ENVS);
    const stepOnce = async (t: number) => {
      actions.set(pool.subarray((t % 4096) * NUM_ENVS, (t % 4096 + 1) * NUM_ENVS));
      await vec.step(actions);
    };
    for (let t = 0; t < 20; t++) await stepOnce(t);
    const t0 = performance.now();
    for (let t = 0; t < VECTOR_STEPS; t++) await stepOnce(t);
    return (VECTOR_STEPS * NUM_ENVS * 4) / ((performance.now() - t0) / 1000);
  } finally {
    await vec.close();
  }
}

function fmt(x: number): string {
  return `${Math.round(x).toLocaleString("en-US")}`.padStart(8);
}

async function single(binary: string, py: string | undefined): Promise<void> {
  console.log(
    `# ALE single env, one thread, ${romIdToName(GAME)}, grayscale read every step, frames/s (best of ${ROUNDS})`,
  );
  for (const skip of [1, 4]) {
    ffiLoop(skip); // warm-up: JIT and FFI fast calls
    const r: Record<string, number> = {};
    // Interleaved rounds, so background load hits every variant alike.
    for (let round = 0; round < ROUNDS; round++) {
      const take = (k: string, v: number) => r[k] = Math.max(r[k] ?? 0, v);
      take("ffi", ffiLoop(skip));
      take("env", envLoop(skip));
      take("cpp", await cppLoop(skip, binary));
      if (py) {
        take("pyInterface", await python(py, "interface", skip, FRAMES));
        take("pyEnv", await python(py, "env", skip, FRAMES));
      }
    }
    console.log(
      `frameskip ${skip}: deno ffi loop ${fmt(r.ffi)} | deno AtariEnv.step ${fmt(r.env)} | c++ loop ${fmt(r.cpp)}` +
        (py ? ` | ale-py ALEInterface ${fmt(r.pyInterface)} | ale-py env.step ${fmt(r.pyEnv)}` : ""),
    );
    console.log(
      `frameskip ${skip}: ffi loop / c++ loop = ${(r.ffi / r.cpp).toFixed(3)}; AtariEnv.step / c++ loop = ${
        (r.env / r.cpp).toFixed(3)
      }` +
        (py
          ? `; ffi loop / ale-py ALEInterface = ${
            (r.ffi / r.pyInterface).toFixed(3)
          }; AtariEnv.step / ale-py env.step = ${(r.env / r.pyEnv).toFixed(3)}`
          : ""),
    );
  }
}

async function vector(py: string | undefined): Promise<void> {
  console.log(
    `# vectorized ${romIdToName(GAME)}, ${NUM_ENVS} envs on 2 cores, DQN preprocessing, frames/s ` +
      `(${VECTOR_STEPS} steps, best of ${VECTOR_ROUNDS})`,
  );
  const r: Record<string, number> = {};
  // Interleaved rounds, as above: the machine's other load hits every variant alike.
  for (let round = 0; round < VECTOR_ROUNDS; round++) {
    const take = (k: string, v: number) => r[k] = Math.max(r[k] ?? 0, v);
    take("ours", await ourVector());
    if (py) {
      take("cpp", await python(py, "vector", NUM_ENVS, VECTOR_STEPS));
      take("async", await python(py, "async", NUM_ENVS, VECTOR_STEPS));
    }
  }
  let line = `deno WorkerVectorEnv(2 workers) ${fmt(r.ours)}`;
  if (py) {
    line += ` | ale-py AtariVectorEnv(2 threads) ${fmt(r.cpp)} | gymnasium AsyncVectorEnv(${NUM_ENVS} procs) ${
      fmt(r.async)
    }`;
    line += `\nours / AtariVectorEnv = ${(r.ours / r.cpp).toFixed(3)}; ours / AsyncVectorEnv = ${
      (r.ours / r.async).toFixed(3)
    }`;
  }
  console.log(line);
}

if (import.meta.main) {
  await ensureAle();
  const binary = await buildCppLoop();
  const py = args["no-python"] ? undefined : await ensurePython();
  say(`ALE ${GAME}: ${FRAMES} frames per run, best of ${ROUNDS}; ${navigator.hardwareConcurrency} cores`);
  if (!args["no-single"]) await single(binary, py);
  if (!args["no-vector"]) await vector(py);
}

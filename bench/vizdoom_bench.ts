/**
 * ViZDoom steps/s in one thread, one env (basic scenario, 160x120, random actions, resets included), three ways
 * doing the same work per step (set the action, advance `tics`, read the screen into a buffer, check for the end):
 * - `ffi`: `DoomEnv.step()` through Deno FFI (the shim writes the frame into the env's preallocated buffer);
 * - `c++`: the same shim driven by a small C++ loop, compiled here at bench time;
 * - `python`: the `vizdoom` 1.3.2 Python bindings from pip (venv in the cache, made here at bench time).
 *
 * Run: `deno run -A bench/vizdoom_bench.ts [--steps 2000] [--rounds 5]`. Prints one line per configuration with
 * ratios: steps/s are the best of `rounds` interleaved runs, ratios the median of per-round ratios (the engine's
 * speed drifts with machine load, which the header line reports), and the driving side's CPU time per step (the
 * engine, another process, excluded) gives each binding's own cost. A first section times the frame copy and the
 * 160x120 -> 128x72 resize in the shim against the same resizes written in TypeScript.
 *
 * @module
 */

import { cpuUsage } from "node:process";
import { parseArgs } from "node:util";
import { cacheRoot, exists, run, say } from "../envs/_native/provision.ts";
import { DoomEnv, ensureVizdoom, type ScreenFormat, VIZDOOM_VERSION, type VizdoomPaths } from "../envs/vizdoom/mod.ts";
import { cString, lastError, loadVizdoom } from "../envs/vizdoom/ffi.ts";
import { median } from "./_stats.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { steps: { type: "string", default: "2000" }, rounds: { type: "string", default: "5" } },
});
const STEPS = Number(values.steps), ROUNDS = Number(values.rounds);
const WARMUP = 200;
const CONFIGS: { format: ScreenFormat; tics: number }[] = [
  { format: "GRAY8", tics: 1 },
  { format: "GRAY8", tics: 4 },
  { format: "RGB24", tics: 1 },
  { format: "RGB24", tics: 4 },
];
const FORMAT_IDS: Record<string, number> = { RGB24: 1, GRAY8: 8 };

/** Random actions (idle or one of the 3 buttons), the same sequence for every implementation. */
function actionSequence(n: number): Int32Array {
  const out = new Int32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = (s >>> 16) % 4;
  }
  return out;
}

/** One measurement: wall-clock steps/s and this side's CPU time per step (engine excluded: it is another process). */
interface Sample {
  sps: number;
  cpuUs: number;
}

function benchFfi(format: ScreenFormat, tics: number): Sample {
  using env = new DoomEnv("basic", { screenFormat: format, frameskip: tics, layout: "HWC" });
  const actions = actionSequence(STEPS + WARMUP);
  env.reset({ seed: 1 });
  let t0 = 0, c0 = cpuUsage();
  for (let i = 0; i < STEPS + WARMUP; i++) {
    if (i === WARMUP) t0 = performance.now(), c0 = cpuUsage();
    const [, , terminated, truncated] = env.step(actions[i]);
    if (terminated || truncated) env.reset();
  }
  const c1 = cpuUsage();
  return {
    sps: STEPS / ((performance.now() - t0) / 1000),
    cpuUs: (c1.user + c1.system - c0.user - c0.system) / STEPS,
  };
}

const CPP_LOOP = String.raw`
// Bench-only: drives libarcadia_vizdoom.so from C++ exactly as DoomEnv does (same shim calls, same buffers).
#include <chrono>
#include <sys/resource.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>
extern "C" {
const char *avz_last_error(void);
void *avz_create(void);
int32_t avz_destroy(void *);
int32_t avz_load_config(void *, const char *);
int32_t avz_set_vizdoom_path(void *, const char *);
int32_t avz_set_doom_game_path(void *, const char *);
int32_t avz_set_doom_config_path(void *, const char *);
int32_t avz_add_game_arg(void *, const char *);
int32_t avz_set_screen_format(void *, int32_t);
int32_t avz_set_screen_resolution(void *, int32_t);
int32_t avz_set_window_visible(void *, int32_t);
int32_t avz_set_seed(void *, uint32_t);
int32_t avz_init(void *);
int32_t avz_get_screen_shape(void *, int32_t *);
int32_t avz_bind(void *, const double *, uint8_t *, uint8_t *, uint8_t *, uint8_t *, double *, double *);
int32_t avz_new_episode(void *);
int32_t avz_step(void *, uint32_t);
}
static double cpuUs() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
}
static void check(int32_t rc, const char *what) {
  if (rc < 0) { std::fprintf(stderr, "%s: %s\n", what, avz_last_error()); std::exit(1); }
}
int main(int argc, char **argv) {
  // argv: cfg launcher engine iwad dir format tics steps warmup
  const char *cfg = argv[1], *launcher = argv[2], *engine = argv[3], *iwad = argv[4], *dir = argv[5];
  const int format = std::atoi(argv[6]), steps = std::atoi(argv[8]), warmup = std::atoi(argv[9]);
  const unsigned tics = unsigned(std::atoi(argv[7]));
  void *g = avz_create();
  check(avz_load_config(g, cfg), "load_config");
  check(avz_set_vizdoom_path(g, launcher), "vizdoom_path");
  check(avz_set_doom_game_path(g, iwad), "game_path");
  check(avz_set_doom_config_path(g, (std::string(dir) + "/_vizdoom.ini").c_str()), "config_path");
  check(avz_set_screen_format(g, format), "format");
  check(avz_set_screen_resolution(g, 0), "resolution");
  check(avz_set_window_visible(g, 0), "window");
  const std::string parent = std::to_string(getpid());
  for (const char *a : {"-arcadia-engine", engine, "-arcadia-parent", parent.c_str(), "-arcadia-cwd", dir}) {
    check(avz_add_game_arg(g, a), "game_arg");
  }
  check(avz_init(g), "init");
  int32_t shape[3];
  check(avz_get_screen_shape(g, shape), "shape");
  std::vector<uint8_t> screen(size_t(shape[0]) * shape[1] * shape[2]);
  double action[3] = {0, 0, 0}, vars[8], out[6];
  check(avz_bind(g, action, screen.data(), nullptr, nullptr, nullptr, vars, out), "bind");
  check(avz_set_seed(g, 1), "seed");
  check(avz_new_episode(g), "new_episode");
  uint32_t s = 12345;
  auto t0 = std::chrono::steady_clock::now();
  double c0 = cpuUs();
  for (int i = 0; i < steps + warmup; ++i) {
    if (i == warmup) t0 = std::chrono::steady_clock::now(), c0 = cpuUs();
    s = s * 1103515245u + 12345u;
    const int a = int((s >> 16) % 4);
    action[0] = a == 1, action[1] = a == 2, action[2] = a == 3;
    const int32_t rc = avz_step(g, tics);
    check(rc, "step");
    if (rc == 1) check(avz_new_episode(g), "new_episode");
  }
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%.1f %.2f\n", steps / sec, (cpuUs() - c0) / steps);
  avz_destroy(g);
  return 0;
}
`;

const PY_LOOP = String.raw`
import sys, time, vizdoom as vzd
cfg, fmt, tics, steps, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
game = vzd.DoomGame()
game.load_config(cfg)
game.set_screen_format(getattr(vzd.ScreenFormat, fmt))
game.set_screen_resolution(vzd.ScreenResolution.RES_160X120)
game.set_window_visible(False)
game.init()
game.set_seed(1)
game.new_episode()
s = 12345
acts = [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
t0, c0 = time.perf_counter(), time.process_time()
for i in range(steps + warmup):
    if i == warmup:
        t0, c0 = time.perf_counter(), time.process_time()
    s = (s * 1103515245 + 12345) & 0xFFFFFFFF
    game.make_action(acts[(s >> 16) % 4], tics)
    if game.is_episode_finished():
        game.new_episode()
    else:
        screen = game.get_state().screen_buffer
print(f"{steps / (time.perf_counter() - t0):.1f} {(time.process_time() - c0) * 1e6 / steps:.2f}")
game.close()
`;

/**
 * The frame copy alone, 160x120 RGB24 -> 3x72x128 CHW, per frame: in the shim (avz_observe re-copies the current
 * frame from shared memory without stepping) with each filter, next to the same resizes in TypeScript over
 * preallocated buffers (from a native HWC copy of the frame).
 */
function benchResize(paths: VizdoomPaths): string[] {
  const { symbols: lib } = loadVizdoom();
  const g = lib.avz_create();
  const dir = Deno.makeTempDirSync({ prefix: `arcadia-vizdoom-${Deno.pid}-resize-` });
  const ok = (rc: number) => {
    if (rc < 0) throw new Error(lastError(lib));
  };
  try {
    ok(lib.avz_load_config(g, cString(`${paths.scenarios}/basic.cfg`)));
    ok(lib.avz_set_vizdoom_path(g, cString(paths.launcher)));
    ok(lib.avz_set_doom_game_path(g, cString(paths.iwad)));
    ok(lib.avz_set_doom_config_path(g, cString(`${dir}/_vizdoom.ini`)));
    ok(lib.avz_set_screen_format(g, 1));
    ok(lib.avz_set_screen_resolution(g, 0));
    ok(lib.avz_set_window_visible(g, 0));
    for (const a of ["-arcadia-engine", paths.engine, "-arcadia-parent", String(Deno.pid), "-arcadia-cwd", dir]) {
      ok(lib.avz_add_game_arg(g, cString(a)));
    }
    ok(lib.avz_init(g));
    const native = new Uint8Array(160 * 120 * 3), out = new Uint8Array(3 * 72 * 128);
    // Best of 7 batches: on a loaded machine the fastest batch is the least disturbed one.
    const time = (fn: () => void, n = 3000) => {
      for (let i = 0; i < 100; i++) fn();
      let best = Infinity;
      for (let batch = 0; batch < 7; batch++) {
        const t0 = performance.now();
        for (let i = 0; i < n / 7; i++) fn();
        best = Math.min(best, ((performance.now() - t0) * 1000) / Math.ceil(n / 7));
      }
      return best;
    };
    const lines: string[] = [];
    const shim = (w: number, h: number, chw: number, area: number, buf: Uint8Array<ArrayBuffer>) => {
      ok(lib.avz_set_output(g, w, h, chw, area));
      ok(lib.avz_bind(g, null, Deno.UnsafePointer.of(buf), null, null, null, null, null));
      return time(() => lib.avz_observe(g));
    };
    const copy = shim(0, 0, 0, 0, native);
    lines.push(`shim copy 160x120 HWC (memcpy)         ${copy.toFixed(2)} us/frame`);
    lines.push(`shim nearest -> 3x72x128 CHW           ${shim(128, 72, 1, 0, out).toFixed(2)} us/frame`);
    lines.push(`shim area    -> 3x72x128 CHW           ${shim(128, 72, 1, 1, out).toFixed(2)} us/frame`);
    const xs = Int32Array.from({ length: 128 }, (_, x) => Math.floor((x * 160) / 128));
    const ys = Int32Array.from({ length: 72 }, (_, y) => Math.floor((y * 120) / 72));
    const tsNearest = () => {
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < 72; y++) {
          const row = ys[y] * 160, o = (c * 72 + y) * 128;
          for (let x = 0; x < 128; x++) out[o + x] = native[(row + xs[x]) * 3 + c];
        }
      }
    };
    lines.push(`TS   nearest -> 3x72x128 CHW (+copy)   ${(time(tsNearest) + copy).toFixed(2)} us/frame`);
    const rows = new Float32Array(120 * 128 * 3);
    const tsArea = () => {
      // Box filter with fractional edges (same as the shim's area filter), separable.
      const sx = 160 / 128, sy = 120 / 72;
      for (let y = 0; y < 120; y++) {
        for (let x = 0; x < 128; x++) {
          const lo = x * sx, hi = lo + sx;
          for (let c = 0; c < 3; c++) {
            let acc = 0;
            for (let s = Math.floor(lo); s < hi && s < 160; s++) {
              acc += ((Math.min(hi, s + 1) - Math.max(lo, s)) / sx) * native[(y * 160 + s) * 3 + c];
            }
            rows[(y * 128 + x) * 3 + c] = acc;
          }
        }
      }
      for (let y = 0; y < 72; y++) {
        const lo = y * sy, hi = lo + sy;
        for (let x = 0; x < 128; x++) {
          for (let c = 0; c < 3; c++) {
            let acc = 0;
            for (let s = Math.floor(lo); s < hi && s < 120; s++) {
              acc += ((Math.min(hi, s + 1) - Math.max(lo, s)) / sy) * rows[(s * 128 + x) * 3 + c];
            }
            out[(c * 72 + y) * 128 + x] = acc + 0.5;
          }
        }
      }
    };
    lines.push(`TS   area    -> 3x72x128 CHW (+copy)   ${(time(tsArea, 500) + copy).toFixed(2)} us/frame`);
    return lines;
  } finally {
    lib.avz_destroy(g);
    Deno.removeSync(dir, { recursive: true });
  }
}

async function buildCppLoop(paths: VizdoomPaths): Promise<string> {
  const dir = `${cacheRoot()}/vizdoom-bench`;
  Deno.mkdirSync(dir, { recursive: true });
  const src = `${dir}/cpp_loop.cpp`, exe = `${dir}/cpp_loop`;
  Deno.writeTextFileSync(src, CPP_LOOP.replace("#include <vector>", "#include <vector>\n#include <unistd.h>"));
  const libDir = paths.library.slice(0, paths.library.lastIndexOf("/"));
  await run(["g++", "-O2", src, "-o", exe, libDir + "/libarcadia_vizdoom.so", `-Wl,-rpath,${libDir}`], {
    label: "compiling the C++ bench loop",
  });
  return exe;
}

function parseSample(out: string): Sample {
  const [sps, cpuUs] = out.trim().split("\n").at(-1)!.split(" ").map(Number);
  return { sps, cpuUs };
}

async function benchCpp(
  exe: string,
  paths: VizdoomPaths,
  cfg: string,
  format: ScreenFormat,
  tics: number,
): Promise<Sample> {
  const dir = Deno.makeTempDirSync({ prefix: `arcadia-vizdoom-${Deno.pid}-bench-` });
  try {
    const args = [cfg, paths.launcher, paths.engine, paths.iwad, dir, String(FORMAT_IDS[format]), String(tics)];
    const out = await run([exe, ...args, String(STEPS), String(WARMUP)]);
    return parseSample(out);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

async function pythonWithVizdoom(): Promise<string | undefined> {
  const venv = `${cacheRoot()}/vizdoom-bench-python`;
  const python = `${venv}/bin/python`;
  const stamp = `${venv}/arcadia-vizdoom.txt`;
  try {
    if (!exists(stamp)) {
      if (!exists(python)) await run(["python3", "-m", "venv", venv], { label: "creating the bench Python venv" });
      await run([python, "-m", "pip", "install", "-q", `vizdoom==${VIZDOOM_VERSION}`], {
        label: `pip install vizdoom==${VIZDOOM_VERSION}`,
      });
      Deno.writeTextFileSync(stamp, VIZDOOM_VERSION);
    }
    return python;
  } catch (e) {
    say(`Python comparison skipped: ${(e as Error).message.split("\n")[0]}`);
    return undefined;
  }
}

async function benchPython(python: string, cfg: string, format: ScreenFormat, tics: number): Promise<Sample> {
  const dir = Deno.makeTempDirSync({ prefix: `arcadia-vizdoom-${Deno.pid}-py-` });
  try {
    // Run in a private directory: the engine writes _vizdoom.ini and _vizdoom/ into the working directory.
    const out = await run([python, "-c", PY_LOOP, cfg, format, String(tics), String(STEPS), String(WARMUP)], {
      cwd: dir,
    });
    return parseSample(out);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const paths = await ensureVizdoom();
  const cfg = `${paths.scenarios}/basic.cfg`;
  const exe = await buildCppLoop(paths);
  const python = await pythonWithVizdoom();
  const cpu = Deno.readTextFileSync("/proc/cpuinfo").match(/model name\s*:\s*(.*)/)?.[1] ?? "unknown CPU";
  const load = Deno.loadavg().map((x) => x.toFixed(1)).join(" ");
  console.log(
    `vizdoom ${VIZDOOM_VERSION} bench: basic.cfg, 160x120, one env, one thread, ${ROUNDS} interleaved rounds of ${STEPS} steps` +
      ` (${cpu}, ${navigator.hardwareConcurrency} cores, load average ${load})`,
  );
  for (const line of benchResize(paths)) console.log(line);
  for (const { format, tics } of CONFIGS) {
    // Interleaved rounds: the engine's speed drifts with machine load, so each ratio is the median of per-round
    // ratios (both sides measured back to back) and each steps/s figure the best round. The CPU time per step of
    // the driving side (the engine excluded) shows the binding's own cost, which load hardly disturbs.
    const ffi: Sample[] = [], cpp: Sample[] = [], py: Sample[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      ffi.push(benchFfi(format, tics));
      cpp.push(await benchCpp(exe, paths, cfg, format, tics));
      if (python) py.push(await benchPython(python, cfg, format, tics));
    }
    const best = (x: Sample[]) => Math.max(...x.map((s) => s.sps)).toFixed(0).padStart(5);
    const cpu = (x: Sample[]) => median(x.map((s) => s.cpuUs)).toFixed(1).padStart(5);
    const ratio = (a: Sample[], b: Sample[]) => median(a.map((x, i) => x.sps / b[i].sps)).toFixed(2);
    console.log(
      `${format.padEnd(5)} tics=${tics}: steps/s ffi ${best(ffi)} | c++ loop ${best(cpp)} | python ` +
        `${python ? best(py) : "  n/a"} | ffi/c++ ${ratio(ffi, cpp)} | ffi/python ${python ? ratio(ffi, py) : "n/a"}` +
        ` || driver CPU us/step: ffi ${cpu(ffi)} | c++ ${cpu(cpp)} | python ${python ? cpu(py) : "n/a"}`,
    );
  }
}

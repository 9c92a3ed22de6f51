/**
 * Sample Factory 2.1.1 as a reference for `bench/learn_bench.ts`: a venv in the Arcadia cache with
 * `sample-factory`, `vizdoom` and `torch` from PyPI (made at bench time, once), and one timed
 * `sf_examples.vizdoom.train_vizdoom` run whose reported frames/s are parsed from its log.
 *
 * @module
 */

import { cacheRoot, exists, run, say, withLock } from "../envs/_native/provision.ts";
import { SAMPLE_FACTORY_VERSION, VIZDOOM_VERSION } from "../envs/vizdoom/provision.ts";

/** The venv's packages; part of its stamp, so changing them reinstalls. */
const SF_PACKAGES = [`sample-factory==${SAMPLE_FACTORY_VERSION}`, `vizdoom==${VIZDOOM_VERSION}`, "torch"];

/** Terminal color codes. */
const ANSI_COLOR = new RegExp(String.fromCharCode(27) + "\\[[0-9;]*m", "g");

/** Python of a venv with Sample Factory, or why there is none. */
export type SampleFactoryPython = { python: string; versions: string } | { error: string };

/**
 * Creates (once) `<cache>/sf-bench-python` with Sample Factory, ViZDoom and torch from PyPI and checks that
 * `sf_examples.vizdoom` imports; returns the venv's Python or the reason it cannot be had.
 */
export async function ensureSampleFactory(): Promise<SampleFactoryPython> {
  const venv = `${cacheRoot()}/sf-bench-python`;
  const python = `${venv}/bin/python`;
  const stamp = `${venv}/arcadia-sf.txt`;
  try {
    await withLock(`${venv}.lock`, async () => {
      if (exists(stamp) && Deno.readTextFileSync(stamp) === SF_PACKAGES.join(" ")) return;
      if (!exists(python)) await run(["python3", "-m", "venv", venv], { label: "creating the Sample Factory venv" });
      // torch from PyPI is the CUDA build (download.pytorch.org's CPU wheels are not always reachable); it runs on CPU.
      await run([python, "-m", "pip", "install", "-q", ...SF_PACKAGES], {
        label: `pip install ${SF_PACKAGES.join(" ")} (several GB the first time)`,
        log: `${venv}.install.log`,
      });
      Deno.writeTextFileSync(stamp, SF_PACKAGES.join(" "));
    });
    const versions = await run([
      python,
      "-c",
      "from importlib.metadata import version as v; import sf_examples.vizdoom.train_vizdoom; " +
      "print(f\"sample-factory {v('sample-factory')}, torch {v('torch')}, vizdoom {v('vizdoom')}\")",
    ]);
    return { python, versions: versions.split("\n").find((l) => l.startsWith("sample-factory")) ?? "?" };
  } catch (e) {
    return { error: (e as Error).message.split("\n").slice(0, 8).join("\n") };
  }
}

/** Settings of one Sample Factory run (named as its command-line flags). */
export interface SampleFactoryRun {
  /** `doom_basic`, `doom_health_gathering_supreme`, ... */
  env: string;
  /** Seconds of training after its first frames/s report (then SIGINT; startup is not counted). */
  seconds: number;
  /** Rollout worker processes. */
  numWorkers: number;
  /** Envs per worker. */
  numEnvsPerWorker: number;
  /** Trajectory length. */
  rollout: number;
  /** Samples per optimizer step. */
  batchSize: number;
  /** Directory for its run (removed by the caller). */
  trainDir: string;
  /** Receives every `Fps is ...` line as it is printed. */
  onProgress?: (line: string) => void;
}

/** What a Sample Factory run reported. */
export interface SampleFactoryResult {
  /** Frames (env steps x frameskip) reported at the end, `Collected {0: N}`. */
  frames: number;
  /** Whole-run frames/s it reported at the end (`FPS: x`); NaN when it printed none. */
  fps: number;
  /** The last `Fps is (10 sec, 60 sec, 300 sec)` window values. */
  window: { s10: number; s60: number; s300: number } | undefined;
  /** Seconds the process ran (startup included). */
  wallS: number;
  /** Exit code. */
  code: number;
  /** The last lines of its output (for failures). */
  tail: string;
}

/** Runs `python -m sf_examples.vizdoom.train_vizdoom` for `seconds` and parses the frames/s it reports. */
export async function runSampleFactory(python: string, r: SampleFactoryRun): Promise<SampleFactoryResult> {
  const args = [
    "-m",
    "sf_examples.vizdoom.train_vizdoom",
    `--env=${r.env}`,
    `--experiment=${r.env}_bench`,
    `--train_dir=${r.trainDir}`,
    `--num_workers=${r.numWorkers}`,
    `--num_envs_per_worker=${r.numEnvsPerWorker}`,
    "--worker_num_splits=2",
    `--rollout=${r.rollout}`,
    `--batch_size=${r.batchSize}`,
    "--num_batches_per_epoch=1",
    "--num_epochs=1",
    "--env_frameskip=4",
    "--res_w=128",
    "--res_h=72",
    "--device=cpu",
    `--train_for_seconds=${r.seconds}`, // ignored by 2.1.1 (see below); kept for later releases
    "--save_every_sec=100000",
    "--with_wandb=False",
  ];
  const started = performance.now();
  const child = new Deno.Command(python, {
    args,
    stdout: "piped",
    stderr: "piped",
    cwd: r.trainDir, // its engines write _vizdoom.ini into the working directory
    env: { PYTHONUNBUFFERED: "1", OMP_NUM_THREADS: "1" },
  }).spawn();
  // Sample Factory 2.1.1 never advances the clock `--train_for_seconds` reads, so it would not stop by itself: it
  // gets SIGINT (a clean stop that prints the final FPS line) `seconds` after its first report, SIGTERM later.
  let sigintTimer: ReturnType<typeof setTimeout> | undefined;
  const signal = (sig: Deno.Signal) => {
    try {
      child.kill(sig);
    } catch { /* already gone */ }
  };
  const startClock = () => sigintTimer ??= setTimeout(() => signal("SIGINT"), r.seconds * 1000);
  const lines: string[] = [];
  let window: SampleFactoryResult["window"], frames = NaN, fps = NaN;
  const consume = async (stream: ReadableStream<Uint8Array>) => {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const raw of parts) {
        const line = raw.replace(ANSI_COLOR, ""); // its log is colored
        lines.push(line);
        if (lines.length > 400) lines.shift();
        const w = line.match(/Fps is \(10 sec: ([\d.na]+), 60 sec: ([\d.na]+), 300 sec: ([\d.na]+)\)/);
        if (w) {
          startClock();
          window = { s10: Number(w[1]), s60: Number(w[2]), s300: Number(w[3]) };
          r.onProgress?.(line.slice(line.indexOf("Fps is")));
        }
        const c = line.match(/Collected \{0: (\d+)\}, FPS: ([\d.]+)/);
        if (c) [frames, fps] = [Number(c[1]), Number(c[2])];
      }
    }
  };
  // A last resort if it never reports or ignores SIGINT (SIGTERM: its worker processes can still clean up).
  const kill = setTimeout(() => signal("SIGTERM"), (r.seconds + 240) * 1000);
  const [status] = await Promise.all([child.status, consume(child.stdout), consume(child.stderr)]);
  clearTimeout(kill);
  clearTimeout(sigintTimer);
  if (Number.isNaN(frames)) say(`Sample Factory printed no final FPS line (exit ${status.code})`);
  return {
    frames,
    fps,
    window,
    wallS: (performance.now() - started) / 1000,
    code: status.code,
    tail: lines.slice(-30).join("\n"),
  };
}

/**
 * Train an agent on Doom with asynchronous PPO (Sample Factory's recipe), then evaluate it and record a video.
 *
 * ```sh
 * deno run -A examples/doom.ts                                   # doom_health_gathering_supreme, 4M frames
 * deno run -A examples/doom.ts --env doom_basic --train-for-env-steps 500000
 * deno run -A examples/doom.ts --env doom_defend_the_center    # MultiDiscrete: one categorical per button group
 * deno run -A examples/doom.ts --resume                          # continue train_dir/<experiment>
 * deno run -A examples/doom.ts --enjoy --save-video --max-num-episodes 10
 * deno run -A examples/doom.ts --enjoy --load-checkpoint-kind best   # the best policy kept during training
 * ```
 *
 * The run directory `<train-dir>/<experiment>` receives `config.json`, `checkpoint.safetensors`, `best.safetensors`
 * (the policy with the best 100-episode mean return, as Sample Factory keeps), TensorBoard event files,
 * `metrics.jsonl`, `plots/*.svg`, `eval.json` and `replay.mp4`. The first run provisions ViZDoom (download and build
 * into the cache, a few minutes); Ctrl-C stops training after writing a checkpoint.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fail, intFlag, oneOf, PLAY_FLAGS } from "./_cli.ts";
import { type AppoOptions, evaluateAppo, loadAppoModel, trainAppo } from "../algos/appo/appo.ts";
import { meanStd } from "../algos/evaluate.ts";
import { writePlots } from "../algos/plots.ts";
import { writeJsonAtomic } from "../algos/_training.ts";
import { DOOM_SPECS, ensureVizdoom } from "../envs/vizdoom/mod.ts";
import { Mp4Writer } from "../envs/video/mod.ts";
import { setBlasThreads, useBackend } from "../models/mod.ts";

const ENVS = DOOM_SPECS.map((s) => s.id);
const ALGOS = ["appo"] as const;
const BACKENDS = ["cpu", "webgpu", "auto"] as const;
const PRECISIONS = ["highest", "medium"] as const;
const CHECKPOINT_KINDS = ["latest", "best"] as const;
const DOOM_MODULE = new URL("../envs/vizdoom/mod.ts", import.meta.url).href;

const USAGE = `Usage: deno run -A examples/doom.ts [options]

Training (default):
  --env <id>                     Doom env (default doom_health_gathering_supreme); one of:
                                 ${ENVS.join(", ")}
  --algo <appo>                  learner (default appo)
  --train-for-env-steps <int>    frames to train for, env steps x frameskip 4 (default 4000000)
  --num-workers <int>            rollout Workers (default: number of cores)
  --num-envs-per-worker <int>    envs per Worker, split in two groups for double buffering (default 8)
  --experiment <name>            run name (default: <env>__appo__<seed>)
  --train-dir <dir>              parent of run directories (default train_dir)
  --seed <int>                   seed (default 0)
  --resume                       continue <train-dir>/<experiment> from its checkpoint
  --backend <cpu|webgpu|auto>    tensor backend (default cpu)
  --matmul-precision <p>         CPU GEMMs: highest (float32) or medium (bfloat16 products on AMX CPUs,
                                 float32 elsewhere) (default medium)
  --no-video                     skip the evaluation and replay.mp4 after training

Evaluation:
  --enjoy, --eval                evaluate a trained policy instead of training
  --checkpoint <path>            run directory or checkpoint file (default <train-dir>/<experiment>)
  --load-checkpoint-kind <k>     from a run directory: latest (checkpoint.safetensors) or best (best.safetensors,
                                 the policy with the best 100-episode mean return in training) (default latest)
  --max-num-episodes <int>       evaluation episodes (default 10)
  --save-video                   record the first episode to replay.mp4 in the run directory
  --no-render                    accepted for Sample Factory compatibility (we never open a window)
  -h, --help                     show this help`;

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      options: {
        env: { type: "string", default: "doom_health_gathering_supreme" },
        algo: { type: "string", default: "appo" },
        "train-for-env-steps": { type: "string", default: "4000000" },
        "num-workers": { type: "string" },
        "num-envs-per-worker": { type: "string", default: "8" },
        experiment: { type: "string" },
        "train-dir": { type: "string", default: "train_dir" },
        seed: { type: "string", default: "0" },
        resume: { type: "boolean", default: false },
        "matmul-precision": { type: "string", default: "medium" },
        "load-checkpoint-kind": { type: "string", default: "latest" },
        ...PLAY_FLAGS,
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    // node:util names the offending flag ("Unknown option '--x'").
    fail((e as Error).message);
  }
}

/**
 * Plays `episodes` episodes with sampled actions, scoring each by its unshaped `true_objective` where the env reports
 * one (Sample Factory's enjoy script does both; the Hugging Face course bar is set on its numbers), optionally
 * recording the first to `video`, and writes `eval.json`.
 */
async function evaluateRun(
  runDir: string,
  options: { episodes: number; video?: string; kind: "latest" | "best" },
): Promise<void> {
  const { model, options: trained, frames, checkpoint } = await loadAppoModel(runDir, { kind: options.kind });
  console.log(`evaluating ${checkpoint} (${frames} frames) on ${trained.envId} for ${options.episodes} episodes`);
  let writer: Mp4Writer | undefined;
  try {
    const returns = evaluateAppo(model, trained.envId, {
      episodes: options.episodes,
      deterministic: false,
      envKwargs: { ...trained.envKwargs, renderMode: "rgb_array" },
      onFrame: options.video
        ? (frame) => {
          writer ??= new Mp4Writer(options.video!, { width: frame.width, height: frame.height, fps: 35 / 4 });
          writer.addFrame(frame);
        }
        : undefined,
    });
    writer?.close();
    const { mean, std } = meanStd(returns);
    console.log(`reward: ${mean.toFixed(2)} ± ${std.toFixed(2)} over ${returns.length} episodes`);
    console.log(`score (mean - std): ${(mean - std).toFixed(2)}`);
    if (options.video) console.log(`video: ${options.video} (${writer?.frameCount ?? 0} frames)`);
    await writeJsonAtomic(`${runDir}/eval.json`, { checkpoint, frames, returns, mean, std, score: mean - std });
  } finally {
    writer?.close();
  }
}

async function main(argv: string[]): Promise<void> {
  const v = parse(argv);
  if (v.help) {
    console.log(USAGE);
    return;
  }
  const env = oneOf("env", v.env, ENVS);
  oneOf("algo", v.algo, ALGOS);
  const backend = oneOf("backend", v.backend, BACKENDS);
  const matmulPrecision = oneOf("matmul-precision", v["matmul-precision"], PRECISIONS);
  const kind = oneOf("load-checkpoint-kind", v["load-checkpoint-kind"], CHECKPOINT_KINDS);
  const seed = intFlag("seed", v.seed, 0)!;
  const frames = intFlag("train-for-env-steps", v["train-for-env-steps"], 1)!;
  const numWorkers = intFlag("num-workers", v["num-workers"], 1) ?? navigator.hardwareConcurrency;
  const numEnvsPerWorker = intFlag("num-envs-per-worker", v["num-envs-per-worker"], 1)!;
  const episodes = intFlag("max-num-episodes", v["max-num-episodes"], 1)!;
  const runDir = v.checkpoint ?? `${v["train-dir"]}/${v.experiment ?? `${env}__appo__${seed}`}`;
  const evalOnly = v.enjoy || v.eval;

  useBackend(backend);
  await ensureVizdoom();
  if (evalOnly) {
    const dir = runDir.endsWith(".safetensors") ? runDir.slice(0, runDir.lastIndexOf("/")) || "." : runDir;
    await evaluateRun(runDir, { episodes, kind, video: v["save-video"] ? `${dir}/replay.mp4` : undefined });
    return;
  }

  // The learner shares two cores with the rollout Workers: one BLAS thread avoids oversubscription.
  setBlasThreads(1);
  const options: Partial<AppoOptions> & { envId: string } = {
    envId: env,
    envModules: [DOOM_MODULE],
    totalFrames: frames,
    numWorkers,
    numEnvsPerWorker,
    seed,
    runDir,
    resume: v.resume ? runDir : undefined,
    matmulPrecision,
    log: (line) => console.log(line),
  };
  console.log(
    `training ${env} with APPO: ${numWorkers} workers x ${numEnvsPerWorker} envs, ${frames} frames -> ${runDir}`,
  );
  const result = await trainAppo(options);
  console.log(
    `trained ${result.frames} frames at ${result.fps.toFixed(0)} frames/s (stopped by ${result.stoppedBy}); ` +
      `checkpoint ${result.checkpoint}`,
  );
  if (result.best) {
    console.log(
      `best policy: mean return ${result.best.meanReturn.toFixed(2)} over 100 episodes at ${result.best.frames} ` +
        `frames -> ${result.best.checkpoint}`,
    );
  }
  const plots = await writePlots(result.runDir);
  console.log(`plots: ${plots.join(", ")}`);
  if (result.stoppedBy === "signal") {
    console.log(
      `resume with: deno run -A examples/doom.ts --env ${env} --resume --experiment ${runDir.split("/").pop()}`,
    );
    return;
  }
  if (!v["no-video"]) await evaluateRun(result.runDir, { episodes, kind, video: `${result.runDir}/replay.mp4` });
}

if (import.meta.main) await main(Deno.args);

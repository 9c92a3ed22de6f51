/**
 * `examples/atari.ts` end to end on tiny budgets: DQN on Pong and A2C on SpaceInvaders leave a run directory with a
 * loadable checkpoint, TensorBoard files, metrics and plots; `--enjoy --save-video` leaves an H.264 `replay.mp4`;
 * `--resume` continues from the checkpoint's step; bad flags exit with code 2 and name the flag.
 */
import assert from "node:assert/strict";
import { decodeSafetensors } from "../models/mod.ts";
import { readMetrics } from "../algos/logger.ts";
import { probeVideo } from "./_media.ts";

const EXAMPLE = new URL("../examples/atari.ts", import.meta.url).pathname;

async function runExample(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", EXAMPLE, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout), stderr: new TextDecoder().decode(out.stderr) };
}

/** Asserts the files every training run leaves and returns the checkpoint's tensors and metadata. */
async function checkRunDir(runDir: string, algo: string, steps: number) {
  const { metadata, tensors } = decodeSafetensors(await Deno.readFile(`${runDir}/checkpoint.safetensors`));
  assert.equal(JSON.parse(metadata.counters).globalStep, steps);
  const files = [...Deno.readDirSync(runDir)].map((e) => e.name);
  assert.ok(files.some((f) => f.startsWith("events.out.tfevents.")), `TensorBoard file in ${files}`);
  for (const f of ["config.json", "atari.json", "metrics.jsonl"]) assert.ok(files.includes(f), `${f} in ${files}`);
  assert.equal(JSON.parse(await Deno.readTextFile(`${runDir}/config.json`)).algo, algo);
  const metrics = readMetrics(runDir);
  assert.ok(metrics.some((m) => "charts/episodic_return" in m), "an episode ended and was logged");
  assert.ok((await Deno.readTextFile(`${runDir}/plots/episodic_return.svg`)).includes("<svg"));
  return { tensors, metrics };
}

Deno.test("examples/atari.ts: DQN on Pong trains, then --enjoy --save-video records an H.264 replay", async () => {
  const trainDir = await Deno.makeTempDir();
  const common = ["--env", "pong", "--train-dir", trainDir, "--seed", "3"];
  const train = await runExample([
    ...common,
    ...["--train-for-env-steps", "1200", "--learning-starts", "1000", "--buffer-size", "5000", "--no-video"],
  ]);
  assert.equal(train.code, 0, train.stderr.slice(-3000));
  const runDir = `${trainDir}/pong__dqn__3`;
  const { tensors, metrics } = await checkRunDir(runDir, "dqn", 1200);
  assert.deepEqual(tensors["model.q.head.weight"].shape, [6, 512], "Pong's 6 actions");
  assert.ok(metrics.some((m) => "losses/td_loss" in m), "learning started");
  // Game scores, not clipped rewards (Pong's are the same; at least they are integers in [-21, 21]).
  for (const m of metrics.filter((m) => "charts/episodic_return" in m)) {
    assert.ok(Number.isInteger(m["charts/episodic_return"]) && Math.abs(m["charts/episodic_return"]) <= 21);
  }

  const enjoy = await runExample([...common, "--enjoy", "--save-video", "--max-num-episodes", "1"]);
  assert.equal(enjoy.code, 0, enjoy.stderr.slice(-3000));
  assert.match(enjoy.stdout, /reward: -?[\d.]+ ± [\d.]+ over 1 episodes/);
  const frames = Number(/video: .* \((\d+) frames\)/.exec(enjoy.stdout)?.[1]);
  const video = probeVideo(`${runDir}/replay.mp4`);
  assert.equal(video.codec_name, "h264");
  assert.deepEqual([video.width, video.height], [160, 210]);
  assert.ok(frames > 100);
  assert.equal(Number(video.nb_read_frames), frames);
  assert.equal(JSON.parse(await Deno.readTextFile(`${runDir}/eval.json`)).returns.length, 1);
  await Deno.remove(trainDir, { recursive: true });
});

Deno.test("examples/atari.ts: A2C on SpaceInvaders logs game scores, evaluates and resumes", async () => {
  const trainDir = await Deno.makeTempDir();
  const common = ["--env", "ALE/SpaceInvaders-v5", "--num-envs", "4", "--train-dir", trainDir];
  const train = await runExample([...common, "--train-for-env-steps", "1600", "--no-video"]);
  assert.equal(train.code, 0, train.stderr.slice(-3000));
  assert.match(train.stdout, /with A2C: 4 envs \(worker\)/, "A2C is SpaceInvaders' default, in Workers");
  const runDir = `${trainDir}/space_invaders__a2c__1`;
  const { tensors, metrics } = await checkRunDir(runDir, "a2c", 1600);
  assert.deepEqual(tensors["model.actor.weight"].shape, [6, 512]);
  // Space Invaders scores 5-30 a hit: returns above 1 per step show the rewards were clipped only for learning.
  const returns = metrics.filter((m) => "charts/episodic_return" in m).map((m) => m["charts/episodic_return"]);
  assert.ok(returns.every((r) => r % 5 === 0) && returns.some((r) => r > 21), `game scores: ${returns}`);

  const enjoy = await runExample([...common, "--enjoy", "--max-num-episodes", "1"]);
  assert.equal(enjoy.code, 0, enjoy.stderr.slice(-3000));
  assert.match(enjoy.stdout, /reward: [\d.]+ ± [\d.]+ over 1 episodes/);

  const mismatch = await runExample([...common, "--algo", "ppo", "--experiment", "space_invaders__a2c__1", "--resume"]);
  assert.equal(mismatch.code, 2, mismatch.stderr);
  assert.match(mismatch.stderr, /--algo ppo differs from the run being resumed .*: a2c/);
  const resumed = await runExample([...common, "--train-for-env-steps", "1800", "--resume", "--no-video"]);
  assert.equal(resumed.code, 0, resumed.stderr.slice(-3000));
  const steps = readMetrics(runDir).map((m) => m.step);
  assert.equal(steps.at(-1), 1800);
  assert.ok(steps.every((s, k) => k === 0 || s >= steps[k - 1]), `steps continue from 1600: ${steps}`);
  await Deno.remove(trainDir, { recursive: true });
});

Deno.test("examples/atari.ts rejects bad flags with exit code 2 and names them", async () => {
  const cases: [string[], RegExp][] = [
    [["--env", "pongg"], /--env must be an Atari game .* got 'pongg'; did you mean pong/],
    [["--algo", "sac"], /--algo must be one of dqn, a2c, ppo, got 'sac'/],
    [["--frobnicate"], /frobnicate/],
    [["--num-envs", "zero"], /--num-envs must be an integer >= 1, got 'zero'/],
    [["--sticky-actions", "2"], /--sticky-actions must be a probability in \[0, 1\], got '2'/],
    [["--env", "space_invaders", "--buffer-size", "1000"], /--buffer-size applies to --algo dqn only/],
  ];
  for (const [args, message] of cases) {
    const bad = await runExample(args);
    assert.equal(bad.code, 2, `${args}: ${bad.stderr}`);
    assert.match(bad.stderr, message);
  }
  // A replay buffer larger than memory is refused before anything is allocated, naming the flag.
  const trainDir = await Deno.makeTempDir();
  const huge = await runExample(["--buffer-size", "1000000000", "--train-dir", trainDir]);
  await Deno.remove(trainDir, { recursive: true });
  assert.equal(huge.code, 2, huge.stderr);
  assert.match(huge.stderr, /--buffer-size 1000000000: ReplayBuffer: capacity 1000000000 .* lower the capacity/);
});

import assert from "node:assert/strict";
import {
  Box,
  CartPoleEnv,
  checkEnv,
  ClipReward,
  Discrete,
  Env,
  type EpisodeStatistics,
  FrameStack,
  make,
  NormalizeObservation,
  NormalizeReward,
  RecordEpisodeStatistics,
  type ResetOptions,
  type ResetResult,
  type StepResult,
  TimeLimit,
  TransformObservation,
} from "../envs/mod.ts";

const reference = JSON.parse(Deno.readTextFileSync(new URL("./fixtures/wrappers_reference.json", import.meta.url)));

/** Replays the fixture's observations, rewards and terminations (the same env as the Python script's). */
class ScriptedEnv extends Env<Float32Array, number> {
  readonly observationSpace: Box<"float32"> = new Box(-Infinity, Infinity, { shape: [3] });
  readonly actionSpace: Discrete = new Discrete(2);
  #i = 0;
  #t = 0;
  reset(options: ResetOptions = {}): ResetResult<Float32Array> {
    this.seedFromReset(options);
    return [Float32Array.from(reference.observations[this.#i++]), {}];
  }
  step(action: number): StepResult<Float32Array> {
    this.actionSpace.assertContains(action, "action");
    const t = this.#t++;
    return [
      Float32Array.from(reference.observations[this.#i++]),
      reference.rewards[t],
      reference.terminated[t],
      false,
      {},
    ];
  }
}

/** A uint8 "image" env whose frame t is filled with t (mod 256), for stacking tests. */
class CounterEnv extends Env<Uint8Array, number> {
  readonly observationSpace: Box<"uint8"> = new Box(0, 255, { shape: [2, 3], dtype: "uint8" });
  readonly actionSpace: Discrete = new Discrete(1);
  readonly #frame = new Uint8Array(6); // reused, like a native env's buffer
  #t = 0;
  #ready = false;
  reset(options: ResetOptions = {}): ResetResult<Uint8Array> {
    this.seedFromReset(options);
    this.#t = 100 + this.rng.integers(0, 50);
    this.#ready = true;
    return [this.#frame.fill(this.#t), {}];
  }
  step(action: number): StepResult<Uint8Array> {
    if (!this.#ready) throw new Error("CounterEnv: call reset() before step()");
    this.actionSpace.assertContains(action, "action");
    this.#t = (this.#t + 1) % 256;
    return [this.#frame.fill(this.#t), 1, false, false, {}];
  }
}

Deno.test("TimeLimit truncates on exactly the maxEpisodeSteps-th step and restarts its count on reset", () => {
  using env = new TimeLimit(new ScriptedEnv(), { maxEpisodeSteps: 3 });
  env.reset();
  assert.deepEqual([env.step(0)[3], env.step(0)[3], env.step(0)[3]], [false, false, true]);
  assert.equal(env.elapsedSteps, 3);
  env.reset();
  assert.equal(env.elapsedSteps, 0);
  assert.equal(env.step(0)[3], false);
});

Deno.test("TimeLimit rejects a non-positive or fractional limit", () => {
  assert.throws(() => new TimeLimit(new CartPoleEnv(), { maxEpisodeSteps: 0 }), RangeError);
  assert.throws(() => new TimeLimit(new CartPoleEnv(), { maxEpisodeSteps: 1.5 }), RangeError);
});

Deno.test("make() wraps in a TimeLimit unless maxEpisodeSteps is 0", () => {
  assert.ok(make("CartPole-v1") instanceof TimeLimit);
  assert.ok(make("CartPole-v1", { maxEpisodeSteps: 0 }) instanceof CartPoleEnv);
  const env = make("CartPole-v1", { maxEpisodeSteps: 7 }) as TimeLimit;
  assert.equal(env.maxEpisodeSteps, 7);
});

Deno.test("RecordEpisodeStatistics puts { r, l, t } in info only on the step that ends the episode", () => {
  using env = new RecordEpisodeStatistics(new TimeLimit(new CartPoleEnv(), { maxEpisodeSteps: 5 }));
  env.reset({ options: { state: [0, 0, 0, 0] } });
  for (let t = 0; t < 4; t++) assert.equal(env.step(t % 2)[4].episode, undefined);
  const [, , , truncated, info] = env.step(0);
  assert.ok(truncated);
  const stats = info.episode as EpisodeStatistics;
  assert.equal(stats.r, 5);
  assert.equal(stats.l, 5);
  assert.ok(stats.t >= 0 && stats.t < 10);
  assert.equal(Math.round(stats.t * 1e6) / 1e6, stats.t);
  assert.deepEqual(env.returnQueue, [5]);
  assert.deepEqual(env.lengthQueue, [5]);
  assert.equal(env.episodeCount, 1);
});

Deno.test("RecordEpisodeStatistics keeps only the last bufferLength episodes and honours statsKey", () => {
  using env = new RecordEpisodeStatistics(new TimeLimit(new CartPoleEnv(), { maxEpisodeSteps: 1 }), {
    bufferLength: 3,
    statsKey: "ep",
  });
  for (let i = 0; i < 5; i++) {
    env.reset({ seed: i });
    const info = env.step(0)[4];
    assert.equal((info.ep as EpisodeStatistics).l, 1);
  }
  assert.equal(env.episodeCount, 5);
  assert.equal(env.returnQueue.length, 3);
  assert.equal(env.timeQueue.length, 3);
});

Deno.test("RecordEpisodeStatistics records the return before reward wrappers applied outside it", () => {
  using env = new ClipReward(
    new RecordEpisodeStatistics(new TimeLimit(new CartPoleEnv(), { maxEpisodeSteps: 2 })),
    { max: 0.5 },
  );
  env.reset({ seed: 0 });
  assert.equal(env.step(0)[1], 0.5);
  const [, reward, , , info] = env.step(1);
  assert.equal(reward, 0.5);
  assert.equal((info.episode as EpisodeStatistics).r, 2);
});

Deno.test("ClipReward clips into [min, max] and validates its bounds", () => {
  const clip = new ClipReward(new ScriptedEnv(), { min: -1, max: 1 });
  assert.deepEqual([clip.reward(-3), clip.reward(0.25), clip.reward(7)], [-1, 0.25, 1]);
  assert.equal(new ClipReward(new ScriptedEnv(), { min: 0 }).reward(1e9), 1e9);
  assert.throws(() => new ClipReward(new ScriptedEnv(), {}), RangeError);
  assert.throws(() => new ClipReward(new ScriptedEnv(), { min: 1, max: 0 }), RangeError);
});

Deno.test("NormalizeObservation matches Gymnasium's outputs on the scripted env", () => {
  using env = new NormalizeObservation(new ScriptedEnv());
  const expected: number[][] = reference.normalizedObservations;
  const got: number[][] = [[...env.reset()[0]]];
  for (let t = 0; t < reference.rewards.length; t++) {
    const [obs, , terminated] = env.step(0);
    got.push([...obs]);
    if (terminated) got.push([...env.reset()[0]]);
  }
  assert.equal(got.length, expected.length);
  // Gymnasium keeps the statistics in float32, we keep float64: agreement to float32 precision.
  got.forEach((row, i) =>
    row.forEach((v, j) =>
      assert.ok(
        Math.abs(v - expected[i][j]) <= 2e-5 * Math.max(1, Math.abs(expected[i][j])),
        `${i},${j}: ${v} vs ${expected[i][j]}`,
      )
    )
  );
});

Deno.test("NormalizeObservation gives an unbounded float32 Box and freezes with updateRunningMean = false", () => {
  using env = new NormalizeObservation(new CounterEnv());
  assert.deepEqual(env.observationSpace.shape, [2, 3]);
  assert.equal(env.observationSpace.dtype, "float32");
  assert.ok(!env.observationSpace.isBounded());
  env.reset({ seed: 0 });
  env.step(0);
  env.updateRunningMean = false;
  const count = env.obsRms.count, mean = env.obsRms.mean.slice();
  env.step(0);
  assert.equal(env.obsRms.count, count);
  assert.deepEqual(env.obsRms.mean, mean);
  assert.throws(() => new NormalizeObservation(new ScriptedEnv(), { epsilon: 0 }), RangeError);
});

Deno.test("NormalizeReward matches Gymnasium's outputs, restarting the return on termination only", () => {
  using env = new NormalizeReward(new ScriptedEnv(), { gamma: 0.9 });
  const expected: number[] = reference.normalizedRewardsGamma09;
  env.reset();
  for (let t = 0; t < expected.length; t++) {
    const [, reward, terminated] = env.step(0);
    assert.ok(
      Math.abs(reward - expected[t]) <= 1e-9 * Math.max(1, Math.abs(expected[t])),
      `${t}: ${reward} vs ${expected[t]}`,
    );
    if (terminated) env.reset();
  }
  assert.throws(() => new NormalizeReward(new ScriptedEnv(), { gamma: 1.5 }), RangeError);
});

Deno.test("FrameStack stacks oldest to newest along a new leading axis, padded with the reset frame", () => {
  using env = new FrameStack(new CounterEnv(), { stackSize: 3 });
  assert.deepEqual(env.observationSpace.shape, [3, 2, 3]);
  assert.equal(env.observationSpace.dtype, "uint8");
  const [obs0] = env.reset({ seed: 1 });
  const f0 = obs0[0];
  assert.deepEqual([...obs0], Array(18).fill(f0));
  const frames = (obs: Uint8Array) => [0, 1, 2].map((i) => obs.subarray(i * 6, (i + 1) * 6));
  for (let t = 1; t <= 7; t++) {
    const [obs] = env.step(0);
    assert.ok(env.observationSpace.contains(obs));
    const expected = [t - 2, t - 1, t].map((s) => f0 + Math.max(s, 0));
    frames(obs).forEach((frame, i) => assert.deepEqual([...frame], Array(6).fill(expected[i]), `step ${t} frame ${i}`));
  }
});

Deno.test("FrameStack with zero padding fills the stack with zeros after reset", () => {
  using env = new FrameStack(new CounterEnv(), { stackSize: 2, padding: "zero" });
  const [obs] = env.reset({ seed: 0 });
  assert.deepEqual([...obs.subarray(0, 6)], Array(6).fill(0));
  assert.ok(obs[6] >= 100);
});

Deno.test("FrameStack allocates nothing per step: it cycles through stackSize preallocated views", () => {
  using env = new FrameStack(new CounterEnv(), { stackSize: 4 });
  env.reset({ seed: 0 });
  const seen = new Set<Uint8Array>();
  const first = env.step(0)[0];
  for (let t = 0; t < 20; t++) seen.add(env.step(0)[0]);
  assert.equal(seen.size, 4);
  assert.ok(seen.has(first));
  assert.equal(first.buffer, [...seen][1].buffer); // all views of one ring buffer
});

Deno.test("FrameStack rejects non-Box observation spaces and bad stack sizes", () => {
  assert.throws(() => new FrameStack(new CounterEnv(), { stackSize: 0 }), RangeError);
  const dictEnv = new TransformObservation(new CounterEnv(), (o: Uint8Array) => o, {
    observationSpace: new Discrete(3) as never,
  });
  assert.throws(() => new FrameStack(dictEnv as never, { stackSize: 2 }), TypeError);
});

Deno.test("TransformObservation applies the function and reports the new space", () => {
  const space = new Box(0, 1, { shape: [1] }) as Box<"float32">;
  using env = new TransformObservation(new CartPoleEnv(), (obs: Float32Array) => Float32Array.of(obs[2] > 0 ? 1 : 0), {
    observationSpace: space,
  });
  assert.equal(env.observationSpace, space);
  const [obs] = env.reset({ options: { state: [0, 0, 0.01, 0] } });
  assert.deepEqual([...obs], [1]);
  assert.equal(new TransformObservation(new CartPoleEnv(), (o: Float32Array) => o).observationSpace.shape[0], 4);
});

Deno.test("every wrapper passes checkEnv on top of a registered env", () => {
  checkEnv(new RecordEpisodeStatistics(make("CartPole-v1")));
  checkEnv(new ClipReward(make("MountainCar-v0"), { min: -0.5 }));
  // Running statistics outlive reset(), so the same seed does not give the same normalized values.
  checkEnv(new NormalizeObservation(make("Acrobot-v1") as Env<Float32Array, unknown>), { checkDeterminism: false });
  checkEnv(new NormalizeReward(make("Pendulum-v1")), { checkDeterminism: false });
  checkEnv(new FrameStack(make("CartPole-v1") as Env<Float32Array, unknown>, { stackSize: 4 }), { steps: 200 });
  checkEnv(new FrameStack(new CounterEnv(), { stackSize: 3 }));
  checkEnv(
    new TransformObservation(
      make("CartPole-v1") as Env<Float32Array, unknown>,
      (o: Float32Array) => o.map((v) => 2 * v),
      {
        observationSpace: new Box(-Infinity, Infinity, { shape: [4] }) as Box<"float32">,
      },
    ),
  );
});

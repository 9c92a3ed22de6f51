import assert from "node:assert/strict";
import {
  AcrobotEnv,
  CartPoleEnv,
  checkEnv,
  type Env,
  make,
  MountainCarEnv,
  PendulumEnv,
  registered,
  TimeLimit,
} from "../envs/mod.ts";

const IDS = ["CartPole-v1", "MountainCar-v0", "Acrobot-v1", "Pendulum-v1"];

interface Case {
  id: string;
  name: string;
  state0: number[];
  obs0: number[];
  actions: number[];
  states: number[][];
  obs: number[][];
  rewards: number[];
  terminated: boolean[];
  truncated: boolean[];
}

const fixtures: { cases: Case[] } = JSON.parse(
  Deno.readTextFileSync(new URL("./fixtures/classic_trajectories.json", import.meta.url)),
);

type ClassicEnv = Env<Float32Array, unknown> & { state: Float64Array };

function unwrappedOf(env: Env<unknown, unknown>): ClassicEnv {
  return env.unwrapped as ClassicEnv;
}

function toAction(id: string, a: number): unknown {
  return id === "Pendulum-v1" ? Float32Array.of(a) : a;
}

/** Within `tol` relative to the magnitude (absolute below 1). */
function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    if (!(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)))) {
      assert.fail(`${what}[${i}]: got ${a}, Gymnasium gave ${e} (tolerance ${tol})`);
    }
  }
}

for (const c of fixtures.cases) {
  Deno.test(`${c.id} follows Gymnasium's trajectory: ${c.name}`, () => {
    using env = make(c.id) as Env<Float32Array, unknown>;
    const [obs0] = env.reset({ options: { state: c.state0 } });
    assertClose(obs0, c.obs0.map(Math.fround), 1e-6, "obs0");
    for (let t = 0; t < c.actions.length; t++) {
      const [obs, reward, terminated, truncated] = env.step(toAction(c.id, c.actions[t]));
      assertClose(unwrappedOf(env).state, c.states[t], 1e-6, `step ${t} state`);
      assertClose(obs, c.obs[t].map(Math.fround), 1e-6, `step ${t} obs`);
      assertClose([reward], [c.rewards[t]], 1e-6, `step ${t} reward`);
      assert.equal(terminated, c.terminated[t], `step ${t} terminated`);
      assert.equal(truncated, c.truncated[t], `step ${t} truncated`);
    }
  });

  Deno.test(`${c.id} matches Gymnasium's one-step transitions to 1e-9: ${c.name}`, () => {
    // Teacher forcing: each step starts from Gymnasium's recorded state, so errors cannot compound.
    using env = make(c.id, { maxEpisodeSteps: 0 }) as Env<Float32Array, unknown>;
    for (let t = 0; t < c.actions.length; t++) {
      env.reset({ options: { state: t === 0 ? c.state0 : c.states[t - 1] } });
      const [obs, reward, terminated] = env.step(toAction(c.id, c.actions[t]));
      assertClose(unwrappedOf(env).state, c.states[t], 1e-9, `step ${t} state`);
      assertClose(obs, c.obs[t].map(Math.fround), 1e-6, `step ${t} obs`);
      assertClose([reward], [c.rewards[t]], 1e-9, `step ${t} reward`);
      assert.equal(terminated, c.terminated[t], `step ${t} terminated`);
    }
  });
}

Deno.test("the fixtures cover termination and truncation of every env", () => {
  for (const id of IDS) {
    const cases = fixtures.cases.filter((c) => c.id === id);
    assert.ok(cases.some((c) => c.truncated.at(-1)), `${id}: no truncated case`);
    if (id !== "Pendulum-v1") assert.ok(cases.some((c) => c.terminated.at(-1)), `${id}: no terminated case`);
  }
});

Deno.test("the classic ids are registered with Gymnasium's limits and thresholds", () => {
  const expected: Record<string, [number, number | undefined]> = {
    "CartPole-v1": [500, 475],
    "MountainCar-v0": [200, -110],
    "Acrobot-v1": [500, -100],
    "Pendulum-v1": [200, undefined],
  };
  for (const [id, [steps, threshold]] of Object.entries(expected)) {
    assert.ok(registered().includes(id));
    using env = make(id);
    assert.ok(env instanceof TimeLimit);
    assert.equal(env.maxEpisodeSteps, steps);
    assert.equal(env.spec?.maxEpisodeSteps, steps);
    assert.equal(env.spec?.rewardThreshold, threshold);
  }
});

for (const id of IDS) {
  Deno.test(`${id} passes checkEnv`, () => {
    checkEnv(make(id));
  });

  Deno.test(`${id} passes checkEnv without wrappers`, () => {
    checkEnv(make(id, { maxEpisodeSteps: 0 }), { steps: 300 });
  });

  Deno.test(`${id} gives the same trajectory for the same seed and actions`, () => {
    const run = () => {
      using env = make(id) as Env<Float32Array, unknown>;
      env.actionSpace.seed(7);
      const out: number[] = [...env.reset({ seed: 3 })[0]];
      for (let t = 0; t < 300; t++) {
        const [obs, reward, terminated, truncated] = env.step(env.actionSpace.sample());
        out.push(...obs, reward, +terminated, +truncated);
        if (terminated || truncated) out.push(...env.reset()[0]);
      }
      return out;
    };
    assert.deepEqual(run(), run());
  });

  Deno.test(`${id} gives different starts for different seeds`, () => {
    using env = make(id) as Env<Float32Array, unknown>;
    const [a] = env.reset({ seed: 1 });
    const [b] = env.reset({ seed: 2 });
    assert.notDeepEqual([...a], [...b]);
  });

  Deno.test(`${id} throws "call reset() before step()" when stepped before reset`, () => {
    using env = make(id);
    assert.throws(() => env.step(env.actionSpace.sample()), /call reset\(\) before step\(\)/);
  });

  Deno.test(`${id} rejects a malformed options.state`, () => {
    using env = make(id);
    assert.throws(() => env.reset({ options: { state: [1] } }), TypeError);
  });
}

Deno.test("discrete classic envs reject actions outside their space with a RangeError naming space and value", () => {
  for (const env of [new CartPoleEnv(), new MountainCarEnv(), new AcrobotEnv()]) {
    env.reset({ seed: 0 });
    const n = env.actionSpace.n;
    assert.throws(
      () => env.step(n),
      (e: unknown) => e instanceof RangeError && e.message.includes(String(n)) && e.message.includes(`Discrete(${n})`),
    );
    assert.throws(() => env.step(0.5), RangeError);
    assert.throws(() => env.step(-1), RangeError);
  }
});

Deno.test("Pendulum rejects torques outside [-2, 2] and wrong-length actions with a RangeError", () => {
  using env = new PendulumEnv();
  env.reset({ seed: 0 });
  assert.throws(
    () => env.step(Float32Array.of(2.5)),
    (e: unknown) => e instanceof RangeError && /2\.5.*Box/.test(e.message),
  );
  assert.throws(() => env.step(Float32Array.of(0, 0)), RangeError);
  assert.throws(() => env.step(Float32Array.of(NaN)), RangeError);
});

Deno.test("reset draws the initial state from Gymnasium's ranges", () => {
  const ranges: [ClassicEnv, number[], number[]][] = [
    [new CartPoleEnv() as ClassicEnv, [-0.05, -0.05, -0.05, -0.05], [0.05, 0.05, 0.05, 0.05]],
    [new MountainCarEnv() as ClassicEnv, [-0.6, 0], [-0.4, 0]],
    [new AcrobotEnv() as ClassicEnv, [-0.1, -0.1, -0.1, -0.1], [0.1, 0.1, 0.1, 0.1]],
    [new PendulumEnv() as ClassicEnv, [-Math.PI, -1], [Math.PI, 1]],
  ];
  for (const [env, low, high] of ranges) {
    for (let seed = 0; seed < 200; seed++) {
      env.reset({ seed });
      env.state.forEach((v, i) => assert.ok(v >= low[i] && v <= high[i], `${env.constructor.name} state[${i}]=${v}`));
    }
  }
});

Deno.test("reset({ options: { low, high } }) narrows the initial range as in Gymnasium", () => {
  using env = new CartPoleEnv();
  env.reset({ seed: 0, options: { low: 0.2, high: 0.3 } });
  env.state.forEach((v) => assert.ok(v >= 0.2 && v < 0.3));
  assert.throws(() => env.reset({ options: { low: 1, high: 0 } }), RangeError);
});

Deno.test("CartPole reset({ options: { state } }) starts from that exact state", () => {
  using env = new CartPoleEnv();
  const [obs] = env.reset({ options: { state: [0.1, -0.2, 0.03, 0.4] } });
  assert.deepEqual([...obs], [0.1, -0.2, 0.03, 0.4].map(Math.fround));
  assert.deepEqual([...env.state], [0.1, -0.2, 0.03, 0.4]);
});

Deno.test("CartPole gives reward 0 for steps past termination, like Gymnasium", () => {
  using env = new CartPoleEnv();
  env.reset({ options: { state: [0, 0, 0.2, 2] } });
  const [, r1, terminated] = env.step(1);
  assert.equal(terminated, true);
  assert.equal(r1, 1);
  assert.equal(env.step(1)[1], 0);
});

Deno.test("CartPole with suttonBartoReward gives 0 per step and -1 on termination", () => {
  using env = make("CartPole-v1", { kwargs: { suttonBartoReward: true } }) as Env<Float32Array, number>;
  env.reset({ options: { state: [0, 0, 0.19, 2] } });
  assert.equal(env.step(1)[1], -1);
  env.reset({ options: { state: [0, 0, 0, 0] } });
  assert.equal(env.step(1)[1], 0);
});

Deno.test("CartPole renders Gymnasium's 600x400 picture: white sky, black cart and track, brown pole", () => {
  using env = new CartPoleEnv();
  assert.equal(env.render(), undefined);
  env.reset({ options: { state: [0, 0, 0, 0] } });
  const frame = env.render()!;
  assert.equal(frame.width, 600);
  assert.equal(frame.height, 400);
  // Gymnasium draws with y up from the bottom (pygame y, then a vertical flip).
  const pixel = (
    x: number,
    yUp: number,
  ) => [...frame.data.subarray(((399 - yUp) * 600 + x) * 3, ((399 - yUp) * 600 + x) * 3 + 3)];
  assert.deepEqual(pixel(10, 300), [255, 255, 255]);
  assert.deepEqual(pixel(10, 100), [0, 0, 0]);
  assert.deepEqual(pixel(290, 95), [0, 0, 0]);
  assert.deepEqual(pixel(300, 200), [202, 152, 101]);
  assert.deepEqual(pixel(300, 107), [129, 132, 203]);
  // Moving the cart right moves its pixels right.
  env.reset({ options: { state: [1, 0, 0, 0] } });
  assert.deepEqual(env.render() && pixel(425, 90), [0, 0, 0]);
});

Deno.test("MountainCar, Acrobot and Pendulum render frames of Gymnasium's sizes with their colours", () => {
  const cases: [string, number[], number, number, number[]][] = [
    ["MountainCar-v0", [-0.5, 0], 600, 400, [204, 204, 0]], // the flag
    ["Acrobot-v1", [0.3, -0.5, 0, 0], 500, 500, [0, 204, 204]], // the links
    ["Pendulum-v1", [0.4, 0], 500, 500, [204, 77, 77]], // the rod
  ];
  for (const [id, state, width, height, color] of cases) {
    using env = make(id);
    assert.equal(env.render(), undefined, `${id} before reset`);
    env.reset({ options: { state } });
    const frame = env.render()!;
    assert.deepEqual([frame.width, frame.height, frame.data.length], [width, height, width * height * 3], id);
    let found = false;
    for (let i = 0; i < frame.data.length && !found; i += 3) {
      found = frame.data[i] === color[0] && frame.data[i + 1] === color[1] && frame.data[i + 2] === color[2];
    }
    assert.ok(found, `${id}: no pixel of colour ${color}`);
  }
});

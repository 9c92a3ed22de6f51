import assert from "node:assert/strict";
import { CartPoleEnv, checkEnv, type Env, make } from "../envs/mod.ts";

const IDS = ["CartPole-v1"];

for (const id of IDS) {
  Deno.test(`${id} passes checkEnv`, () => {
    checkEnv(make(id));
  });

  Deno.test(`${id} gives the same trajectory for the same seed and actions`, () => {
    const run = () => {
      using env = make(id) as Env<Float32Array, unknown>;
      env.actionSpace.seed(7);
      const out: number[] = [...env.reset({ seed: 3 })[0]];
      for (let t = 0; t < 30; t++) {
        const [obs, reward, terminated, truncated] = env.step(env.actionSpace.sample());
        out.push(...obs, reward, +terminated, +truncated);
        if (terminated || truncated) out.push(...env.reset()[0]);
      }
      return out;
    };
    assert.deepEqual(run(), run());
  });

  Deno.test(`${id} throws "call reset() before step()" when stepped before reset`, () => {
    using env = make(id);
    assert.throws(() => env.step(env.actionSpace.sample()), /call reset\(\) before step\(\)/);
  });
}

Deno.test("CartPole rejects actions outside Discrete(2) with a RangeError naming space and value", () => {
  using env = new CartPoleEnv();
  env.reset({ seed: 0 });
  assert.throws(() => env.step(2), (e: unknown) => e instanceof RangeError && /2.*Discrete\(2\)/.test(e.message));
  assert.throws(() => env.step(0.5), RangeError);
  assert.throws(() => env.step(-1), RangeError);
});

Deno.test("CartPole reset({ options: { state } }) starts from that exact state", () => {
  using env = new CartPoleEnv();
  const [obs] = env.reset({ options: { state: [0.1, -0.2, 0.03, 0.4] } });
  assert.deepEqual([...obs], [0.1, -0.2, 0.03, 0.4].map(Math.fround));
  assert.deepEqual([...env.state], [0.1, -0.2, 0.03, 0.4]);
});

Deno.test("CartPole-v1 truncates at 500 steps", () => {
  using env = make("CartPole-v1") as Env<Float32Array, number>;
  let [obs] = env.reset({ options: { state: [0, 0, 0, 0] } });
  // Pushing toward where the pole falls keeps it up for the whole episode.
  let t = 0, truncated = false, terminated = false;
  while (!truncated && !terminated) {
    [obs, , terminated, truncated] = env.step(obs[2] + obs[3] > 0 ? 1 : 0);
    t++;
  }
  assert.equal(terminated, false);
  assert.equal(t, 500);
});

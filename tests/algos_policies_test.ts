import assert from "node:assert/strict";
import { MlpActorCritic, MlpQNetwork, NatureCnnActorCritic, NatureCnnQNetwork } from "../algos/policies.ts";
import { TrainRng } from "../algos/_training.ts";
import { mean, noGrad, Rng, tensor } from "../models/mod.ts";

Deno.test("Nature CNN actor-critic and Q-network map uint8 frame stacks to logits, values and Q-values", () => {
  const ac = new NatureCnnActorCritic([4, 84, 84], 6, { rng: new Rng(0) });
  const frames = new Uint8Array(2 * 4 * 84 * 84).map((_, i) => (i * 7) % 256);
  const x = tensor(Float32Array.from(frames), { shape: [2, 4, 84, 84] });
  const { logits, value } = noGrad(() => ac.forward(x));
  assert.deepEqual([logits.shape, value.shape], [[2, 6], [2]]);
  // Policy head gain 0.01: near-uniform initial policy.
  assert.ok(logits.toArray().every((v) => Math.abs(v) < 0.5));
  const actions = ac.act(frames, new Int32Array(2), { deterministic: false, rng: new TrainRng(0) });
  assert.ok(actions.every((a) => a >= 0 && a < 6));
  const q = new NatureCnnQNetwork([4, 84, 84], 6, { rng: new Rng(0), dueling: true });
  assert.deepEqual(noGrad(() => q.forward(x)).shape, [2, 6]);
  assert.throws(() => new NatureCnnActorCritic([4, 20, 20], 2, { rng: new Rng(0) }), /too small/);
});

Deno.test("dueling Q-values average to the state value over actions", () => {
  const q = new MlpQNetwork([3], 4, { rng: new Rng(1), dueling: true });
  const x = tensor([[0.1, -0.2, 0.3], [1, 2, 3]]);
  const values = noGrad(() => q.forward(x));
  const v = noGrad(() => q.valueHead!.forward(q.body.forward(x)));
  const avg = noGrad(() => mean(values, { axis: 1 }));
  for (let i = 0; i < 2; i++) assert.ok(Math.abs(avg.data[i] - v.data[i]) < 1e-5);
});

Deno.test("MLP actor-critic uses CleanRL's orthogonal init: policy head gain 0.01, value head gain 1", () => {
  const ac = new MlpActorCritic([4], 2, { rng: new Rng(0) });
  const rowNorms = (w: Float32Array, cols: number) =>
    Array.from({ length: w.length / cols }, (_, r) => Math.hypot(...w.subarray(r * cols, (r + 1) * cols)));
  const head = ac.actor.namedParameters().find(([n]) => n === "4.weight")![1];
  const vhead = ac.critic.namedParameters().find(([n]) => n === "4.weight")![1];
  for (const n of rowNorms(head.data, 64)) assert.ok(Math.abs(n - 0.01) < 1e-5, String(n));
  for (const n of rowNorms(vhead.data, 64)) assert.ok(Math.abs(n - 1) < 1e-5, String(n));
  const greedy = ac.act(new Float32Array(8), new Int32Array(2), { deterministic: true });
  assert.deepEqual(Array.from(greedy), [greedy[0], greedy[0]]);
});

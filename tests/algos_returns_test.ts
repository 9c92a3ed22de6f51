import assert from "node:assert/strict";
import { computeGae, computeNStepReturns, type RolloutReturnsInput } from "../algos/returns.ts";

// Two envs, three steps, flat [T, N] (index t * 2 + i). Env 0 runs on; env 1 is truncated at t=0 (final value 4)
// and terminates at t=1.
function rollout(): RolloutReturnsInput {
  return {
    rewards: Float32Array.of(1, 1, 2, 1, 3, 1),
    values: Float32Array.of(0.5, 1, 1, 1, 1.5, 1),
    terminated: Uint8Array.of(0, 0, 0, 1, 0, 0),
    truncated: Uint8Array.of(0, 1, 0, 0, 0, 0),
    finalValues: Float32Array.of(0, 4, 0, 0, 0, 0),
    nextValues: Float32Array.of(2, 3),
  };
}

function close(actual: Float32Array, expected: number[], tol = 1e-5): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) < tol, `index ${i}: ${actual[i]} != ${expected[i]}`);
  }
}

function outputs(n: number) {
  return { advantages: new Float32Array(n).fill(NaN), returns: new Float32Array(n).fill(NaN) };
}

Deno.test("GAE matches hand-computed values with termination, truncation and bootstrap", () => {
  const out = outputs(6);
  computeGae(rollout(), out, { gamma: 0.9, lambda: 0.8 });
  // env 0: δ2 = 3 + .9·2 − 1.5 = 3.3; δ1 = 2 + .9·1.5 − 1 = 2.35; δ0 = 1 + .9·1 − .5 = 1.4; γλ = .72
  //        A2 = 3.3, A1 = 2.35 + .72·3.3 = 4.726, A0 = 1.4 + .72·4.726 = 4.80272
  // env 1: A2 = 1 + .9·3 − 1 = 2.7; t=1 terminal: A1 = 1 − 1 = 0; t=0 truncated: A0 = 1 + .9·4 − 1 = 3.6
  close(out.advantages, [4.80272, 3.6, 4.726, 0, 3.3, 2.7]);
  close(out.returns, [5.30272, 4.6, 5.726, 1, 4.8, 3.7]);
});

Deno.test("GAE with lambda 0 gives one-step TD errors", () => {
  const out = outputs(6);
  computeGae(rollout(), out, { gamma: 0.9, lambda: 0 });
  close(out.advantages, [1.4, 3.6, 2.35, 0, 3.3, 2.7]);
});

Deno.test("n-step returns match hand-computed values and equal GAE with lambda 1", () => {
  const out = outputs(6);
  computeNStepReturns(rollout(), out, { gamma: 0.9 });
  // env 0: R2 = 3 + .9·2 = 4.8, R1 = 2 + .9·4.8 = 6.32, R0 = 1 + .9·6.32 = 6.688
  // env 1: R2 = 1 + .9·3 = 3.7, R1 = 1 (terminal), R0 = 1 + .9·4 = 4.6 (truncated: bootstrap from final value)
  close(out.returns, [6.688, 4.6, 6.32, 1, 4.8, 3.7]);
  close(out.advantages, [6.188, 3.6, 5.32, 0, 3.3, 2.7]);
  const gae = outputs(6);
  computeGae(rollout(), gae, { gamma: 0.9, lambda: 1 });
  close(gae.returns, Array.from(out.returns));
});

Deno.test("without finalValues truncation is treated like termination", () => {
  const input = { ...rollout(), finalValues: undefined };
  const out = outputs(6);
  computeNStepReturns(input, out, { gamma: 0.9 });
  assert.equal(out.returns[1], 1);
  const gae = outputs(6);
  computeGae(input, gae, { gamma: 0.9, lambda: 0.95 });
  assert.equal(gae.advantages[1], 0);
});

Deno.test("return functions reject mismatched buffer sizes, naming the buffer", () => {
  const out = { advantages: new Float32Array(5), returns: new Float32Array(6) };
  assert.throws(() => computeGae(rollout(), out, { gamma: 0.9, lambda: 0.9 }), /advantages has 5 entries, expected 6/);
  assert.throws(
    () => computeNStepReturns({ ...rollout(), nextValues: new Float32Array(4) }, outputs(6), { gamma: 0.9 }),
    /not a multiple/,
  );
});

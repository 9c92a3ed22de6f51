import assert from "node:assert/strict";
import { ReplayBuffer, replayMemoryBytes, SumTree } from "../algos/replay_buffer.ts";
import { TrainRng } from "../algos/_training.ts";

// Frames are 2x2 uint8 holding a unique 32-bit id, so every sampled frame can be traced to where it came from.
const FRAME = 4, K = 4;

function frameOf(id: number): number[] {
  return [id & 255, (id >>> 8) & 255, (id >>> 16) & 255, id >>> 24];
}
function idAt(a: ArrayLike<number>, offset: number): number {
  return (a[offset] | (a[offset + 1] << 8) | (a[offset + 2] << 16)) + a[offset + 3] * 2 ** 24;
}
function stackIds(a: ArrayLike<number>, offset: number): number[] {
  return Array.from({ length: K }, (_, j) => idAt(a, offset + j * FRAME));
}

interface Truth {
  stack: number[];
  action: number;
  reward: number;
  done: "terminated" | "truncated" | null;
  next: number[];
}

/** Drive the buffer with what FrameStack(reset padding) over a vector env would deliver; return the ground truth. */
function fill(rb: ReplayBuffer, numEnvs: number, steps: number, seed: number): Map<number, Truth> {
  const rng = new TrainRng(seed);
  let nextId = 1;
  const stacks: number[][] = [];
  const flat = (ss: number[][]) => Uint8Array.from(ss.flatMap((s) => s.flatMap(frameOf)));
  for (let e = 0; e < numEnvs; e++) {
    const id = nextId++;
    stacks.push([id, id, id, id]);
  }
  rb.start(flat(stacks));
  const truth = new Map<number, Truth>();
  for (let t = 0; t < steps; t++) {
    const actions = new Int32Array(numEnvs), rewards = new Float32Array(numEnvs);
    const terminated = new Uint8Array(numEnvs), truncated = new Uint8Array(numEnvs);
    const finals: number[][] = [], nexts: number[][] = [];
    for (let e = 0; e < numEnvs; e++) {
      actions[e] = rng.int(6);
      rewards[e] = rng.int(100);
      const after = [...stacks[e].slice(1), nextId++];
      const u = rng.uniform();
      terminated[e] = u < 0.08 ? 1 : 0;
      truncated[e] = u >= 0.08 && u < 0.12 ? 1 : 0;
      finals.push(after);
      const done = terminated[e] ? "terminated" : truncated[e] ? "truncated" : null;
      truth.set(stacks[e][K - 1], { stack: stacks[e], action: actions[e], reward: rewards[e], done, next: after });
      if (done) {
        const id = nextId++;
        stacks[e] = [id, id, id, id];
      } else stacks[e] = after;
      nexts.push(stacks[e]);
    }
    rb.add({ actions, rewards, terminated, truncated, nextObs: flat(nexts), finalObs: flat(finals) });
  }
  return truth;
}

Deno.test("frame stacks are rebuilt exactly from single stored frames, never across episode starts", () => {
  const rb = new ReplayBuffer({ capacity: 120, numEnvs: 2, obsShape: [K, 2, 2], dtype: "uint8", frameStack: K });
  const truth = fill(rb, 2, 400, 3); // wraps the rings several times
  const rng = new TrainRng(1);
  let crossings = 0;
  for (let round = 0; round < 20; round++) {
    const batch = rb.sample(32, rng);
    for (let b = 0; b < 32; b++) {
      const obs = stackIds(batch.obs, b * K * FRAME);
      const t = truth.get(obs[K - 1]);
      assert.ok(t, `sampled frame ${obs[K - 1]} was never a current observation`);
      assert.deepEqual(obs, t.stack);
      assert.deepEqual(stackIds(batch.nextObs, b * K * FRAME), t.next);
      assert.equal(batch.actions[b], t.action);
      assert.equal(batch.rewards[b], t.reward);
      assert.equal(batch.discounts[b], t.done === "terminated" ? 0 : Math.fround(0.99));
      if (new Set(obs).size < K) crossings++; // padded stacks near an episode start
    }
  }
  assert.ok(crossings > 0, "expected some stacks near episode starts to be padded with the start frame");
});

Deno.test("n-step returns stop at episode ends and bootstrap with γ^m", () => {
  const rb = new ReplayBuffer({ capacity: 50, numEnvs: 1, obsShape: [1], dtype: "float32", nStep: 3, gamma: 0.5 });
  rb.start([0]);
  // Episode: obs 0 -r1-> 1 -r2-> 2 -r4-> 3 -r8-> 4 (terminated); then a new episode 10 -r16-> 11 -r32-> 12 ...
  const steps: [number, number, boolean][] = [[1, 1, false], [2, 2, false], [3, 4, false], [4, 8, true]];
  for (const [next, r, term] of steps) {
    rb.add({
      actions: [0],
      rewards: [r],
      terminated: [term ? 1 : 0],
      truncated: [0],
      nextObs: [term ? 10 : next],
      finalObs: [next],
    });
  }
  for (let t = 0; t < 4; t++) {
    rb.add({
      actions: [1],
      rewards: [16 * 2 ** t],
      terminated: [0],
      truncated: [0],
      nextObs: [11 + t],
      finalObs: [11 + t],
    });
  }
  const expected = new Map<number, [number, number, number]>([
    [0, [1 + 0.5 * 2 + 0.25 * 4, 0.125, 3]],
    [1, [2 + 0.5 * 4 + 0.25 * 8, 0, 4]], // reaches the terminal step: no bootstrap
    [2, [4 + 0.5 * 8, 0, 4]],
    [3, [8, 0, 4]],
    [10, [16 + 0.5 * 32 + 0.25 * 64, 0.125, 13]],
    [11, [32 + 0.5 * 64 + 0.25 * 128, 0.125, 14]],
  ]);
  const seen = new Set<number>();
  const rng = new TrainRng(0);
  for (let i = 0; i < 30; i++) {
    const batch = rb.sample(8, rng);
    for (let b = 0; b < 8; b++) {
      const e = expected.get(batch.obs[b]);
      assert.ok(e, `sampled obs ${batch.obs[b]} has no complete 3-step window`);
      assert.deepEqual([batch.rewards[b], batch.discounts[b], batch.nextObs[b]], e);
      seen.add(batch.obs[b]);
    }
  }
  assert.equal(seen.size, expected.size);
});

Deno.test("memory size is computed up front and an oversized buffer is refused before allocating", () => {
  const atari = { capacity: 1_000_000, numEnvs: 1, obsShape: [4, 84, 84], dtype: "uint8" as const, frameStack: 4 };
  const bytes = replayMemoryBytes(atari);
  // One 84x84 frame per step plus 9 bytes of action/reward/flags: about 7.07 GB, not 4x (stacks) or 8x (next obs).
  assert.ok(bytes > 1_000_000 * (84 * 84 + 9) && bytes < 1_000_100 * (84 * 84 + 9), String(bytes));
  assert.throws(
    () => new ReplayBuffer({ ...atari, maxBytes: 2 ** 30 }),
    (e: Error) => e instanceof RangeError && e.message.includes(`${bytes} bytes`) && /6\.\d+ GiB/.test(e.message),
  );
  const small = new ReplayBuffer({ capacity: 1000, numEnvs: 4, obsShape: [4], dtype: "float32" });
  assert.equal(small.bytes, replayMemoryBytes({ capacity: 1000, numEnvs: 4, obsShape: [4], dtype: "float32" }));
});

Deno.test("sum-tree keeps totals and samples proportionally to priority", () => {
  const tree = new SumTree(5);
  [1, 0, 3, 6, 0].forEach((p, i) => tree.set(i, p));
  assert.equal(tree.total, 10);
  assert.deepEqual([0, 0.99, 1, 3.99, 4, 9.99].map((x) => tree.find(x)), [0, 0, 2, 2, 3, 3]);
  tree.set(3, 2);
  assert.equal(tree.total, 6);
  const rng = new TrainRng(4);
  const counts = [0, 0, 0, 0, 0];
  for (let i = 0; i < 30000; i++) counts[tree.find(rng.uniform() * tree.total)]++;
  assert.equal(counts[1] + counts[4], 0);
  for (const [i, p] of [[0, 1 / 6], [2, 3 / 6], [3, 2 / 6]]) {
    assert.ok(Math.abs(counts[i] / 30000 - p) < 0.015, `leaf ${i}: ${counts[i] / 30000} vs ${p}`);
  }
});

Deno.test("prioritized replay favours high-priority transitions and weights them down", () => {
  const rb = new ReplayBuffer({
    capacity: 100,
    numEnvs: 1,
    obsShape: [1],
    dtype: "float32",
    prioritizedAlpha: 1,
  });
  rb.start([0]);
  for (let t = 1; t <= 20; t++) {
    rb.add({ actions: [0], rewards: [t], terminated: [0], truncated: [0], nextObs: [t], finalObs: [t] });
  }
  const rng = new TrainRng(2);
  const indexOf = new Map<number, number>();
  while (indexOf.size < 20) {
    const b = rb.sample(16, rng);
    for (let j = 0; j < 16; j++) indexOf.set(b.obs[j], b.indices[j]);
  }
  // Transition from obs 5 gets priority 9, the 19 others 1: P(5) = 9 / 28.
  rb.updatePriorities([...indexOf.values()], [...indexOf.keys()].map((o) => (o === 5 ? 9 : 1)));
  let fives = 0, total = 0;
  for (let i = 0; i < 200; i++) {
    const b = rb.sample(16, rng, { beta: 1 });
    const allFives = b.obs.every((o) => o === 5);
    for (let j = 0; j < 16; j++) {
      total++;
      if (b.obs[j] === 5) fives++;
      // Weights (N·P)^-β normalized by the batch max: 1/9 for the favoured transition, 1 for the others.
      if (!allFives) assert.ok(Math.abs(b.weights[j] - (b.obs[j] === 5 ? 1 / 9 : 1)) < 1e-6, String(b.weights[j]));
    }
  }
  assert.ok(Math.abs(fives / total - 9 / 28) < 0.03, `obs 5 sampled ${fives}/${total}`);
});

import assert from "node:assert/strict";
import { Box, Dict, Discrete, MultiDiscrete, Rng } from "../envs/mod.ts";

Deno.test("Rng gives the same stream for the same seed and different streams for different seeds", () => {
  const a = new Rng(42), b = new Rng(42), c = new Rng(43);
  const xs = Array.from({ length: 10 }, () => a.nextUint32());
  assert.deepEqual(xs, Array.from({ length: 10 }, () => b.nextUint32()));
  assert.notDeepEqual(xs, Array.from({ length: 10 }, () => c.nextUint32()));
  // Seeds above 2^32 are not truncated to their low bits.
  assert.notEqual(new Rng(1).nextUint32(), new Rng(1 + 2 ** 32).nextUint32());
});

Deno.test("Rng.random is in [0, 1) with mean near 1/2", () => {
  const rng = new Rng(0);
  let sum = 0;
  for (let i = 0; i < 20000; i++) {
    const u = rng.random();
    assert.ok(u >= 0 && u < 1);
    sum += u;
  }
  assert.ok(Math.abs(sum / 20000 - 0.5) < 0.01);
});

Deno.test("Rng.integers covers [low, high) uniformly and rejects empty ranges", () => {
  const rng = new Rng(1);
  const counts = new Array(6).fill(0);
  for (let i = 0; i < 60000; i++) counts[rng.integers(0, 6)]++;
  counts.forEach((n) => assert.ok(Math.abs(n - 10000) < 500, `count ${n}`));
  assert.equal(rng.integers(5, 6), 5);
  assert.throws(() => rng.integers(3, 3), RangeError);
});

Deno.test("Rng.normal has mean 0 and standard deviation 1", () => {
  const rng = new Rng(2);
  let s = 0, s2 = 0;
  const n = 40000;
  for (let i = 0; i < n; i++) {
    const z = rng.normal();
    s += z;
    s2 += z * z;
  }
  assert.ok(Math.abs(s / n) < 0.02);
  assert.ok(Math.abs(Math.sqrt(s2 / n - (s / n) ** 2) - 1) < 0.02);
});

Deno.test("Rng rejects non-finite seeds", () => {
  assert.throws(() => new Rng(NaN), TypeError);
  assert.throws(() => new Rng(Infinity), TypeError);
});

Deno.test("Discrete samples lie in {start, ..., start + n - 1} and reach every value", () => {
  const space = new Discrete(3, { start: -1 });
  space.seed(0);
  const seen = new Set<number>();
  for (let i = 0; i < 300; i++) {
    const x = space.sample();
    assert.ok(space.contains(x));
    seen.add(x);
  }
  assert.deepEqual([...seen].sort(), [-1, 0, 1]);
  assert.equal(String(space), "Discrete(3, start=-1)");
});

Deno.test("Discrete.contains rejects out-of-range, fractional and non-number values", () => {
  const space = new Discrete(2);
  for (const x of [-1, 2, 0.5, NaN, Infinity, "1", null, undefined, [0], Int32Array.of(0)]) {
    assert.equal(space.contains(x), false, String(x));
  }
  assert.ok(space.contains(0) && space.contains(1));
  assert.throws(() => new Discrete(0), RangeError);
  assert.throws(() => new Discrete(1.5), RangeError);
});

Deno.test("assertContains throws a RangeError naming the space and the value", () => {
  assert.throws(
    () => new Discrete(2).assertContains(5, "action"),
    (e: unknown) => e instanceof RangeError && e.message === "action 5 is not in Discrete(2)",
  );
  assert.throws(
    () => new Box(0, 1, { shape: [2] }).assertContains(Float32Array.of(0, 2), "obs"),
    /obs Float32Array\[0, 2\]/,
  );
});

Deno.test("Box samples from bounded, half-bounded and unbounded dimensions stay in the space", () => {
  const space = new Box([-1, 0, -Infinity, -Infinity], [1, Infinity, 0, Infinity]);
  space.seed(3);
  let below = 0;
  for (let i = 0; i < 2000; i++) {
    const x = space.sample();
    assert.ok(x instanceof Float32Array && space.contains(x));
    if (x[3] < 0) below++;
  }
  assert.ok(below > 800 && below < 1200, "the unbounded dimension is symmetric");
});

Deno.test("Box samples can land exactly on float32 bounds and the bounds are in the space", () => {
  const space = new Box(0.1, 0.3, { shape: [3] });
  assert.ok(space.contains(Float32Array.of(0.1, 0.2, 0.3)));
  assert.ok(!space.contains(Float32Array.of(0.1, 0.2, Math.fround(0.3) + 1e-7)));
  space.seed(0);
  for (let i = 0; i < 1000; i++) assert.ok(space.contains(space.sample()));
});

Deno.test("Box.contains checks the typed-array type, length and NaN", () => {
  const box = new Box(-1, 1, { shape: [2, 2] });
  assert.ok(box.contains(new Float32Array(4)));
  assert.ok(!box.contains(new Float32Array(3)));
  assert.ok(!box.contains(new Float64Array(4)));
  assert.ok(!box.contains([0, 0, 0, 0]));
  assert.ok(!box.contains(Float32Array.of(0, 0, 0, NaN)));
  const pixels = new Box(0, 255, { shape: [2], dtype: "uint8" });
  assert.ok(pixels.contains(Uint8Array.of(0, 255)));
  assert.ok(!pixels.contains(Float32Array.of(0, 255)));
  assert.deepEqual(box.shape, [2, 2]);
  assert.equal(box.size, 4);
});

Deno.test("uint8 Box samples are integers within their bounds", () => {
  const space = new Box(10, 12, { shape: [50], dtype: "uint8" });
  space.seed(1);
  const x = space.sample();
  assert.ok(x instanceof Uint8Array && space.contains(x));
  assert.ok(x.some((v) => v === 10) && x.some((v) => v === 12));
});

Deno.test("Box validates its arguments", () => {
  assert.throws(() => new Box(0, 1), TypeError);
  assert.throws(() => new Box([0, 1], [1]), RangeError);
  assert.throws(() => new Box(1, 0, { shape: [1] }), RangeError);
  assert.throws(() => new Box(0, 1, { shape: [-1] }), RangeError);
  assert.ok(new Box(-1, 1, { shape: [1] }).isBounded());
  assert.ok(!new Box(-Infinity, 1, { shape: [1] }).isBounded());
});

Deno.test("MultiDiscrete samples and contains", () => {
  const space = new MultiDiscrete([2, 5, 1]);
  space.seed(4);
  for (let i = 0; i < 200; i++) assert.ok(space.contains(space.sample()));
  assert.ok(!space.contains(Int32Array.of(2, 0, 0)));
  assert.ok(!space.contains(Int32Array.of(0, 0)));
  assert.ok(!space.contains(Int32Array.of(0, -1, 0)));
  assert.ok(!space.contains([0, 0, 0]));
  assert.throws(() => new MultiDiscrete([2, 0]), RangeError);
});

Deno.test("Dict samples contain every key and reject missing or extra keys", () => {
  const space = new Dict({ screen: new Box(0, 255, { shape: [2], dtype: "uint8" }), key: new Discrete(3) });
  space.seed(5);
  const x = space.sample();
  assert.ok(space.contains(x));
  assert.ok(!space.contains({ screen: x.screen }));
  assert.ok(!space.contains({ ...x, extra: 1 }));
  assert.ok(!space.contains(null));
  assert.equal(space.size, 3);
});

Deno.test("seeding a space makes its samples reproducible", () => {
  const make = () => new Dict({ a: new Box(-1, 1, { shape: [3] }), b: new MultiDiscrete([4, 4]), c: new Discrete(9) });
  const s1 = make(), s2 = make();
  s1.seed(11);
  s2.seed(11);
  const draw = (s: ReturnType<typeof make>) =>
    Array.from({ length: 5 }, () => {
      const x = s.sample();
      return [...x.a, ...x.b, x.c];
    });
  const d1 = draw(s1);
  assert.deepEqual(d1, draw(s2));
  s2.seed(12);
  assert.notDeepEqual(d1, draw(s2));
});

// safetensors: round trips within TS and with Python's `safetensors` package; checkpoints with optimizer state.
import assert from "node:assert/strict";
import { pythonPath } from "./_python.ts";
import {
  Adam,
  Conv2d,
  decodeSafetensors,
  encodeSafetensors,
  Linear,
  loadCheckpoint,
  loadSafetensors,
  mean,
  ReLU,
  Rng,
  safeTensor,
  saveCheckpoint,
  saveSafetensors,
  Sequential,
  square,
  zeros,
} from "../models/mod.ts";

const PY_READ_WRITE = `
import json, sys
try:
    import numpy as np
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file
except ImportError as e:
    print("IMPORT_ERROR", e)
    sys.exit(3)
src, dst = sys.argv[1], sys.argv[2]
t = load_file(src)
with safe_open(src, framework="numpy") as f:
    meta = f.metadata()
print(json.dumps({k: {"dtype": str(v.dtype), "shape": list(v.shape), "data": v.reshape(-1).tolist()} for k, v in t.items()} | {"__metadata__": meta}))
save_file({
    "f": np.arange(6, dtype=np.float32).reshape(2, 3) / 4,
    "i": np.array([-3, 2**40, 7], dtype=np.int64),
    "u": np.array([[0, 255]], dtype=np.uint8),
}, dst, metadata={"written_by": "python"})
`;

async function python(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let out;
  try {
    out = await new Deno.Command(pythonPath(), { args, stdout: "piped", stderr: "piped" }).output();
  } catch (err) {
    throw new Error(`${pythonPath()} not found: run \`deno run -A tests/setup.ts\` (makes the test venv)`, {
      cause: err,
    });
  }
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("safetensors round trip in TypeScript keeps dtypes, shapes, values and metadata", () => {
  const bytes = encodeSafetensors({
    a: safeTensor(new Float32Array([1.5, -2, 3]), [3, 1]),
    b: safeTensor(new BigInt64Array([1n, -(2n ** 40n)]), [2]),
    c: safeTensor(new Uint8Array([7]), [1]),
    d: safeTensor(new Int32Array([-5, 6]), [1, 2]),
  }, { note: "hi" });
  // Header length is a multiple of 8 (alignment of the data section).
  assert.equal(Number(new DataView(bytes.buffer).getBigUint64(0, true)) % 8, 0);
  const f = decodeSafetensors(bytes);
  assert.deepEqual(Array.from(f.tensors.a.data as Float32Array), [1.5, -2, 3]);
  assert.deepEqual(f.tensors.a.shape, [3, 1]);
  assert.deepEqual(Array.from(f.tensors.b.data as BigInt64Array), [1n, -(2n ** 40n)]);
  assert.equal(f.tensors.c.dtype, "U8");
  assert.deepEqual(Array.from(f.tensors.d.data as Int32Array), [-5, 6]);
  assert.deepEqual(f.metadata, { note: "hi" });
});

Deno.test("safetensors interoperates with Python's safetensors package (both directions)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ours = `${dir}/ours.safetensors`, theirs = `${dir}/theirs.safetensors`;
    await saveSafetensors(ours, {
      "layer.weight": safeTensor(new Float32Array([0.25, -1, 2, 3.5, 1e-8, -0]), [2, 3]),
      "steps": safeTensor(new BigInt64Array([12345678901n]), [1]),
      "mask": safeTensor(new Uint8Array([1, 0, 1]), [3]),
    }, { metadata: { global_step: "42" } });
    const r = await python(["-c", PY_READ_WRITE, ours, theirs]);
    if (r.code === 3) {
      assert.fail(`Python's safetensors is not importable (${r.stdout.trim()}): run \`pip install safetensors numpy\``);
    }
    assert.equal(r.code, 0, `python failed:\n${r.stderr}`);
    const got = JSON.parse(r.stdout);
    assert.deepEqual(got["layer.weight"].shape, [2, 3]);
    assert.equal(got["layer.weight"].dtype, "float32");
    assert.deepEqual(got["layer.weight"].data, [0.25, -1, 2, 3.5, Math.fround(1e-8), -0]);
    assert.deepEqual(got.steps, { dtype: "int64", shape: [1], data: [12345678901] });
    assert.deepEqual(got.mask.data, [1, 0, 1]);
    assert.deepEqual(got.__metadata__, { global_step: "42" });
    const back = await loadSafetensors(theirs);
    assert.deepEqual(Array.from(back.tensors.f.data as Float32Array), [0, 0.25, 0.5, 0.75, 1, 1.25]);
    assert.deepEqual(back.tensors.f.shape, [2, 3]);
    assert.deepEqual(Array.from(back.tensors.i.data as BigInt64Array), [-3n, 2n ** 40n, 7n]);
    assert.deepEqual(back.tensors.u.shape, [1, 2]);
    assert.deepEqual(Array.from(back.tensors.u.data as Uint8Array), [0, 255]);
    assert.deepEqual(back.metadata, { written_by: "python" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function net(seed: number) {
  const rng = new Rng(seed);
  return new Sequential([new Conv2d(2, 3, 3, { rng }), new ReLU(), new Linear(4, 2, { rng })]);
}

Deno.test("checkpoint restores weights and optimizer state; training continues identically", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/ckpt.safetensors`;
    const a = net(1);
    const optA = new Adam(a.parameters(), { lr: 0.01 });
    const x = zeros([1, 2, 6, 6]).clone();
    x.data.forEach((_, i) => (x.data[i] = Math.sin(i)));
    const trainStep = (m: Sequential, opt: Adam) => {
      opt.zeroGrad();
      mean(square(m.forward(x))).backward();
      opt.step();
    };
    trainStep(a, optA);
    trainStep(a, optA);
    await saveCheckpoint(path, { model: a, optimizer: optA, metadata: { global_step: "2" } });
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["ckpt.safetensors"], "no temp files left");
    const b = net(99);
    const optB = new Adam(b.parameters(), { lr: 0.5 });
    const meta = await loadCheckpoint(path, { model: b, optimizer: optB });
    assert.equal(meta.global_step, "2");
    assert.equal(optB.lr, 0.01);
    trainStep(a, optA);
    trainStep(b, optB);
    a.parameters().forEach((p, i) => assert.deepEqual(b.parameters()[i].toArray(), p.toArray()));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loading a checkpoint into a different model lists every mismatch and changes nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/ckpt.safetensors`;
    await saveCheckpoint(path, { model: net(1) });
    const other = new Sequential([new Conv2d(2, 5, 3), new ReLU(), new Linear(4, 2), new Linear(2, 2)]);
    const before = other.parameters().map((p) => p.toArray());
    await assert.rejects(() => loadCheckpoint(path, { model: other }), (err: Error) => {
      assert.match(err.message, /'model\.0\.weight' has shape \[3,2,3,3\], model has \[5,2,3,3\]/);
      assert.match(err.message, /missing 'model\.3\.weight'/);
      assert.match(err.message, /'model\.0\.bias' has shape \[3\], model has \[5\]/);
      return true;
    });
    other.parameters().forEach((p, i) => assert.deepEqual(p.toArray(), before[i]));
    await assert.rejects(
      () => loadCheckpoint(path, { model: net(2), optimizer: new Adam(net(2).parameters()) }),
      /optim_step/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

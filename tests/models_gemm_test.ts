// GEMM: BLAS (through FFI) vs the pure-TypeScript kernel, every transpose combination, odd sizes, alpha/beta.
import assert from "node:assert/strict";
import { closeBlas, cpuInfo, gemm, gemmRows, setMatmulPrecision } from "../models/backends/cpu.ts";
import { gemmTs } from "../models/backends/gemm_ts.ts";
import { detectCoreType, openBlas } from "../models/backends/blas/ffi.ts";
import { nativeKernels } from "../models/backends/native/native.ts";

function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => ((s = (s * 1664525 + 1013904223) >>> 0) / 4294967296) * 2 - 1);
}

function naive(
  ta: boolean,
  tb: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  b: Float32Array,
  beta: number,
  c: Float32Array,
) {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
      out[i * n + j] = alpha * s + (beta === 0 ? 0 : beta * c[i * n + j]);
    }
  }
  return out;
}

const SIZES: [number, number, number][] = [[1, 1, 1], [3, 5, 7], [4, 4, 4], [17, 9, 33], [64, 65, 63], [1, 512, 3136], [
  130,
  7,
  1,
]];

Deno.test("BLAS is found and passes its self-test (install libopenblas0-pthread if this fails)", () => {
  const info = cpuInfo();
  assert.ok(
    info.blas !== null,
    `no BLAS loaded (${info.note}). Install it: apt-get install -y libopenblas0-pthread, or set ARCADIA_BLAS`,
  );
  assert.ok(info.threads >= 1);
});

Deno.test("detectCoreType reads /proc/cpuinfo on Linux x86-64", () => {
  const core = detectCoreType();
  if (Deno.build.os === "linux" && Deno.build.arch === "x86_64") {
    const flags = Deno.readTextFileSync("/proc/cpuinfo");
    if (/\bavx512f\b/.test(flags) && /\bavx512bw\b/.test(flags)) assert.equal(core, "SkylakeX");
  } else assert.equal(core, null);
});

for (const ta of [false, true]) {
  for (const tb of [false, true]) {
    Deno.test(`gemm transA=${ta} transB=${tb}: BLAS and pure TS match a float64 reference`, () => {
      for (const [m, n, k] of SIZES) {
        for (const [alpha, beta] of [[1, 0], [0.5, 1], [-2, 0.25]]) {
          const a = rand(m * k, m + 7 * k), b = rand(k * n, n + 3 * k), c0 = rand(m * n, m * n + 1);
          const want = naive(ta, tb, m, n, k, alpha, a, b, beta, c0);
          const c1 = c0.slice(), c2 = c0.slice();
          gemmTs(ta, tb, m, n, k, alpha, a, b, beta, c1);
          gemm(ta, tb, m, n, k, alpha, a, b, beta, c2);
          for (let i = 0; i < want.length; i++) {
            const tol = 1e-5 * (Math.sqrt(k) + Math.abs(want[i]));
            assert.ok(Math.abs(c1[i] - want[i]) <= tol, `pure TS ${m}x${n}x${k} [${i}]: ${c1[i]} vs ${want[i]}`);
            assert.ok(Math.abs(c2[i] - want[i]) <= tol, `backend ${m}x${n}x${k} [${i}]: ${c2[i]} vs ${want[i]}`);
          }
        }
      }
    });
  }
}

Deno.test("gemm works on subarray views (offset pointers through FFI)", () => {
  const big = rand(100, 5);
  const a = big.subarray(10, 16), b = big.subarray(40, 46);
  const c = new Float32Array(4), ref = new Float32Array(4);
  gemm(false, false, 2, 2, 3, 1, a, b, 0, c);
  gemmTs(false, false, 2, 2, 3, 1, a, b, 0, ref);
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(c[i] - ref[i]) < 1e-6);
});

Deno.test("closeBlas is idempotent and BLAS reloads on next use", () => {
  closeBlas();
  closeBlas();
  const c = new Float32Array(1);
  gemm(false, false, 1, 1, 1, 1, new Float32Array([2]), new Float32Array([3]), 0, c);
  assert.equal(c[0], 6);
});

Deno.test("a failed BLAS load lists every path tried and keeps the first error as cause", () => {
  let caught: Error | undefined;
  try {
    openBlas({ paths: ["/nonexistent/libA.so", "/nonexistent/libB.so"], pickCore: false });
  } catch (err) {
    caught = err as Error;
  }
  assert.ok(caught, "openBlas should throw");
  assert.match(caught.message, /\/nonexistent\/libA\.so[\s\S]*\/nonexistent\/libB\.so/);
  assert.match(caught.message, /ARCADIA_BLAS/);
  assert.ok(caught.cause instanceof Error);
});

async function runChild(flags: string[], env: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const code = `
    import { cpuInfo, matmul, tensor } from ${JSON.stringify(new URL("../models/mod.ts", import.meta.url).href)};
    const y = matmul(tensor([[1, 2], [3, 4]]), tensor([[5], [6]]));
    console.log(JSON.stringify({ ...cpuInfo(), y: y.toArray() }));
  `;
  // `deno eval` always grants every permission, so run a file.
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(file, code);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, file],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output().finally(() => Deno.remove(file));
  const stdout = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(stdout.trim().split("\n").at(-1)!);
}

Deno.test("without FFI permission the backend falls back to pure TypeScript GEMM and says why", async () => {
  const info = await runChild(["--allow-read", "--allow-env"]);
  assert.equal(info.blas, null);
  assert.equal(info.core, "pure-ts");
  assert.match(String(info.note), /allow-ffi/);
  assert.deepEqual(info.y, [17, 39]);
});

Deno.test("ARCADIA_NO_BLAS=1 disables BLAS; OPENBLAS_CORETYPE from the environment is respected", async () => {
  const off = await runChild(["-A"], { ARCADIA_NO_BLAS: "1" });
  assert.equal(off.core, "pure-ts");
  assert.deepEqual(off.y, [17, 39]);
  const forced = await runChild(["-A"], { OPENBLAS_CORETYPE: "Haswell" });
  if (forced.blas !== null) {
    assert.match(String(forced.core), /haswell/i);
    assert.match(String(forced.note), /OPENBLAS_CORETYPE=Haswell from the environment/);
  }
});

Deno.test("beta = 0 ignores NaN garbage in C (GEMM, GEMV and pure TS paths)", () => {
  for (const [m, n, k] of [[1, 7, 5], [3, 4, 5]]) {
    for (const tb of [false, true]) {
      const a = rand(m * k, 1), b = rand(k * n, 2);
      const want = naive(false, tb, m, n, k, 1, a, b, 0, new Float32Array(m * n));
      const c1 = new Float32Array(m * n).fill(NaN), c2 = new Float32Array(m * n).fill(NaN);
      gemm(false, tb, m, n, k, 1, a, b, 0, c1);
      gemmTs(false, tb, m, n, k, 1, a, b, 0, c2);
      for (let i = 0; i < want.length; i++) {
        assert.ok(Math.abs(c1[i] - want[i]) < 1e-5 && Math.abs(c2[i] - want[i]) < 1e-5, `${m}x${n}x${k} [${i}]`);
      }
    }
  }
});

Deno.test("gemm with leading dimensions (sub-matrices of larger arrays), all transposes, BLAS and pure TS", () => {
  const m = 5, n = 6, k = 7, pad = 3;
  for (const ta of [false, true]) {
    for (const tb of [false, true]) {
      const [ar, ac] = ta ? [k, m] : [m, k], [br, bc] = tb ? [n, k] : [k, n];
      const lda = ac + pad, ldb = bc + pad, ldc = n + pad;
      const A = rand(ar * lda, 11), B = rand(br * ldb, 12);
      // Packed copies for the reference.
      const a = new Float32Array(ar * ac), b = new Float32Array(br * bc);
      for (let i = 0; i < ar; i++) for (let j = 0; j < ac; j++) a[i * ac + j] = A[i * lda + j];
      for (let i = 0; i < br; i++) for (let j = 0; j < bc; j++) b[i * bc + j] = B[i * ldb + j];
      const C0 = rand(m * ldc, 13);
      const c0 = new Float32Array(m * n);
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) c0[i * n + j] = C0[i * ldc + j];
      const want = naive(ta, tb, m, n, k, 0.5, a, b, 2, c0);
      for (const f of [gemm, gemmTs]) {
        const C = C0.slice();
        f(ta, tb, m, n, k, 0.5, A, B, 2, C, lda, ldb, ldc);
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            assert.ok(Math.abs(C[i * ldc + j] - want[i * n + j]) < 1e-4, `${f.name} ${ta}${tb}`);
          }
          for (let j = n; j < ldc; j++) assert.equal(C[i * ldc + j], C0[i * ldc + j], "padding untouched");
        }
      }
    }
  }
});

Deno.test("ARCADIA_BLAS_THREADS sets the BLAS thread count", async () => {
  const info = await runChild(["-A"], { ARCADIA_BLAS_THREADS: "1" });
  if (info.blas !== null) assert.equal(info.threads, 1);
});

Deno.test("OpenBLAS stays mapped after the Worker that loaded it ends (no unload racing a fork handler)", async () => {
  // A fresh process whose only BLAS user is one Worker, so nothing else keeps the library open.
  const mod = new URL("../models/mod.ts", import.meta.url).href;
  const worker = `import { cpuInfo } from ${JSON.stringify(mod)}; postMessage(Deno.realPathSync(cpuInfo().blas!));`;
  const main = `
const w = new Worker("data:application/typescript," + encodeURIComponent(${
    JSON.stringify(worker)
  }), { type: "module" });
const path = await new Promise((r) => (w.onmessage = (e) => r(e.data)));
w.terminate();
await new Promise((r) => setTimeout(r, 300));
console.log(JSON.stringify({ path, mapped: Deno.readTextFileSync("/proc/self/maps").includes(path) }));`;
  const out = await new Deno.Command(Deno.execPath(), { args: ["eval", main], stdout: "piped", stderr: "piped" })
    .output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const { path, mapped } = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.ok(mapped, `${path} was unloaded when its Worker ended`);
});

Deno.test("our AVX-512 GEMM (native/gemm.c): every transpose, ragged tiles, long k, leading dims, 1 and 2 threads", () => {
  const lib = nativeKernels();
  const one = new Float32Array([1]), probe = new Float32Array(1);
  if (lib === null || lib.symbols.arc_sgemm(0, 0, 1, 1, 1, 1, one, 1, one, 1, 0, probe, 1, 1) !== 0) {
    // Only CPUs without AVX-512 (or without a C compiler) get here; our CI machines have both.
    assert.ok(!/\bavx512f\b/.test(Deno.readTextFileSync("/proc/cpuinfo")), "AVX-512 CPU but our GEMM is not built");
    return;
  }
  assert.equal(cpuInfo().gemm, "arcadia-avx512");
  // Shapes cross every blocking edge: 8-row and 32-column tiles, KC = 128, the dot path (transB, k >= 512) with its
  // 16-wide tail and its 2048 k-blocks, the transposing pack of Bᵀ with its ragged 16-blocks.
  // m = 1 is the batch-1 GEMV path (64-column blocks, 4-row dot products, two threads above 128K elements).
  const shapes: [number, number, number][] = [
    [8, 32, 1],
    [9, 33, 129],
    [37, 70, 300],
    [64, 16, 600],
    [13, 45, 2100],
    [40, 100, 700], // Bᵀ with a long k, 32-64 rows and 64+ columns: Cᵀ on the dot path, then transposed
    [70, 100, 600], // Bᵀ with a long k, 64+ rows and columns: the packed path with in-register transposes
    [1, 70, 33],
    [1, 517, 300],
  ];
  for (const [m, n, k] of shapes) {
    for (const ta of [0, 1]) {
      for (const tb of [0, 1]) {
        // Leading dimensions 3 wider than packed, so every row starts unaligned and gaps must stay untouched.
        const lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 3, ldc = n + 3;
        const a = rand((ta ? k : m) * lda, m + n), b = rand((tb ? n : k) * ldb, k + 1);
        const packedA = new Float32Array(m * k), packedB = new Float32Array(k * n);
        for (let r = 0; r < (ta ? k : m); r++) {
          packedA.set(a.subarray(r * lda, r * lda + (ta ? m : k)), r * (ta ? m : k));
        }
        for (let r = 0; r < (tb ? n : k); r++) {
          packedB.set(b.subarray(r * ldb, r * ldb + (tb ? k : n)), r * (tb ? k : n));
        }
        const c0 = rand(m * ldc, 7);
        for (const beta of [0, 0.5]) {
          const cIn = c0.slice();
          if (beta === 0) cIn.fill(NaN); // beta = 0 must not read C
          const packedC = new Float32Array(m * n);
          for (let i = 0; i < m; i++) packedC.set(c0.subarray(i * ldc, i * ldc + n), i * n);
          const want = naive(!!ta, !!tb, m, n, k, 0.75, packedA, packedB, beta, packedC);
          const results: Float32Array[] = [1, 2].map((threads): Float32Array => {
            const c = cIn.slice();
            const rc: number = lib.symbols.arc_sgemm(ta, tb, m, n, k, 0.75, a, lda, b, ldb, beta, c, ldc, threads);
            assert.equal(rc, 0);
            for (let i = 0; i < m; i++) {
              for (let j = 0; j < n; j++) {
                const got = c[i * ldc + j], ref = want[i * n + j];
                assert.ok(
                  Math.abs(got - ref) <= 1e-4 * (1 + Math.abs(ref)) * Math.sqrt(k),
                  `${m}x${n}x${k} ta=${ta} tb=${tb} beta=${beta} threads=${threads}: C[${i},${j}] = ${got}, want ${ref}`,
                );
              }
              for (let j = n; j < ldc; j++) assert.ok(Object.is(c[i * ldc + j], cIn[i * ldc + j]));
            }
            return c;
          });
          // Each element sums over k in the same order whatever the thread split: bit-identical.
          assert.deepEqual(results[0], results[1], `${m}x${n}x${k} ta=${ta} tb=${tb}: 1 vs 2 threads differ`);
        }
      }
    }
  }
});

Deno.test("gemmRows: B rows at overlapping, unaligned offsets compute gemm on the gathered rows", () => {
  if (cpuInfo().gemm !== "arcadia-avx512") {
    assert.equal(
      gemmRows(false, false, 8, 16, 4, 1, rand(32, 1), rand(64, 2), new Int32Array(4), 0, rand(128, 3)),
      false,
    );
    return;
  }
  // Packed NN and NT (with in-register transposes), the long-k dot path, the batch-1 GEMV paths. Where gemm takes
  // the same path (all but Bᵀ with k >= 512, which gemmRows always runs as dot products) the bits are the same.
  const shapes: [number, number, number][] = [[16, 70, 200], [40, 100, 700], [8, 45, 2100], [1, 300, 129], [1, 70, 33]];
  for (const [m, n, k] of shapes) {
    for (const tb of [false, true]) {
      const rowsB = tb ? n : k, rowLen = tb ? k : n;
      const base = rand(rowsB * 7 + rowLen + 5, m + n + k);
      // Offsets like a convolution's shifts: rows overlap (stride 7 < row length) and start unaligned.
      const offsets = Int32Array.from({ length: rowsB }, (_, r) => (r * 7 + (r % 5)) % (rowsB * 7));
      const gathered = new Float32Array(rowsB * rowLen);
      for (let r = 0; r < rowsB; r++) gathered.set(base.subarray(offsets[r], offsets[r] + rowLen), r * rowLen);
      const a = rand(m * k, 5);
      for (const beta of [0, 1]) {
        const c0 = rand(m * n, 6), want = c0.slice(), got = c0.slice();
        gemm(false, tb, m, n, k, 0.5, a, gathered, beta, want);
        assert.equal(gemmRows(false, tb, m, n, k, 0.5, a, base, offsets, beta, got), true);
        const what = `${m}x${n}x${k} transB=${tb} beta=${beta}`;
        const ref = naive(false, tb, m, n, k, 0.5, a, gathered, beta, c0);
        got.forEach((v, i) => assert.ok(Math.abs(v - ref[i]) <= 1e-4 * (1 + Math.abs(ref[i])) * Math.sqrt(k), what));
        if (!(tb && k >= 512 && m >= 32 && n > 64)) assert.deepEqual(got, want, `${what}: bits`);
      }
    }
  }
  // Shapes our kernel leaves to BLAS (2-7 rows) and a wrong offset count are declined.
  assert.equal(gemmRows(false, false, 3, 16, 4, 1, rand(12, 1), rand(64, 2), new Int32Array(4), 0, rand(48, 3)), false);
  assert.equal(
    gemmRows(false, false, 8, 16, 4, 1, rand(32, 1), rand(64, 2), new Int32Array(5), 0, rand(128, 3)),
    false,
  );
});

/** x rounded to bfloat16 (round to nearest, ties to even), as AMX's VCVTNE2PS2BF16 does. */
function bf16(x: number): number {
  const f = new Float32Array([x]), u = new Uint32Array(f.buffer);
  u[0] = (u[0] + 0x7fff + ((u[0] >>> 16) & 1)) & 0xffff0000;
  return f[0];
}

Deno.test("matmul precision medium: products of bfloat16-rounded inputs summed in float32, every transpose", () => {
  assert.throws(() => setMatmulPrecision("high" as never), /"high" is not supported \(use "highest".*"medium"/);
  const shapes: [number, number, number][] = [[16, 16, 32], [33, 17, 65], [70, 45, 1030], [40, 300, 64]];
  try {
    const used = setMatmulPrecision("medium");
    assert.equal(used, cpuInfo().bf16 === "amx" ? "medium" : "highest", cpuInfo().bf16);
    assert.equal(cpuInfo().matmulPrecision, used);
    for (const [m, n, k] of shapes) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const a = rand(m * k, m + k), b = rand(k * n, n + k + 1);
          // C is a column block of a wider matrix (ldc = n + 3): the columns beside it must stay untouched.
          const ldc = n + 3, c0 = rand(m * ldc, 9), got = c0.slice();
          const beta = (m + n) % 2 ? 0.5 : 0;
          gemm(ta, tb, m, n, k, 0.75, a, b, beta, got, ta ? m : k, tb ? k : n, ldc);
          const what = `${ta ? "T" : "N"}${tb ? "T" : "N"} ${m}x${n}x${k}`;
          const ab = used === "medium" ? a.map(bf16) : a, bb = used === "medium" ? b.map(bf16) : b;
          let differs = false;
          for (let i = 0; i < m; i++) {
            for (let j = 0; j < ldc; j++) {
              const v = got[i * ldc + j], c = c0[i * ldc + j];
              if (j >= n) {
                assert.equal(v, c, `${what}: column ${j} past n was written`);
                continue;
              }
              let sum = 0, mag = 0, exact = 0;
              for (let p = 0; p < k; p++) {
                const x = ta ? ab[p * m + i] : ab[i * k + p], y = tb ? bb[j * k + p] : bb[p * n + j];
                sum += x * y, mag += Math.abs(x * y);
                exact += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
              }
              const want = 0.75 * sum + (beta ? beta * c : 0);
              assert.ok(Math.abs(v - want) <= 1e-6 * (mag + Math.abs(c)), `${what} [${i},${j}]: ${v} vs ${want}`);
              if (Math.abs(v - (0.75 * exact + (beta ? beta * c : 0))) > 1e-5 * mag) differs = true;
            }
          }
          // The bfloat16 rounding is real (a float32 product would not be this far from the exact one).
          assert.equal(differs, used === "medium", `${what}: bfloat16 rounding visible`);
        }
      }
    }
    // gemmRows takes the same path: offset rows of B.
    if (used === "medium") {
      const [m, n, k] = [32, 48, 96], base = rand(k * 5 + n, 3), a = rand(m * k, 4);
      const offsets = Int32Array.from({ length: k }, (_, r) => r * 5 + (r % 3));
      const got = new Float32Array(m * n);
      assert.equal(gemmRows(false, false, m, n, k, 1, a, base, offsets, 0, got), true);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let sum = 0, mag = 0;
          for (let p = 0; p < k; p++) {
            const x = bf16(a[i * k + p]), y = bf16(base[offsets[p] + j]);
            sum += x * y, mag += Math.abs(x * y);
          }
          assert.ok(Math.abs(got[i * n + j] - sum) <= 1e-6 * mag, `gemmRows [${i},${j}]`);
        }
      }
    }
  } finally {
    setMatmulPrecision("highest");
  }
  // Back to float32: the product matches the float64 reference to float32 accuracy again.
  const [m, n, k] = [33, 17, 65], a = rand(m * k, 1), b = rand(k * n, 2), c = new Float32Array(m * n);
  gemm(false, false, m, n, k, 1, a, b, 0, c);
  const ref = naive(false, false, m, n, k, 1, a, b, 0, c);
  c.forEach((v, i) => assert.ok(Math.abs(v - ref[i]) <= 1e-5, `highest [${i}]`));
});

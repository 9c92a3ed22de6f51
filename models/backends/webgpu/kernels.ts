/**
 * WGSL sources for the WebGPU backend, as TypeScript strings (so the backend works when imported by URL, with no
 * file reads). Every kernel binds a read-only `P: array<u32>` of parameters at binding 0 (floats are bit-cast), then
 * its read-only buffers, then its read-write buffers, in the order the generator's caller binds them.
 *
 * Elementwise kernels use 256 threads per workgroup and a 2-D grid (`i = gid.x + gid.y * 256 * nwg.x`), so any
 * length fits under the 65,535-workgroups-per-dimension limit.
 *
 * @example
 * ```ts
 * import { gemmBlockedSource, unarySource } from "./kernels.ts";
 * const relu = unarySource("relu"); // WGSL text: bindings P, x, out
 * const gemm = gemmBlockedSource(false, true, true, true); // C = A·Bᵀ with vec4 loads
 * console.log(relu.includes("@compute"), gemm.length > 0);
 * ```
 *
 * @module
 */

import type { BinaryOp, ReduceOp, UnaryOp } from "../../primitives.ts";

/** Threads per workgroup of the 1-D (elementwise and per-row) kernels. */
export const WG = 256;

/** Maximum rank the strided kernels take after dimension collapsing. */
export const MAX_RANK = 6;

function header(reads: string[], writes: string[], types: Record<string, string> = {}): string {
  const lines = ["@group(0) @binding(0) var<storage, read> P: array<u32>;"];
  reads.forEach((n, i) =>
    lines.push(`@group(0) @binding(${i + 1}) var<storage, read> ${n}: ${types[n] ?? "array<f32>"};`)
  );
  writes.forEach((n, i) =>
    lines.push(
      `@group(0) @binding(${reads.length + i + 1}) var<storage, read_write> ${n}: ${types[n] ?? "array<f32>"};`,
    )
  );
  lines.push("fn pf(i: u32) -> f32 { return bitcast<f32>(P[i]); }");
  lines.push("fn pi(i: u32) -> i32 { return bitcast<i32>(P[i]); }");
  return lines.join("\n") + "\n";
}

/** Entry point over `P[0]` threads; `body` sees the flat index `i`. */
function elementwise(body: string): string {
  return `
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= P[0]) { return; }
${body}
}
`;
}

// Accurate-enough replacements: GPU exp/tanh lose relative precision near 0 (expm1, tanh), and WGSL pow is
// undefined for negative bases (JS Math.pow is not).
const MATH = `
fn expm1_(v: f32) -> f32 {
  if (abs(v) < 1e-2) { return v + v * v * 0.5 + v * v * v * (1.0 / 6.0); }
  return exp(v) - 1.0;
}
fn tanh_(v: f32) -> f32 {
  let a = abs(v);
  if (a < 0.03125) { let v2 = v * v; return v - v * v2 * (1.0 / 3.0) + v * v2 * v2 * (2.0 / 15.0); }
  let e = exp(-2.0 * a);
  let t = (1.0 - e) / (1.0 + e);
  return select(-t, t, v >= 0.0);
}
fn sigmoid_(v: f32) -> f32 {
  if (v >= 0.0) { return 1.0 / (1.0 + exp(-v)); }
  let e = exp(v);
  return e / (1.0 + e);
}
fn pow_(v: f32, p: f32) -> f32 {
  if (p == 0.0) { return 1.0; }
  if (p == 1.0) { return v; }
  if (p == 2.0) { return v * v; }
  if (v == 0.0) { return select(bitcast<f32>(0x7f800000u), 0.0, p > 0.0); }
  if (v < 0.0) {
    if (floor(p) != p) { return bitcast<f32>(0x7fc00000u); }
    let m = pow(-v, p);
    return select(m, -m, (i32(p) & 1) == 1);
  }
  return pow(v, p);
}
`;

function unaryExpr(op: UnaryOp): string {
  switch (op) {
    case "neg":
      return "-v";
    case "exp":
      return "exp(v)";
    case "log":
      return "log(v)";
    case "sqrt":
      return "sqrt(v)";
    case "abs":
      return "abs(v)";
    case "relu":
      return "select(0.0, v, v > 0.0)";
    case "elu":
      return "select(pf(1u) * expm1_(v), v, v > 0.0)";
    case "tanh":
      return "tanh_(v)";
    case "sigmoid":
      return "sigmoid_(v)";
    case "pow":
      return "select(pow_(v, pf(1u)), sqrt(v), pf(1u) == 0.5)";
    case "clamp":
      return "select(select(v, pf(2u), v > pf(2u)), pf(1u), v < pf(1u))";
  }
}

/** `out[i] = op(x[i])`; params `[n, p0, p1]`. `inPlace`: `x` is `out` (one read-write binding). */
export function unarySource(op: UnaryOp, inPlace = false): string {
  return header(inPlace ? [] : ["x"], ["out"]) + MATH +
    elementwise(`  let v = ${inPlace ? "out" : "x"}[i];\n  out[i] = ${unaryExpr(op)};`);
}

function unaryGradExpr(op: UnaryOp): string {
  switch (op) {
    case "neg":
      return "-g";
    case "exp":
      return "g * yv";
    case "log":
      return "g / xv";
    case "sqrt":
      return "0.5 * g / yv";
    case "abs":
      return "select(select(0.0, -g, xv < 0.0), g, xv > 0.0)";
    case "relu":
      return "select(0.0, g, xv > 0.0)";
    case "elu":
      return "select(g * (yv + pf(1u)), g, xv > 0.0)";
    case "tanh":
      return "g * (1.0 - yv * yv)";
    case "sigmoid":
      return "g * yv * (1.0 - yv)";
    case "pow":
      return "select(g * pf(1u) * pow_(xv, pf(1u) - 1.0), 2.0 * g * xv, pf(1u) == 2.0)";
    case "clamp":
      return "select(0.0, g, xv >= pf(1u) && xv <= pf(2u))";
  }
}

/** `gx[i] += gy[i] * op'(x[i])`; params `[n, p0, p1]`. */
export function unaryGradSource(op: UnaryOp): string {
  return header(["x", "y", "gy"], ["gx"]) + MATH +
    elementwise(`  let xv = x[i];\n  let yv = y[i];\n  let g = gy[i];\n  gx[i] = gx[i] + ${unaryGradExpr(op)};`);
}

function binaryExpr(op: BinaryOp): string {
  switch (op) {
    case "add":
      return "u + w";
    case "sub":
      return "u - w";
    case "mul":
      return "u * w";
    case "div":
      return "u / w";
    case "maximum":
      return "select(w, u, u >= w)";
    case "minimum":
      return "select(w, u, u <= w)";
    case "gt":
      return "select(0.0, 1.0, u > w)";
    case "ge":
      return "select(0.0, 1.0, u >= w)";
    case "lt":
      return "select(0.0, 1.0, u < w)";
    case "le":
      return "select(0.0, 1.0, u <= w)";
    case "eq":
      return "select(0.0, 1.0, u == w)";
  }
}

// Broadcast index walk: params [n, rank, shape[6] @2, stridesA[6] @8, stridesB[6] @14, stridesC[6] @20].
const BROADCAST_WALK = `
  var rem = i;
  var ia = 0u;
  var ib = 0u;
  var ic = 0u;
  for (var d = i32(P[1]) - 1; d >= 0; d = d - 1) {
    let k = u32(d);
    let s = P[2u + k];
    let q = rem % s;
    rem = rem / s;
    ia = ia + q * P[8u + k];
    ib = ib + q * P[14u + k];
    ic = ic + q * P[20u + k];
  }
`;

/**
 * Broadcasting binary op; `same` when both operands already have the output shape. `inPlace` (with `same`): that
 * operand is `out`, bound once read-write (WebGPU rejects one buffer bound read-only and writable in a dispatch).
 */
export function binarySource(op: BinaryOp, same: boolean, inPlace?: "a" | "b"): string {
  if (same && inPlace) {
    const other = inPlace === "a" ? "b" : "a";
    return header([other], ["out"]) +
      elementwise(`  let ${inPlace === "a" ? "u" : "w"} = out[i];\n  let ${inPlace === "a" ? "w" : "u"} = ${other}[i];
  out[i] = ${binaryExpr(op)};`);
  }
  const body = same
    ? `  let u = a[i];\n  let w = b[i];\n  out[i] = ${binaryExpr(op)};`
    : `${BROADCAST_WALK}  let u = a[ia];\n  let w = b[ib];\n  out[i] = ${binaryExpr(op)};`;
  return header(["a", "b"], ["out"]) + elementwise(body);
}

/** Broadcasting `out = cond != 0 ? a : b` (strides: a @8, b @14, cond @20). */
export function whereSource(): string {
  return header(["a", "b", "cond"], ["out"]) +
    elementwise(`${BROADCAST_WALK}  out[i] = select(b[ib], a[ia], cond[ic] != 0.0);`);
}

/**
 * `out[o] += alpha * Σ_r x[base(o) + off(r)]`: one thread per output element.
 * Params: `[nOut, nRed, keptRank, redRank, alpha, -, -, -, keptShape @8, keptStrides @14, redShape @20,
 * redStrides @26]`.
 */
export function sumToSource(): string {
  return header(["x"], ["out"]) + elementwise(`
  var rem = i;
  var base = 0u;
  for (var d = i32(P[2]) - 1; d >= 0; d = d - 1) {
    let k = u32(d);
    let q = rem % P[8u + k];
    rem = rem / P[8u + k];
    base = base + q * P[14u + k];
  }
  var s = 0.0;
  let nr = P[1];
  let rr = P[3];
  for (var r = 0u; r < nr; r = r + 1u) {
    var rm = r;
    var off = base;
    for (var d = i32(rr) - 1; d >= 0; d = d - 1) {
      let k = u32(d);
      let q = rm % P[20u + k];
      rm = rm / P[20u + k];
      off = off + q * P[26u + k];
    }
    s = s + x[off];
  }
  out[i] = out[i] + pf(4u) * s;`);
}

/** Reduce the middle axis of `(outer, n, inner)`; params `[outer*inner, n, inner]`. */
export function reduceSource(op: ReduceOp): string {
  const body = op === "sum"
    ? `  var s = 0.0;\n  for (var j = 0u; j < n; j = j + 1u) { s = s + x[base + j * inner]; }\n  out[i] = s;`
    : `  var best = -3.4028235e38;\n  var arg = 0u;\n  var any = false;
  for (var j = 0u; j < n; j = j + 1u) {
    let v = x[base + j * inner];
    if (!any || v > best) { best = v; arg = j; any = true; }
  }
  out[i] = ${op === "max" ? "best" : "f32(arg)"};`;
  return header(["x"], ["out"]) + elementwise(`  let n = P[1];
  let inner = P[2];
  let base = (i / inner) * n * inner + i % inner;
${body}`);
}

function gemmAccess(transA: boolean, transB: boolean): string {
  return `
fn A_(i: u32, p: u32) -> f32 { return a[P[8] + ${transA ? "p * P[3] + i" : "i * P[3] + p"}]; }
fn B_(p: u32, j: u32) -> f32 { return b[P[9] + ${transB ? "j * P[4] + p" : "p * P[4] + j"}]; }
` + STORE_C;
}

const STORE_C = `
fn store_(r: u32, col: u32, v: f32) {
  let idx = P[10] + r * P[5] + col;
  if (P[7] == 0u) { c[idx] = pf(6u) * v; } else { c[idx] = pf(6u) * v + pf(7u) * c[idx]; }
}
`;

/**
 * Register-blocked GEMM: each thread owns a 4×4 block of C and streams A and B from memory (no shared memory): the
 * fast one on CPU adapters (lavapipe), where workgroup barriers are expensive. K advances 4 at a time; with
 * `vecA`/`vecB` (leading dimension a multiple of 4) an operand is read as 16-byte `vec4` loads: every WGSL access
 * carries a bounds check, and on lavapipe those checks cost more than the arithmetic. A scalar loop finishes K % 4.
 * Params `[M, N, K, lda, ldb, ldc, alpha, beta, aOff, bOff, cOff]` (beta's raw bits: 0 means "ignore C"; element
 * offsets of the operands in their buffers, multiples of 4 for the vec4 operands).
 */
export function gemmBlockedSource(transA: boolean, transB: boolean, vecA = false, vecB = false): string {
  const types: Record<string, string> = {};
  if (vecA) types.a = "array<vec4<f32>>";
  if (vecB) types.b = "array<vec4<f32>>";
  const sa = vecA ? "a[k / 4u][k % 4u]" : "a[k]", sb = vecB ? "b[k / 4u][k % 4u]" : "b[k]";
  // Scalar accessors: A(i, p) and B(p, j) of op(A), op(B).
  const scalar = `
fn aS(k: u32) -> f32 { return ${sa}; }
fn bS(k: u32) -> f32 { return ${sb}; }
fn A_(i: u32, p: u32) -> f32 { return aS(P[8] + ${transA ? "p * P[3] + i" : "i * P[3] + p"}); }
fn B_(p: u32, j: u32) -> f32 { return bS(P[9] + ${transB ? "j * P[4] + p" : "p * P[4] + j"}); }
`;
  // av[q]: A(ra[q], p..p+3) for q in rows (as vec4 over the 4 p's); bt[pp]: B(p + pp, cb) (vec4 over columns).
  let loadA: string;
  if (vecA && !transA) loadA = "for (var q = 0u; q < 4u; q++) { av[q] = a[(P[8] + ra[q] * lda + p) / 4u]; }";
  else if (vecA && transA) {
    loadA =
      "var at: array<vec4<f32>, 4>;\n    for (var pp = 0u; pp < 4u; pp++) { at[pp] = a[(P[8] + (p + pp) * lda + r0) / 4u]; }\n" +
      "    for (var q = 0u; q < 4u; q++) { av[q] = vec4<f32>(at[0][q], at[1][q], at[2][q], at[3][q]); }";
  } else {loadA =
      "for (var q = 0u; q < 4u; q++) { av[q] = vec4<f32>(A_(ra[q], p), A_(ra[q], p + 1u), A_(ra[q], p + 2u), A_(ra[q], p + 3u)); }";}
  let loadB: string;
  if (vecB && !transB) loadB = "for (var pp = 0u; pp < 4u; pp++) { bt[pp] = b[(P[9] + (p + pp) * ldb + c0) / 4u]; }";
  else if (vecB && transB) {
    loadB =
      "var bj: array<vec4<f32>, 4>;\n    for (var q = 0u; q < 4u; q++) { bj[q] = b[(P[9] + cb[q] * ldb + p) / 4u]; }\n" +
      "    for (var pp = 0u; pp < 4u; pp++) { bt[pp] = vec4<f32>(bj[0][pp], bj[1][pp], bj[2][pp], bj[3][pp]); }";
  } else {loadB =
      "for (var pp = 0u; pp < 4u; pp++) { bt[pp] = vec4<f32>(B_(p + pp, cb.x), B_(p + pp, cb.y), B_(p + pp, cb.z), B_(p + pp, cb.w)); }";}
  return header(["a", "b"], ["c"], types) + scalar + STORE_C + `
@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let M = P[0];
  let N = P[1];
  let K = P[2];
  let lda = P[3];
  let ldb = P[4];
  let r0 = gid.y * 4u;
  let c0 = gid.x * 4u;
  if (r0 >= M || c0 >= N) { return; }
  // Clamped indices: out-of-range rows/columns compute garbage that is never stored, with no branches in the loop.
  let ra = vec4<u32>(r0, min(r0 + 1u, M - 1u), min(r0 + 2u, M - 1u), min(r0 + 3u, M - 1u));
  let cb = vec4<u32>(c0, min(c0 + 1u, N - 1u), min(c0 + 2u, N - 1u), min(c0 + 3u, N - 1u));
  var acc: array<vec4<f32>, 4>;
  var av: array<vec4<f32>, 4>;
  var bt: array<vec4<f32>, 4>;
  let K4 = K - K % 4u;
  for (var p = 0u; p < K4; p = p + 4u) {
    ${loadA}
    ${loadB}
    for (var q = 0u; q < 4u; q++) {
      acc[q] = acc[q] + av[q].x * bt[0] + av[q].y * bt[1] + av[q].z * bt[2] + av[q].w * bt[3];
    }
  }
  for (var p = K4; p < K; p = p + 1u) {
    let bv = vec4<f32>(B_(p, cb.x), B_(p, cb.y), B_(p, cb.z), B_(p, cb.w));
    for (var q = 0u; q < 4u; q++) { acc[q] = acc[q] + A_(ra[q], p) * bv; }
  }
  for (var r = 0u; r < 4u; r = r + 1u) {
    if (r0 + r >= M) { break; }
    let v = acc[r];
    for (var j = 0u; j < 4u; j = j + 1u) {
      if (c0 + j < N) { store_(r0 + r, c0 + j, v[j]); }
    }
  }
}
`;
}

/**
 * Shared-memory tiled GEMM for real GPUs: a 16×16 workgroup computes a 64×64 block of C (4×4 per thread), staging
 * 64×16 tiles of A and 16×64 tiles of B in workgroup memory. Same params as the blocked kernel.
 */
export function gemmTiledSource(transA: boolean, transB: boolean): string {
  return header(["a", "b"], ["c"]) + gemmAccess(transA, transB) + `
var<workgroup> As: array<f32, 1024>;
var<workgroup> Bs: array<f32, 1024>;
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = P[0];
  let N = P[1];
  let K = P[2];
  let tid = lid.y * 16u + lid.x;
  let rowBase = wid.y * 64u;
  let colBase = wid.x * 64u;
  var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  for (var k0 = 0u; k0 < K; k0 = k0 + 16u) {
    for (var l = 0u; l < 4u; l = l + 1u) {
      let e = tid + l * 256u;
      let r = e / 16u;
      let kk = e % 16u;
      var va = 0.0;
      if (rowBase + r < M && k0 + kk < K) { va = A_(rowBase + r, k0 + kk); }
      As[kk * 64u + r] = va;
      let kb = e / 64u;
      let cc = e % 64u;
      var vb = 0.0;
      if (colBase + cc < N && k0 + kb < K) { vb = B_(k0 + kb, colBase + cc); }
      Bs[kb * 64u + cc] = vb;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk = kk + 1u) {
      let ao = kk * 64u + lid.y * 4u;
      let bo = kk * 64u + lid.x * 4u;
      let av = vec4<f32>(As[ao], As[ao + 1u], As[ao + 2u], As[ao + 3u]);
      let bv = vec4<f32>(Bs[bo], Bs[bo + 1u], Bs[bo + 2u], Bs[bo + 3u]);
      acc[0] = acc[0] + av.x * bv;
      acc[1] = acc[1] + av.y * bv;
      acc[2] = acc[2] + av.z * bv;
      acc[3] = acc[3] + av.w * bv;
    }
    workgroupBarrier();
  }
  let r0 = rowBase + lid.y * 4u;
  let c0 = colBase + lid.x * 4u;
  for (var r = 0u; r < 4u; r = r + 1u) {
    if (r0 + r >= M) { break; }
    let v = acc[r];
    for (var j = 0u; j < 4u; j = j + 1u) {
      if (c0 + j < N) { store_(r0 + r, c0 + j, v[j]); }
    }
  }
}
`;
}

// Conv geometry params: [total, NP, P, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW].
const CONV_PARAMS = `
  let NP = P[1]; let Pp = P[2]; let C = P[3]; let H = P[4]; let W = P[5];
  let KH = P[6]; let KW = P[7]; let SH = P[8]; let SW = P[9]; let PH = P[10]; let PW = P[11];
  let OH = P[12]; let OW = P[13];
`;

/** Unfold NCHW `x` into `col[C*KH*KW, N*OH*OW]`: one thread per column element. */
export function im2colSource(): string {
  return header(["x"], ["col"]) + elementwise(`${CONV_PARAMS}
  let q = i % NP;
  let r = i / NP;
  let kj = r % KW;
  let ki = (r / KW) % KH;
  let c = r / (KW * KH);
  let bi = q / Pp;
  let pp = q % Pp;
  let ih = i32((pp / OW) * SH + ki) - i32(PH);
  let iw = i32((pp % OW) * SW + kj) - i32(PW);
  var v = 0.0;
  if (ih >= 0 && ih < i32(H) && iw >= 0 && iw < i32(W)) { v = x[((bi * C + c) * H + u32(ih)) * W + u32(iw)]; }
  col[i] = v;`);
}

/** `dx += fold(col)`: one thread per input pixel gathers every column entry that reads it (no atomics). */
export function col2imSource(): string {
  return header(["col"], ["dx"]) + elementwise(`${CONV_PARAMS}
  let w = i % W;
  let h = (i / W) % H;
  let c = (i / (W * H)) % C;
  let bi = i / (W * H * C);
  var s = 0.0;
  // Only kernel rows ki ≡ h + PH (mod SH) with ki <= h + PH land on an output row: step by the stride.
  let th = h + PH;
  let tw = w + PW;
  for (var ki = th % SH; ki < KH && ki <= th; ki = ki + SH) {
    let oh = (th - ki) / SH;
    if (oh >= OH) { continue; }
    for (var kj = tw % SW; kj < KW && kj <= tw; kj = kj + SW) {
      let ow = (tw - kj) / SW;
      if (ow >= OW) { continue; }
      s = s + col[((c * KH + ki) * KW + kj) * NP + bi * Pp + oh * OW + ow];
    }
  }
  dx[i] = dx[i] + s;`);
}

/**
 * Strided copy over a collapsed shape: params `[n, rank, srcOffset, dstOffset, shape[6] @4, srcStrides[6] @10,
 * dstStrides[6] @16]` (offsets and strides as i32 bits). `mode`: plain copy, accumulate, or accumulate with an
 * atomic compare-exchange loop for non-injective destinations (overlapping windows).
 */
export function copyStridedSource(mode: "copy" | "add" | "atomic"): string {
  const types: Record<string, string> = mode === "atomic" ? { dst: "array<atomic<u32>>" } : {};
  const store = mode === "copy"
    ? "  dst[u32(id)] = v;"
    : mode === "add"
    ? "  dst[u32(id)] = dst[u32(id)] + v;"
    : `  var old = atomicLoad(&dst[u32(id)]);
  loop {
    let r = atomicCompareExchangeWeak(&dst[u32(id)], old, bitcast<u32>(bitcast<f32>(old) + v));
    if (r.exchanged) { break; }
    old = r.old_value;
  }`;
  return header(["src"], ["dst"], types) + elementwise(`
  var rem = i;
  var is = pi(2u);
  var id = pi(3u);
  for (var d = i32(P[1]) - 1; d >= 0; d = d - 1) {
    let k = u32(d);
    let q = i32(rem % P[4u + k]);
    rem = rem / P[4u + k];
    is = is + q * pi(10u + k);
    id = id + q * pi(16u + k);
  }
  let v = src[u32(is)];
${store}`);
}

/**
 * `out[o, j, i] = x[o, index[o, j, i], i]`; params `[outer*m*inner, m, n, inner]`, index as i32, or as f32 with
 * `floatIndex` (an index tensor computed on the device, e.g. argmax).
 */
export function gatherSource(floatIndex = false): string {
  return header(["x", "index"], ["out"], { index: floatIndex ? "array<f32>" : "array<i32>" }) + elementwise(`
  let m = P[1]; let n = P[2]; let inner = P[3];
  let o = i / (m * inner);
  out[i] = x[(o * n + u32(index[i])) * inner + i % inner];`);
}

/** `gx[o, k, i] += Σ_{j: index[o,j,i] = k} g[o, j, i]`: one thread per `gx` element; params `[outer*n*inner, m, n, inner]`. */
export function scatterAddSource(floatIndex = false): string {
  return header(["g", "index"], ["gx"], { index: floatIndex ? "array<f32>" : "array<i32>" }) + elementwise(`
  let m = P[1]; let n = P[2]; let inner = P[3];
  let ii = i % inner;
  let k = i32((i / inner) % n);
  let o = i / (n * inner);
  var s = 0.0;
  for (var j = 0u; j < m; j = j + 1u) {
    let q = (o * m + j) * inner + ii;
    if (i32(index[q]) == k) { s = s + g[q]; }
  }
  gx[i] = gx[i] + s;`);
}

/** Log-softmax over the middle axis; one thread per `(outer, inner)` row; params `[outer*inner, n, inner]`. */
export function logSoftmaxSource(): string {
  return header(["x"], ["out"]) + elementwise(`
  let n = P[1]; let inner = P[2];
  let base = (i / inner) * n * inner + i % inner;
  var mx = -3.4028235e38;
  for (var j = 0u; j < n; j = j + 1u) { mx = max(mx, x[base + j * inner]); }
  if (mx <= -3.4028235e38) { mx = 0.0; }
  var s = 0.0;
  for (var j = 0u; j < n; j = j + 1u) { s = s + exp(x[base + j * inner] - mx); }
  let lse = mx + log(s);
  for (var j = 0u; j < n; j = j + 1u) { out[base + j * inner] = x[base + j * inner] - lse; }`);
}

/** `gx += gy - exp(y) * Σ_axis gy`; params `[outer*inner, n, inner]`. */
export function logSoftmaxGradSource(): string {
  return header(["y", "gy"], ["gx"]) + elementwise(`
  let n = P[1]; let inner = P[2];
  let base = (i / inner) * n * inner + i % inner;
  var s = 0.0;
  for (var j = 0u; j < n; j = j + 1u) { s = s + gy[base + j * inner]; }
  for (var j = 0u; j < n; j = j + 1u) {
    let k = base + j * inner;
    gx[k] = gx[k] + gy[k] - exp(y[k]) * s;
  }`);
}

/** `out[i] = value`; params `[n, value]`. */
export function fillSource(): string {
  return header([], ["out"]) + elementwise("  out[i] = pf(1u);");
}

/**
 * Adam in place (the CPU backend's formula); params `[n, 1 - beta1, beta2, stepSize, 1/bc2Sqrt, eps, weightDecay,
 * 1 - beta2]`. The complements come from the host in double precision: `1 - f32(0.999)` is off by 1.3e-5.
 */
export function adamSource(): string {
  return header(["g"], ["x", "m", "v"]) + elementwise(`
  let wd = pf(6u);
  let gj = g[i] + wd * x[i];
  let mj = m[i] + pf(1u) * (gj - m[i]);
  let vj = pf(2u) * v[i] + pf(7u) * gj * gj;
  m[i] = mj;
  v[i] = vj;
  x[i] = x[i] - (pf(3u) * mj) / (sqrt(vj) * pf(4u) + pf(5u));`);
}

/**
 * RMSprop in place; params `[n, lr, alpha, eps, weightDecay, momentum, 1 - alpha]` (the complement from the host). Variants bind the centered average and the
 * momentum buffer only when used.
 */
export function rmspropSource(centered: boolean, momentum: boolean): string {
  const writes = ["x", "v", ...(centered ? ["ga"] : []), ...(momentum ? ["buf"] : [])];
  return header(["g"], writes) + elementwise(`
  let lr = pf(1u); let alpha = pf(2u); let eps = pf(3u);
  let gj = g[i] + pf(4u) * x[i];
  let vj = alpha * v[i] + pf(6u) * gj * gj;
  v[i] = vj;
  ${
    centered
      ? "let a = ga[i] + pf(6u) * (gj - ga[i]);\n  ga[i] = a;\n  let avg = sqrt(vj - a * a) + eps;"
      : "let avg = sqrt(vj) + eps;"
  }
  ${
    momentum
      ? "let b = pf(5u) * buf[i] + gj / avg;\n  buf[i] = b;\n  x[i] = x[i] - lr * b;"
      : "x[i] = x[i] - (lr * gj) / avg;"
  }`);
}

/** SGD in place; params `[n, lr, momentum, 1 - dampening, weightDecay, first (u32)]`; `nesterov` is a variant. */
export function sgdSource(momentum: boolean, nesterov: boolean): string {
  return header(["g"], momentum ? ["x", "buf"] : ["x"]) + elementwise(`
  var gj = g[i] + pf(4u) * x[i];
  ${
    momentum
      ? `var b = gj;
  if (P[5] == 0u) { b = pf(2u) * buf[i] + pf(3u) * gj; }
  buf[i] = b;
  gj = ${nesterov ? "gj + pf(2u) * b" : "b"};`
      : ""
  }
  x[i] = x[i] - pf(1u) * gj;`);
}

/**
 * Partial sums of squares: workgroup `w` of `G` writes `Σ x[j]²` over `j ≡ w·256 + lane (mod G·256)` to
 * `partial[off + w]`; params `[n, G, off]`.
 */
export function sumSquaresSource(): string {
  return header(["x"], ["partial"]) + `
var<workgroup> acc: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let n = P[0];
  let G = P[1];
  var s = 0.0;
  for (var j = wid.x * ${WG}u + lid.x; j < n; j = j + G * ${WG}u) { s = s + x[j] * x[j]; }
  acc[lid.x] = s;
  workgroupBarrier();
  for (var k = ${WG / 2}u; k > 0u; k = k / 2u) {
    if (lid.x < k) { acc[lid.x] = acc[lid.x] + acc[lid.x + k]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { partial[P[2] + wid.x] = acc[0]; }
}
`;
}

/**
 * One workgroup: `norm[0] = √Σ partial`, `coef[0] = min(1, maxNorm / (norm + 1e-6))`; params `[count, maxNorm]`.
 */
export function clipCoefSource(): string {
  return header(["partial"], ["norm", "coef"]) + `
var<workgroup> acc: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  var s = 0.0;
  for (var j = lid.x; j < P[0]; j = j + ${WG}u) { s = s + partial[j]; }
  acc[lid.x] = s;
  workgroupBarrier();
  for (var k = ${WG / 2}u; k > 0u; k = k / 2u) {
    if (lid.x < k) { acc[lid.x] = acc[lid.x] + acc[lid.x + k]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    let total = sqrt(acc[0]);
    norm[0] = total;
    coef[0] = min(1.0, pf(1u) / (total + 1e-6));
  }
}
`;
}

/** `x[i] *= coef[0]`; params `[n]`. */
export function scaleBySource(): string {
  return header(["coef"], ["x"]) + elementwise("  x[i] = x[i] * coef[0];");
}

// Arcadia's own CPU kernels: the memory-bound loops around GEMM (optimizer updates, activations, broadcasting,
// reductions, im2col and strided copies). V8 runs these scalar with bounds checks (~1-3 ns per element); compiled
// with -O3 -march=native they vectorize (AVX2/AVX-512) and run 5-20x faster. Loaded through Deno.dlopen by
// native.ts; every kernel has a pure TypeScript twin in cpu.ts / optim.ts that computes the same values.
//
// Built without -ffast-math on purpose: NaN must propagate (maximum/minimum, NaN checks) exactly as in TypeScript.
#include <math.h>
#include <stdint.h>
#include <string.h>

#define ARC_ABI 9

int arc_kernels_abi(void) { return ARC_ABI; }

// ---- exp/expm1 that vectorize, in double ---------------------------------------------------------------------
// Results must equal the TypeScript kernels' (V8 evaluates in double and rounds once to float32), or seeded training
// runs drift apart. So every formula below mirrors its TypeScript twin operation by operation in double (built with
// -ffp-contract=off: no FMA contraction), and exp/expm1 are accurate to ~1e-15: rounded to float32 they match V8's
// Math.exp/expm1 except when a value lies within ~1e-15 of a float32 rounding boundary (about 1 in 10^8). glibc's exp
// is only vectorized under -ffast-math, hence this one: 2^k scale from bits, degree-13 Taylor on |r| <= ln2/2
// (explicit fma() inside the polynomials only: their rounding is ours, the formulas around them mirror V8's).

// Taylor terms of exp from r^13 down to r^2, as (((1/13! r + 1/12!) r + ...) r + 1/2): exp(r) = 1 + r + r² · this.
static inline double exp_series(double r) {
  double p = 1.0 / 6227020800.0;
  p = fma(p, r, 1.0 / 479001600.0);
  p = fma(p, r, 1.0 / 39916800.0);
  p = fma(p, r, 1.0 / 3628800.0);
  p = fma(p, r, 1.0 / 362880.0);
  p = fma(p, r, 1.0 / 40320.0);
  p = fma(p, r, 1.0 / 5040.0);
  p = fma(p, r, 1.0 / 720.0);
  p = fma(p, r, 1.0 / 120.0);
  p = fma(p, r, 1.0 / 24.0);
  p = fma(p, r, 1.0 / 6.0);
  return fma(p, r, 0.5);
}

static inline double exp_d(double x) {
  const double c = x < -110.0 ? -110.0 : x > 100.0 ? 100.0 : x; // beyond float32 range either way
  const double kd = (c * 1.4426950408889634 + 6755399441055744.0) - 6755399441055744.0;
  const double r = (c - kd * 6.93147180369123816490e-01) - kd * 1.90821492927058770002e-10;
  double p = exp_series(r);
  p = fma(p, r, 1.0);
  p = fma(p, r, 1.0);
  const int64_t bits = ((int64_t)kd + 1023) << 52;
  double scale;
  memcpy(&scale, &bits, sizeof scale); // 2^k (a register move once optimized; a union blocks vectorization)
  const double e = p * scale;
  return x != x ? x : x > 100.0 ? INFINITY : e;
}

// exp(x) - 1 without cancellation near 0, for x <= 100 (ELU calls it with x <= 0): x = k·ln2 + r with |r| <= ln2/2,
// expm1(r) by Taylor to r^13 (error < 1e-16 relative), then expm1(x) = 2^k·expm1(r) + (2^k - 1), with 2^k - 1 exact.
// One polynomial per value: the former version evaluated this Taylor series and exp_d both and picked one (2x work).
static inline double expm1_d(double x) {
  const double c = x < -110.0 ? -110.0 : x > 100.0 ? 100.0 : x;
  const double kd = (c * 1.4426950408889634 + 6755399441055744.0) - 6755399441055744.0;
  const double r = (c - kd * 6.93147180369123816490e-01) - kd * 1.90821492927058770002e-10;
  const double em1 = exp_series(r) * r * r + r;
  const int64_t bits = ((int64_t)kd + 1023) << 52;
  double scale;
  memcpy(&scale, &bits, sizeof scale);
  return scale * em1 + (scale - 1.0);
}

static inline float tanh_v(float vf) {
  const double v = vf, a = v < 0 ? -v : v;
  const double e = exp_d(-2.0 * a);
  const double t = a < 0.004 ? a * (1.0 - (a * a) / 3.0) : (1.0 - e) / (1.0 + e);
  return (float)(v != v ? v : v < 0 ? -t : t);
}

// Mirrors cpu.ts: 1 / (1 + exp(-v)) for v >= 0, e / (1 + e) with e = exp(v) below (exp's argument stays <= 0).
static inline float sigmoid_v(float vf) {
  const double v = vf;
  const double e = exp_d(v < 0 ? v : -v);
  const double s = v >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
  return (float)(v != v ? v : s);
}

// ELU's exp(x) - 1 for x <= 0, in float32: the double series above costs ~2.2 ns per element (the Doom encoder's
// activations made ELU 8% of a learner step), this one 16 lanes at a time ~10x less. Mirrored operation by operation
// by cpu.ts's expm1NegF32 with Math.fround (a float32 operation computed in double and rounded once gives the same
// bits), so both paths agree exactly. x = k·ln2 + r with |r| <= ln2/2 (ln2 in two parts, k·ln2hi exact), expm1(r)
// by Taylor to r^9 (truncation < 1e-10 relative), then 2^k·expm1(r) + (2^k - 1); within 2 float32 ulps of expm1.
static inline float expm1_neg_f(float x) {
  const float c = x < -30.0f ? -30.0f : x; // exp(-30) < 2^-25: below here the result is -1 anyway
  const float kf = (c * 1.44269502f + 12582912.0f) - 12582912.0f; // round to nearest (no FMA contraction)
  const float r = (c - kf * 0.693145751953125f) - kf * 1.42860677e-06f;
  float p = 2.75573188e-06f;
  p = p * r + 2.48015876e-05f;
  p = p * r + 1.98412701e-04f;
  p = p * r + 1.38888892e-03f;
  p = p * r + 8.33333377e-03f;
  p = p * r + 4.16666679e-02f;
  p = p * r + 1.66666672e-01f;
  p = p * r + 0.5f;
  const float em1 = p * r * r + r;
  const int32_t bits = ((int32_t)kf + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale); // 2^k
  return scale * em1 + (scale - 1.0f);
}

// Mirrors cpu.ts: v for v > 0, alpha · expm1(v) otherwise (NaN passes through).
static inline float elu_v(float v, double alpha) {
  const float e = (float)alpha * expm1_neg_f(v < 0 ? v : 0.0f);
  return v > 0 ? v : v != v ? v : e;
}

// ---- Adam (torch.optim.Adam, one fused pass over x, g, m, v; the float32 arithmetic of cpu_optim.ts) ----------
// Float32 throughout, like PyTorch's: each operation rounds to float32 exactly as the TypeScript twin's Math.fround
// does (no FMA contraction; vsqrtps/vdivps are correctly rounded), so both give the same bits. In double the sqrt
// and divide made this compute-bound at ~2.5 ns per element and core; in float32 it is ~3x that fast. Large tensors
// run in slices on both threads; each element's arithmetic is the same whichever thread runs it.
typedef struct {
  float *x;
  const float *g;
  float *m, *v;
  int32_t n, per;
  float b2, c1, c2, step_size, inv_bc2, eps, wd;
} adam_args;

static int adam_slice(const void *ctx, int slice) {
  const adam_args *a = ctx;
  const int32_t lo = slice * a->per < a->n ? slice * a->per : a->n, hi = lo + a->per < a->n ? lo + a->per : a->n;
  float *restrict x = a->x, *restrict m = a->m, *restrict v = a->v;
  const float *restrict g = a->g;
  const float b2 = a->b2, c1 = a->c1, c2 = a->c2, step_size = a->step_size, inv_bc2 = a->inv_bc2, eps = a->eps;
  const float wd = a->wd;
  for (int32_t j = lo; j < hi; j++) {
    const float gj = wd != 0.0f ? g[j] + wd * x[j] : g[j];
    const float mj = m[j] + c1 * (gj - m[j]);
    const float vj = b2 * v[j] + c2 * gj * gj;
    m[j] = mj;
    v[j] = vj;
    x[j] = x[j] - (step_size * mj) / (sqrtf(vj) * inv_bc2 + eps);
  }
  return 0;
}

void arc_adam(float *x, const float *g, float *m, float *v, int32_t n, double b1, double b2, double step_size,
              double inv_bc2, double eps, double wd, int32_t threads) {
  const int slices = threads > 1 && n >= 65536 ? 8 : 1;
  const adam_args a = {x, g, m, v, n, (n / slices + 63) & ~63, (float)b2, (float)(1.0 - b1), (float)(1.0 - b2),
                       (float)step_size, (float)inv_bc2, (float)eps, (float)wd};
  arc_parallel(adam_slice, &a, slices, threads);
}

// Σ x² in double (global-norm clipping).
double arc_sumsq(const float *restrict x, int32_t n) {
  double acc[8] = {0};
  int32_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; k++) acc[k] += (double)x[j + k] * x[j + k];
  double s = 0;
  for (; j < n; j++) s += (double)x[j] * x[j];
  return s + (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])));
}

// x *= s
void arc_scale(float *restrict x, int32_t n, double s) {
  for (int32_t j = 0; j < n; j++) x[j] = (float)(x[j] * s);
}

// ---- Unary ---------------------------------------------------------------------------------------------------
// Op codes match NATIVE_UNARY in cpu.ts.
enum { U_NEG, U_EXP, U_LOG, U_SQRT, U_ABS, U_RELU, U_ELU, U_TANH, U_SIGMOID, U_SQUARE, U_CLAMP };

void arc_unary(int32_t op, const float *x, float *out, int32_t n, double p0, double p1) {
  switch (op) {
    case U_NEG: for (int32_t i = 0; i < n; i++) out[i] = -x[i]; break;
    case U_EXP: for (int32_t i = 0; i < n; i++) out[i] = (float)exp_d(x[i]); break;
    case U_LOG: for (int32_t i = 0; i < n; i++) out[i] = (float)log((double)x[i]); break;
    case U_SQRT: for (int32_t i = 0; i < n; i++) out[i] = (float)sqrt((double)x[i]); break;
    case U_ABS: for (int32_t i = 0; i < n; i++) out[i] = fabsf(x[i]); break;
    case U_RELU: for (int32_t i = 0; i < n; i++) { const float v = x[i]; out[i] = v > 0 ? v : 0.0f; } break;
    case U_ELU:
      for (int32_t i = 0; i < n; i++) out[i] = elu_v(x[i], p0);
      break;
    case U_TANH: for (int32_t i = 0; i < n; i++) out[i] = tanh_v(x[i]); break;
    case U_SIGMOID: for (int32_t i = 0; i < n; i++) out[i] = sigmoid_v(x[i]); break;
    case U_SQUARE: for (int32_t i = 0; i < n; i++) out[i] = x[i] * x[i]; break;
    case U_CLAMP:
      for (int32_t i = 0; i < n; i++) {
        const double v = x[i];
        out[i] = (float)(v < p0 ? p0 : v > p1 ? p1 : v);
      }
      break;
  }
}

// gx += gy * op'(x), with y = op(x) where the derivative is cheaper from the output (double, as in cpu.ts).
void arc_unary_grad(int32_t op, const float *x, const float *y, const float *restrict gy, float *restrict gx,
                    int32_t n, double p0, double p1) {
#define ACC(EXPR) for (int32_t i = 0; i < n; i++) gx[i] = (float)((double)gx[i] + (EXPR))
  switch (op) {
    case U_NEG: for (int32_t i = 0; i < n; i++) gx[i] -= gy[i]; break;
    case U_EXP: ACC((double)gy[i] * y[i]); break;
    case U_LOG: ACC((double)gy[i] / x[i]); break;
    case U_SQRT: ACC((0.5 * gy[i]) / y[i]); break;
    case U_ABS: ACC(x[i] > 0 ? (double)gy[i] : x[i] < 0 ? -(double)gy[i] : 0.0); break;
    case U_RELU: for (int32_t i = 0; i < n; i++) gx[i] += x[i] > 0 ? gy[i] : 0.0f; break;
    case U_ELU: ACC(x[i] > 0 ? (double)gy[i] : gy[i] * ((double)y[i] + p0)); break;
    case U_TANH: ACC(gy[i] * (1.0 - (double)y[i] * y[i])); break;
    case U_SIGMOID: ACC((double)gy[i] * y[i] * (1.0 - y[i])); break;
    case U_SQUARE: ACC(2.0 * gy[i] * x[i]); break;
    case U_CLAMP: for (int32_t i = 0; i < n; i++) gx[i] += (x[i] >= p0 && x[i] <= p1) ? gy[i] : 0.0f; break;
  }
#undef ACC
}

// ---- Binary over a 2-D broadcast (strides 0 or packed; `out` is contiguous [rows, cols]) -----------------------
enum { B_ADD, B_SUB, B_MUL, B_DIV, B_MAX, B_MIN, B_GT, B_GE, B_LT, B_LE, B_EQ };

#define BIN_LOOP(EXPR)                                                                                          \
  for (int32_t r = 0; r < rows; r++) {                                                                          \
    const float *ar = a + (int64_t)r * as0, *br = b + (int64_t)r * bs0;                                         \
    float *o = out + (int64_t)r * cols;                                                                         \
    if (as1 == 1 && bs1 == 1) {                                                                                 \
      for (int32_t i = 0; i < cols; i++) { const float x = ar[i], y = br[i]; o[i] = (EXPR); }                   \
    } else if (as1 == 1 && bs1 == 0) {                                                                          \
      const float y = br[0];                                                                                    \
      for (int32_t i = 0; i < cols; i++) { const float x = ar[i]; o[i] = (EXPR); }                              \
    } else if (as1 == 0 && bs1 == 1) {                                                                          \
      const float x = ar[0];                                                                                    \
      for (int32_t i = 0; i < cols; i++) { const float y = br[i]; o[i] = (EXPR); }                              \
    } else {                                                                                                    \
      for (int32_t i = 0; i < cols; i++) { const float x = ar[(int64_t)i * as1], y = br[(int64_t)i * bs1];      \
        o[i] = (EXPR); }                                                                                        \
    }                                                                                                           \
  }

void arc_binary2d(int32_t op, const float *a, int32_t as0, int32_t as1, const float *b, int32_t bs0, int32_t bs1,
                  float *out, int32_t rows, int32_t cols) {
  switch (op) {
    case B_ADD: BIN_LOOP(x + y) break;
    case B_SUB: BIN_LOOP(x - y) break;
    case B_MUL: BIN_LOOP(x * y) break;
    case B_DIV: BIN_LOOP(x / y) break;
    case B_MAX: BIN_LOOP((x != x || y != y) ? NAN : x >= y ? x : y) break;
    case B_MIN: BIN_LOOP((x != x || y != y) ? NAN : x <= y ? x : y) break;
    case B_GT: BIN_LOOP(x > y ? 1.0f : 0.0f) break;
    case B_GE: BIN_LOOP(x >= y ? 1.0f : 0.0f) break;
    case B_LT: BIN_LOOP(x < y ? 1.0f : 0.0f) break;
    case B_LE: BIN_LOOP(x <= y ? 1.0f : 0.0f) break;
    case B_EQ: BIN_LOOP(x == y ? 1.0f : 0.0f) break;
  }
}

// ---- Reductions ----------------------------------------------------------------------------------------------
// out[r·os0 + c·os1] += alpha · x[r, c] for contiguous x [rows, cols]: the adjoint of a 2-D broadcast. os1 = 0 sums
// each row (conv bias grads), os0 = 0 sums columns (linear bias grads), both nonzero adds elementwise.
void arc_sum_to2d(const float *restrict x, int32_t rows, int32_t cols, float *restrict out, int32_t os0,
                  int32_t os1, double alpha) {
  if (os1 == 0) {
    for (int32_t r = 0; r < rows; r++) {
      const float *xr = x + (int64_t)r * cols;
      // Double partial sums in 8 lanes (vectorized); cpu.ts sums in double too, so float results agree.
      double acc[8] = {0};
      int32_t i = 0;
      for (; i + 8 <= cols; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += xr[i + k];
      double s = 0;
      for (; i < cols; i++) s += xr[i];
      s += ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
      float *o = out + (int64_t)r * os0;
      *o = (float)(*o + alpha * s);
    }
  } else if (os1 == 1) {
    for (int32_t r = 0; r < rows; r++) {
      const float *xr = x + (int64_t)r * cols;
      float *o = out + (int64_t)r * os0;
      if (alpha == 1.0) for (int32_t i = 0; i < cols; i++) o[i] += xr[i];
      else for (int32_t i = 0; i < cols; i++) o[i] = (float)(o[i] + alpha * xr[i]);
    }
  } else {
    for (int32_t r = 0; r < rows; r++)
      for (int32_t i = 0; i < cols; i++) {
        float *o = out + (int64_t)r * os0 + (int64_t)i * os1;
        *o = (float)(*o + alpha * x[(int64_t)r * cols + i]);
      }
  }
}

// ---- Strided copy (up to 6 dims; geo = shape[6], src strides[6], dst strides[6]) -----------------------------
static void copy6(const float *src, int64_t src_off, float *dst, int64_t dst_off, const int32_t *d, const int32_t *s,
                  const int32_t *t, int32_t accumulate) {
  const int32_t n = d[5];
  const int64_t ss = s[5], sd = t[5];
  for (int32_t i0 = 0; i0 < d[0]; i0++)
    for (int32_t i1 = 0; i1 < d[1]; i1++)
      for (int32_t i2 = 0; i2 < d[2]; i2++)
        for (int32_t i3 = 0; i3 < d[3]; i3++)
          for (int32_t i4 = 0; i4 < d[4]; i4++) {
            const float *a = src + src_off + (int64_t)i0 * s[0] + (int64_t)i1 * s[1] + (int64_t)i2 * s[2] +
                             (int64_t)i3 * s[3] + (int64_t)i4 * s[4];
            float *b = dst + dst_off + (int64_t)i0 * t[0] + (int64_t)i1 * t[1] + (int64_t)i2 * t[2] +
                       (int64_t)i3 * t[3] + (int64_t)i4 * t[4];
            if (accumulate) {
              if (ss == 1 && sd == 1) for (int32_t i = 0; i < n; i++) b[i] += a[i];
              else for (int32_t i = 0; i < n; i++) b[i * sd] += a[i * ss];
            } else if (ss == 1 && sd == 1) {
              if (n >= 64) memcpy(b, a, (size_t)n * sizeof(float));
              else for (int32_t i = 0; i < n; i++) b[i] = a[i];
            } else if (ss == 0) {
              const float v = a[0];
              for (int32_t i = 0; i < n; i++) b[i * sd] = v;
            } else if (sd == 1) {
              for (int32_t i = 0; i < n; i++) b[i] = a[i * ss];
            } else {
              for (int32_t i = 0; i < n; i++) b[i * sd] = a[i * ss];
            }
          }
}

// Memory-bound copies of 64K+ elements run on two threads, sliced along the outermost dim whose slices write
// disjoint ranges of dst (its stride exceeds the span of the dims inside it), so accumulating adjoints are safe too.
typedef struct {
  const float *src;
  float *dst;
  int64_t src_off, dst_off;
  int32_t d[6], s[6], t[6], accumulate, dim, per;
} copy_args;

static int copy_slice(const void *ctx, int slice) {
  const copy_args *a = ctx;
  const int32_t lo = slice * a->per, hi = lo + a->per < a->d[a->dim] ? lo + a->per : a->d[a->dim];
  if (lo >= hi) return 0;
  int32_t d[6];
  memcpy(d, a->d, sizeof d);
  d[a->dim] = hi - lo;
  copy6(a->src, a->src_off + (int64_t)lo * a->s[a->dim], a->dst, a->dst_off + (int64_t)lo * a->t[a->dim], d, a->s,
        a->t, a->accumulate);
  return 0;
}

void arc_copy6(const float *src, int32_t src_off, float *dst, int32_t dst_off, const int32_t *geo, int32_t accumulate,
               int32_t threads) {
  copy_args a = {src, dst, src_off, dst_off, {0}, {0}, {0}, accumulate, -1, 0};
  memcpy(a.d, geo, sizeof a.d), memcpy(a.s, geo + 6, sizeof a.s), memcpy(a.t, geo + 12, sizeof a.t);
  int64_t total = 1;
  for (int i = 0; i < 6; i++) total *= a.d[i];
  if (threads > 1 && total >= 65536) {
    for (int dim = 0; dim < 5 && a.dim < 0; dim++) {
      if (a.d[dim] < 2) continue;
      int64_t span = 0;
      for (int e = dim + 1; e < 6; e++) span += (int64_t)(a.d[e] - 1) * (a.t[e] < 0 ? -a.t[e] : a.t[e]);
      if ((a.t[dim] < 0 ? -(int64_t)a.t[dim] : a.t[dim]) > span) a.dim = dim;
      else break; // an outer dim whose slices overlap: do not look further in
    }
  }
  if (a.dim < 0) {
    copy6(src, src_off, dst, dst_off, a.d, a.s, a.t, accumulate);
    return;
  }
  const int slices = a.d[a.dim] < 8 ? a.d[a.dim] : 8;
  a.per = (a.d[a.dim] + slices - 1) / slices;
  arc_parallel(copy_slice, &a, slices, threads);
}

// ---- im2col / col2im (geo = batch, channels, height, width, kh, kw, sh, sw, ph, pw, oh, ow) -------------------
// Both slice over channels on two threads: channel c owns rows c·KH·KW.. of col and plane c of every image in x.
typedef struct {
  void (*run)(const float *, const int32_t *, float *, int32_t, int32_t); // im2col_channels or col2im_channels
  const float *in;
  float *out;
  const int32_t *geo;
  int32_t per;
} conv_args;

static void im2col_channels(const float *restrict x, const int32_t *geo, float *restrict col, int32_t c0, int32_t c1) {
  const int32_t N = geo[0], C = geo[1], H = geo[2], W = geo[3], KH = geo[4], KW = geo[5], SH = geo[6], SW = geo[7],
                PH = geo[8], PW = geo[9], OH = geo[10], OW = geo[11];
  const int64_t P = (int64_t)OH * OW, cols = N * P, hw = (int64_t)H * W;
  for (int32_t c = c0; c < c1; c++)
    for (int32_t ki = 0; ki < KH; ki++)
      for (int32_t kj = 0; kj < KW; kj++) {
        const int64_t row = ((int64_t)(c * KH + ki) * KW + kj) * cols;
        for (int32_t b = 0; b < N; b++) {
          const float *xb = x + ((int64_t)b * C + c) * hw;
          float *o = col + row + b * P;
          for (int32_t oh = 0; oh < OH; oh++, o += OW) {
            const int32_t ih = oh * SH + ki - PH;
            if (ih < 0 || ih >= H) { memset(o, 0, (size_t)OW * sizeof(float)); continue; }
            const float *xr = xb + (int64_t)ih * W;
            const int32_t iw0 = kj - PW;
            if (iw0 >= 0 && iw0 + (OW - 1) * SW < W) {
              // Rows are short (7-20 outputs): an inline loop beats a memcpy call here.
              if (SW == 1) for (int32_t ow = 0; ow < OW; ow++) o[ow] = xr[iw0 + ow];
              else for (int32_t ow = 0; ow < OW; ow++) o[ow] = xr[iw0 + ow * SW];
            } else {
              for (int32_t ow = 0; ow < OW; ow++) {
                const int32_t iw = iw0 + ow * SW;
                o[ow] = (iw >= 0 && iw < W) ? xr[iw] : 0.0f;
              }
            }
          }
        }
      }
}

#if defined(__AVX512F__)
// Unpadded geometries (our networks'): with each image's plane of channel c first split into its SH·SW stride phases
// (phase (u, v) holds x[SH·i + u, SW·j + v]), every output row of every (ki, kj) is a contiguous run of one phase,
// copied 16 floats per masked load/store. About 2x the loop above, which GCC leaves scalar for SW > 1.
enum { IM2COL_PLANE_MAX = 16384 }; // floats of one split plane, on the stack (64 KiB); larger planes take the loop above
static void im2col_unpadded(const float *restrict x, const int32_t *geo, float *restrict col, int32_t c0, int32_t c1) {
  const int32_t N = geo[0], C = geo[1], H = geo[2], W = geo[3], KH = geo[4], KW = geo[5], SH = geo[6], SW = geo[7],
                OH = geo[10], OW = geo[11];
  const int64_t P = (int64_t)OH * OW, cols = N * P, hw = (int64_t)H * W;
  const int32_t HQ = (H + SH - 1) / SH, WQ = (W + SW - 1) / SW;
  const int32_t pq = HQ * WQ; // one phase
  const int split = SH > 1 || SW > 1;
  if ((int64_t)SH * SW * pq > IM2COL_PLANE_MAX) {
    im2col_channels(x, geo, col, c0, c1);
    return;
  }
  float buf[split ? SH * SW * pq : 1];
  const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(SW));
  for (int32_t c = c0; c < c1; c++)
    for (int32_t b = 0; b < N; b++) {
      const float *plane = x + ((int64_t)b * C + c) * hw;
      if (split) {
        for (int32_t ih = 0; ih < H; ih++) {
          const float *xr = plane + (int64_t)ih * W;
          float *d = buf + (ih % SH) * SW * pq + (ih / SH) * WQ;
          for (int32_t v = 0; v < SW; v++) {
            const int32_t len = (W - v + SW - 1) / SW;
            for (int32_t q = 0; q < len; q += 16) {
              const __mmask16 mk = len - q >= 16 ? 0xFFFF : (__mmask16)((1u << (len - q)) - 1);
              _mm512_mask_storeu_ps(d + v * pq + q, mk,
                                    _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mk, idx, xr + q * SW + v, 4));
            }
          }
        }
      }
      const int32_t ls = split ? WQ : W;
      for (int32_t ki = 0; ki < KH; ki++)
        for (int32_t kj = 0; kj < KW; kj++) {
          const float *s = split ? buf + ((ki % SH) * SW + kj % SW) * pq + (ki / SH) * WQ + kj / SW
                                 : plane + (int64_t)ki * W + kj;
          float *o = col + ((int64_t)(c * KH + ki) * KW + kj) * cols + b * P;
          for (int32_t oh = 0; oh < OH; oh++, o += OW, s += ls) {
            for (int32_t ow = 0; ow < OW; ow += 16) {
              const __mmask16 mk = OW - ow >= 16 ? 0xFFFF : (__mmask16)((1u << (OW - ow)) - 1);
              _mm512_mask_storeu_ps(o + ow, mk, _mm512_maskz_loadu_ps(mk, s + ow));
            }
          }
        }
    }
}
#endif

static void col2im_channels(const float *restrict col, const int32_t *geo, float *restrict dx, int32_t c0,
                            int32_t c1) {
  const int32_t N = geo[0], C = geo[1], H = geo[2], W = geo[3], KH = geo[4], KW = geo[5], SH = geo[6], SW = geo[7],
                PH = geo[8], PW = geo[9], OH = geo[10], OW = geo[11];
  const int64_t P = (int64_t)OH * OW, cols = N * P, hw = (int64_t)H * W;
  for (int32_t c = c0; c < c1; c++)
    for (int32_t ki = 0; ki < KH; ki++)
      for (int32_t kj = 0; kj < KW; kj++) {
        const int64_t row = ((int64_t)(c * KH + ki) * KW + kj) * cols;
        for (int32_t b = 0; b < N; b++) {
          float *xb = dx + ((int64_t)b * C + c) * hw;
          const float *o = col + row + b * P;
          for (int32_t oh = 0; oh < OH; oh++, o += OW) {
            const int32_t ih = oh * SH + ki - PH;
            if (ih < 0 || ih >= H) continue;
            float *xr = xb + (int64_t)ih * W;
            const int32_t iw0 = kj - PW;
            if (iw0 >= 0 && iw0 + (OW - 1) * SW < W) {
              for (int32_t ow = 0; ow < OW; ow++) xr[iw0 + ow * SW] += o[ow];
            } else {
              for (int32_t ow = 0; ow < OW; ow++) {
                const int32_t iw = iw0 + ow * SW;
                if (iw >= 0 && iw < W) xr[iw] += o[ow];
              }
            }
          }
        }
      }
}

#if defined(__AVX512F__)
// The adjoint of im2col_unpadded: each output row of each (ki, kj) adds into a contiguous run of one stride phase of
// a zeroed split plane (16 floats per masked load/add/store), and the phases are then added into the image, a
// gather/scatter per input row and phase. The plain loop above adds one strided float at a time (1.4 ns per column
// element for Doom's conv2, 3.7x this).
static void col2im_unpadded(const float *restrict col, const int32_t *geo, float *restrict dx, int32_t c0,
                            int32_t c1) {
  const int32_t N = geo[0], C = geo[1], H = geo[2], W = geo[3], KH = geo[4], KW = geo[5], SH = geo[6], SW = geo[7],
                OH = geo[10], OW = geo[11];
  const int64_t P = (int64_t)OH * OW, cols = N * P, hw = (int64_t)H * W;
  const int32_t HQ = (H + SH - 1) / SH, WQ = (W + SW - 1) / SW, pq = HQ * WQ;
  if ((int64_t)SH * SW * pq > IM2COL_PLANE_MAX) {
    col2im_channels(col, geo, dx, c0, c1);
    return;
  }
  float buf[SH * SW * pq];
  const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(SW));
  for (int32_t c = c0; c < c1; c++)
    for (int32_t b = 0; b < N; b++) {
      memset(buf, 0, sizeof buf);
      for (int32_t ki = 0; ki < KH; ki++)
        for (int32_t kj = 0; kj < KW; kj++) {
          float *d = buf + ((ki % SH) * SW + kj % SW) * pq + (ki / SH) * WQ + kj / SW;
          const float *o = col + ((int64_t)(c * KH + ki) * KW + kj) * cols + b * P;
          for (int32_t oh = 0; oh < OH; oh++, o += OW, d += WQ) {
            for (int32_t ow = 0; ow < OW; ow += 16) {
              const __mmask16 mk = OW - ow >= 16 ? 0xFFFF : (__mmask16)((1u << (OW - ow)) - 1);
              _mm512_mask_storeu_ps(d + ow, mk,
                                    _mm512_add_ps(_mm512_maskz_loadu_ps(mk, d + ow), _mm512_maskz_loadu_ps(mk, o + ow)));
            }
          }
        }
      float *plane = dx + ((int64_t)b * C + c) * hw;
      for (int32_t ih = 0; ih < H; ih++) {
        float *xr = plane + (int64_t)ih * W;
        const float *s = buf + (ih % SH) * SW * pq + (ih / SH) * WQ;
        for (int32_t v = 0; v < SW; v++) {
          const int32_t len = (W - v + SW - 1) / SW;
          for (int32_t q = 0; q < len; q += 16) {
            const __mmask16 mk = len - q >= 16 ? 0xFFFF : (__mmask16)((1u << (len - q)) - 1);
            float *x0 = xr + q * SW + v;
            const __m512 sum = _mm512_add_ps(_mm512_mask_i32gather_ps(_mm512_setzero_ps(), mk, idx, x0, 4),
                                             _mm512_maskz_loadu_ps(mk, s + v * pq + q));
            _mm512_mask_i32scatter_ps(x0, mk, idx, sum, 4);
          }
        }
      }
    }
}
#endif

static int conv_slice(const void *ctx, int slice) {
  const conv_args *a = ctx;
  const int32_t c0 = slice * a->per, c1 = c0 + a->per < a->geo[1] ? c0 + a->per : a->geo[1];
  if (c0 < c1) a->run(a->in, a->geo, a->out, c0, c1);
  return 0;
}

static int conv_slices(const int32_t *geo, int32_t threads) {
  const int64_t work = (int64_t)geo[1] * geo[4] * geo[5] * geo[0] * geo[10] * geo[11];
  if (threads < 2 || work < 65536 || geo[1] < 2) return 1;
  return geo[1] < 8 ? geo[1] : 8;
}

void arc_im2col(const float *x, const int32_t *geo, float *col, int32_t threads) {
  const int slices = conv_slices(geo, threads);
#if defined(__AVX512F__)
  const conv_args a = {geo[8] == 0 && geo[9] == 0 ? im2col_unpadded : im2col_channels, x, col, geo,
                       (geo[1] + slices - 1) / slices};
#else
  const conv_args a = {im2col_channels, x, col, geo, (geo[1] + slices - 1) / slices};
#endif
  arc_parallel(conv_slice, &a, slices, threads);
}

void arc_col2im(const float *col, const int32_t *geo, float *dx, int32_t threads) {
  const int slices = conv_slices(geo, threads);
#if defined(__AVX512F__)
  const conv_args a = {geo[8] == 0 && geo[9] == 0 && geo[11] >= 8 ? col2im_unpadded : col2im_channels, col, dx, geo,
                       (geo[1] + slices - 1) / slices};
#else
  const conv_args a = {col2im_channels, col, dx, geo, (geo[1] + slices - 1) / slices};
#endif
  arc_parallel(conv_slice, &a, slices, threads);
}

// ---- running mean/std normalization (policy inputs) -----------------------------------------------------------
// Per column i of [rows, size]: x = clamp((x - mean[i]) * inv[i], -clip, clip), in double and rounded once like V8.
void arc_standardize(float *restrict x, int32_t rows, int32_t size, const double *restrict mean,
                     const double *restrict inv, double clip) {
  for (int32_t r = 0; r < rows; r++) {
    float *row = x + (int64_t)r * size;
    for (int32_t i = 0; i < size; i++) {
      double y = ((double)row[i] - mean[i]) * inv[i];
      row[i] = (float)(y > clip ? clip : y < -clip ? -clip : y);
    }
  }
}

// Batch moments of the rows whose mask byte is nonzero (mask NULL: every row): mean[i], then m2[i], the sum of squared
// deviations from it. Rows are added in order, so each column sums exactly as the TypeScript loop does. Returns the
// number of rows taken (0 leaves mean and m2 zero).
int32_t arc_masked_moments(const float *restrict x, int32_t rows, int32_t size, const uint8_t *restrict mask,
                           double *restrict mean, double *restrict m2) {
  int32_t m = 0;
  for (int32_t i = 0; i < size; i++) mean[i] = 0, m2[i] = 0;
  for (int32_t r = 0; r < rows; r++) {
    if (mask && !mask[r]) continue;
    const float *row = x + (int64_t)r * size;
    for (int32_t i = 0; i < size; i++) mean[i] += row[i];
    m++;
  }
  if (m == 0) return 0;
  for (int32_t i = 0; i < size; i++) mean[i] /= m;
  for (int32_t r = 0; r < rows; r++) {
    if (mask && !mask[r]) continue;
    const float *row = x + (int64_t)r * size;
    for (int32_t i = 0; i < size; i++) {
      double d = row[i] - mean[i];
      m2[i] += d * d;
    }
  }
  return m;
}

// ---- uint8 images to float32 (policy inputs) -------------------------------------------------------------------
// out = raw * scale, computed in double and rounded once like V8; with hwc, [rows, hw, c] becomes [rows, c, hw].
#if defined(__AVX512VBMI__) && defined(__AVX512DQ__)
// Channels-last RGB: 16 pixels (48 bytes) per step, each channel's 16 bytes picked out by one byte permute, then
// scaled in double and rounded once like the TypeScript twin (the strided scalar loop is ~5x slower).
static void u8_rgb_to_planes(const uint8_t *restrict raw, int32_t rows, int32_t hw, double scale,
                             float *restrict out) {
  uint8_t pick[3][64] = {{0}};
  for (int ch = 0; ch < 3; ch++)
    for (int i = 0; i < 16; i++) pick[ch][i] = (uint8_t)(3 * i + ch);
  const __m512i idx[3] = {_mm512_loadu_si512(pick[0]), _mm512_loadu_si512(pick[1]), _mm512_loadu_si512(pick[2])};
  const __m512d vs = _mm512_set1_pd(scale);
  for (int64_t r = 0; r < rows; r++) {
    const uint8_t *src = raw + r * 3 * hw;
    float *dst = out + r * 3 * hw;
    for (int32_t p = 0; p < hw; p += 16) {
      const int n = hw - p < 16 ? hw - p : 16;
      const __mmask64 mb = n == 16 ? (__mmask64)0xFFFFFFFFFFFFull : (((__mmask64)1 << (3 * n)) - 1);
      const __mmask16 mf = (__mmask16)((1u << n) - 1);
      const __m512i v = _mm512_maskz_loadu_epi8(mb, src + (int64_t)p * 3);
      for (int ch = 0; ch < 3; ch++) {
        const __m512i q = _mm512_cvtepu8_epi32(_mm512_castsi512_si128(_mm512_permutexvar_epi8(idx[ch], v)));
        const __m256 lo = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtepi32_pd(_mm512_castsi512_si256(q)), vs));
        const __m256 hi = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(q, 1)), vs));
        _mm512_mask_storeu_ps(dst + (int64_t)ch * hw + p, mf, _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1));
      }
    }
  }
}
#endif

void arc_u8_to_f32(const uint8_t *restrict raw, int32_t rows, int32_t c, int32_t hw, int32_t hwc, double scale,
                   float *restrict out) {
#if defined(__AVX512VBMI__) && defined(__AVX512DQ__)
  if (hwc && c == 3) {
    u8_rgb_to_planes(raw, rows, hw, scale, out);
    return;
  }
#endif
  const int64_t size = (int64_t)c * hw;
  for (int32_t r = 0; r < rows; r++) {
    const uint8_t *src = raw + r * size;
    float *dst = out + r * size;
    if (!hwc || c == 1) {
      for (int64_t i = 0; i < size; i++) dst[i] = (float)(src[i] * scale);
    } else {
      for (int32_t ch = 0; ch < c; ch++) {
        float *plane = dst + (int64_t)ch * hw;
        for (int32_t p = 0; p < hw; p++) plane[p] = (float)(src[(int64_t)p * c + ch] * scale);
      }
    }
  }
}

// Arcadia's own single-precision GEMM for AVX-512 CPUs, compiled into the kernel library after parallel.c and
// kernels.c.
//
// Why our own: the Debian OpenBLAS reaches its peak only at large square shapes, and where OPENBLAS_CORETYPE pins
// its AVX2 ("Haswell") kernels (our CI machines do) it runs the learners' shapes (M = 32..128 rows against N in the
// thousands, K = 64..14090) at 45-80 GFLOP/s per core. These kernels do them at 1.2-1.6x that on one core, and on two
// cores without OpenBLAS's idle threads spinning for ~0.1 s after every call (see `deno task bench --only models`).
//
// Three paths, all row-major (C = alpha * op(A) op(B) + beta * C):
// - packed (BLIS-style): the k loop runs in blocks of KC; per block, op(B) is packed into 32-column panels ([k][32],
//   zero padded) and op(A) into 8-row panels ([k][8]); the micro-kernel keeps an 8x32 tile of C in 16 zmm registers,
//   broadcasting A and loading B. One B panel (KC x 32 floats = 16 KiB) stays in L1 while every A panel of the block
//   streams past it from L2.
// - dot: A·Bᵀ with a long k and few rows or columns (small batches, narrow weight gradients), as tiles of dot
//   products read in place (no packing).
// - gemv: one row (batch-1 inference), streaming the matrix once.
// Work is sliced along n (or m) for the two threads of parallel.c; each element's sum runs over k in the same order
// whatever the split, so results do not depend on the thread count.
//
// Without AVX-512 `arc_sgemm` returns -1 and the caller uses BLAS.
#include <stdint.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

enum { GEMM_MR = 8, GEMM_NR = 32, GEMM_KC = 128, GEMM_MC = 128, GEMM_NC = 1024 };

typedef struct {
  int trans_a, trans_b, m, n, k, lda, ldb, ldc;
  float alpha, beta;
  const float *a, *b;
  float *c;
  const int32_t *b_rows; // NULL, or where each stored row of B starts (see b_row)
} gemm_args;

// Stored row r of B (a row of op(B) when B is not transposed, a column of op(B) when it is): at b + r·ldb, or at
// b + b_rows[r] when the caller gives each row's offset. Rows may then overlap: a strided convolution's kernel shifts
// read one space-to-depth matrix at different offsets, and become one GEMM (conv2dFlat in autograd.ts).
static inline const float *b_row(const gemm_args *g, int r) {
  return g->b + (g->b_rows ? (size_t)g->b_rows[r] : (size_t)r * g->ldb);
}

// ---- packing --------------------------------------------------------------------------------------------------

// op(A)[i0 .. i0+mc, p0 .. p0+kc] into ceil(mc/8) panels of [kc][8], rows past mc zero.
static void pack_a(const gemm_args *g, int i0, int mc, int p0, int kc, float *restrict dst) {
  for (int ir = 0; ir < mc; ir += GEMM_MR) {
    const int mr = mc - ir < GEMM_MR ? mc - ir : GEMM_MR;
    float *restrict d = dst + (size_t)ir * kc;
    if (g->trans_a) { // A stored k x m: the 8 rows of a panel are contiguous for each p
      const float *s = g->a + (size_t)p0 * g->lda + i0 + ir;
      if (mr == GEMM_MR) {
        for (int p = 0; p < kc; p++) _mm256_store_ps(d + p * GEMM_MR, _mm256_loadu_ps(s + (size_t)p * g->lda));
      } else {
        for (int p = 0; p < kc; p++) {
          for (int r = 0; r < GEMM_MR; r++) d[p * GEMM_MR + r] = r < mr ? s[(size_t)p * g->lda + r] : 0.0f;
        }
      }
    } else if (mr == GEMM_MR && (int64_t)g->lda * GEMM_MR < INT32_MAX) { // A stored m x k: gather down 8 rows
      const float *s = g->a + (size_t)(i0 + ir) * g->lda + p0;
      const __m256i rows = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(g->lda));
      for (int p = 0; p < kc; p++) _mm256_store_ps(d + p * GEMM_MR, _mm256_i32gather_ps(s + p, rows, 4));
    } else {
      for (int p = 0; p < kc; p++) {
        for (int r = 0; r < GEMM_MR; r++) d[p * GEMM_MR + r] = r < mr ? g->a[(size_t)(i0 + ir + r) * g->lda + p0 + p] : 0.0f;
      }
    }
  }
}

// In-register transpose of a 16x16 block: on return r[q] holds what was column q (lane i = old row i).
static inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; i++) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
    r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c)), r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d)), r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int h = 0; h < 16; h += 8) {
    for (int i = 0; i < 4; i++) {
      t[h + i] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0x88);
      t[h + i + 4] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0xdd);
    }
  }
  for (int i = 0; i < 8; i++) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
}

// op(B)[p0 .. p0+kc, j0 .. j0+nc] into ceil(nc/32) panels of [kc][32], columns past nc zero.
static void pack_b(const gemm_args *g, int p0, int kc, int j0, int nc, float *restrict dst) {
  if (!g->trans_b) { // B stored k x n: row by row, so reads stream along each row (a panel at a time would read
    // 128 bytes per row at a page-sized stride, which the hardware prefetcher does not follow)
    const int full = nc & ~(GEMM_NR - 1), nr = nc - full;
    const __mmask16 m0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1);
    const __mmask16 m1 = nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;
    for (int p = 0; p < kc; p++) {
      const float *row = b_row(g, p0 + p) + j0;
      float *d = dst + (size_t)p * GEMM_NR;
      for (int jr = 0; jr < full; jr += GEMM_NR) {
        _mm512_store_ps(d + (size_t)jr * kc, _mm512_loadu_ps(row + jr));
        _mm512_store_ps(d + (size_t)jr * kc + 16, _mm512_loadu_ps(row + jr + 16));
      }
      if (nr) {
        _mm512_store_ps(d + (size_t)full * kc, _mm512_maskz_loadu_ps(m0, row + full));
        _mm512_store_ps(d + (size_t)full * kc + 16, _mm512_maskz_loadu_ps(m1, row + full + 16));
      }
    }
    return;
  }
  for (int jr = 0; jr < nc; jr += GEMM_NR) {
    const int nr = nc - jr < GEMM_NR ? nc - jr : GEMM_NR;
    float *restrict d = dst + (size_t)jr * kc;
    // B stored n x k from here on.
    const float *rows[GEMM_NR];
    for (int j = 0; j < GEMM_NR; j++) rows[j] = j < nr ? b_row(g, j0 + jr + j) + p0 : NULL;
    if (nr == GEMM_NR) { // 16x16 blocks transposed in registers (~3x a gather)
      const int full = kc & ~15;
      for (int p = 0; p < full; p += 16) {
        for (int h = 0; h < GEMM_NR; h += 16) {
          __m512 r[16];
          for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(rows[h + i] + p);
          transpose16(r);
          for (int q = 0; q < 16; q++) _mm512_store_ps(d + (p + q) * GEMM_NR + h, r[q]);
        }
      }
      for (int p = full; p < kc; p++) {
        for (int j = 0; j < GEMM_NR; j++) d[p * GEMM_NR + j] = rows[j][p];
      }
    } else {
      for (int p = 0; p < kc; p++) {
        for (int j = 0; j < GEMM_NR; j++) d[p * GEMM_NR + j] = j < nr ? rows[j][p] : 0.0f;
      }
    }
  }
}

// ---- micro-kernel ---------------------------------------------------------------------------------------------

// C[0..mr, 0..nr] (row stride ldc) = alpha * acc + (first ? beta * C : C), where acc = Σ_p a[p][r] * b[p][j].
// `first` is the first k block: beta applies once; beta == 0 never reads C (it may hold NaN).
static inline void micro_8x32(int kc, const float *restrict a, const float *restrict b, float *restrict c, int ldc,
                              float alpha, float beta, int first, int mr, int nr) {
  // Constant trip counts: GCC unrolls these loops and keeps the 16 accumulators in registers (checked in the asm).
  __m512 acc[GEMM_MR][2];
  for (int r = 0; r < GEMM_MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int p = 0; p < kc; p++) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
    for (int r = 0; r < GEMM_MR; r++) {
      const __m512 ai = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(ai, b0, acc[r][0]), acc[r][1] = _mm512_fmadd_ps(ai, b1, acc[r][1]);
    }
    a += GEMM_MR;
    b += GEMM_NR;
  }
  const __mmask16 m0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1);
  const __mmask16 m1 = nr >= 32 ? 0xFFFF : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(first ? beta : 1.0f);
  const int read_c = !first || beta != 0.0f;
  for (int r = 0; r < mr; r++) {
    float *row = c + (size_t)r * ldc;
    __m512 v0 = _mm512_mul_ps(va, acc[r][0]), v1 = _mm512_mul_ps(va, acc[r][1]);
    if (read_c) {
      v0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, row), v0);
      v1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, row + 16), v1);
    }
    _mm512_mask_storeu_ps(row, m0, v0);
    _mm512_mask_storeu_ps(row + 16, m1, v1);
  }
}

// ---- one thread's share: rows [i_begin, i_end) x columns [j_begin, j_end) of C -------------------------------

// Packing buffers per calling thread, kept between calls (a learner calls GEMM thousands of times per second).
static __thread float *tls_pa, *tls_pb, *tls_ct; // packing buffers; Cᵀ of a swapped product (see arc_sgemm_rows)
static __thread size_t tls_ct_len;
static __thread uint16_t *tls_bf_a, *tls_bf_b; // gemm_bf16.c's packing buffers (bfloat16)
static __thread int tls_bf_a_rows;             // rows tls_bf_a holds
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static void tls_free(void *unused) {
  (void)unused;
  free(tls_pa), free(tls_pb), free(tls_ct), free(tls_bf_a), free(tls_bf_b);
  tls_pa = tls_pb = tls_ct = NULL;
  tls_bf_a = tls_bf_b = NULL;
  tls_ct_len = 0;
  tls_bf_a_rows = 0;
}
// The destructor runs at thread exit, maybe after the Worker that opened the library closed it: pin it first.
static void tls_init(void) {
  pthread_once(&pin_once, pin_self);
  if (pinned) pthread_key_create(&tls_key, tls_free);
}

// Has this thread's buffers (here and in gemm_bf16.c) freed at its exit; -2 when the library could not pin itself.
static int tls_register(void) {
  pthread_once(&tls_once, tls_init);
  if (!pinned) return -2;
  pthread_setspecific(tls_key, &tls_key); // non-NULL value: the destructor runs at thread exit
  return 0;
}

static int buffers(float **pa, float **pb) {
  if (!tls_pa) {
    if (tls_register() != 0) return -2;
    tls_pa = aligned_alloc(64, sizeof(float) * GEMM_MC * GEMM_KC);
    tls_pb = aligned_alloc(64, sizeof(float) * GEMM_KC * GEMM_NC);
    if (!tls_pa || !tls_pb) {
      tls_free(NULL);
      return -1;
    }
  }
  *pa = tls_pa, *pb = tls_pb;
  return 0;
}

// This thread's buffer for a product computed transposed, grown to `len` floats (kept like the packing buffers, and
// freed with them at thread exit). NULL when out of memory.
static float *transposed_scratch(size_t len) {
  float *pa, *pb;
  if (buffers(&pa, &pb) != 0) return NULL; // also registers the thread-exit destructor
  if (tls_ct_len < len) {
    free(tls_ct);
    tls_ct = malloc(sizeof(float) * len);
    tls_ct_len = tls_ct ? len : 0;
  }
  return tls_ct;
}

static int gemm_part(const gemm_args *g, int i_begin, int i_end, int j_begin, int j_end) {
  float *pa, *pb;
  if (buffers(&pa, &pb) != 0) return -2;
  for (int jc = j_begin; jc < j_end; jc += GEMM_NC) {
    const int nc = j_end - jc < GEMM_NC ? j_end - jc : GEMM_NC;
    for (int pc = 0; pc < g->k; pc += GEMM_KC) {
      const int kc = g->k - pc < GEMM_KC ? g->k - pc : GEMM_KC;
      pack_b(g, pc, kc, jc, nc, pb);
      for (int ic = i_begin; ic < i_end; ic += GEMM_MC) {
        const int mc = i_end - ic < GEMM_MC ? i_end - ic : GEMM_MC;
        pack_a(g, ic, mc, pc, kc, pa);
        for (int jr = 0; jr < nc; jr += GEMM_NR) {
          const int nr = nc - jr < GEMM_NR ? nc - jr : GEMM_NR;
          for (int ir = 0; ir < mc; ir += GEMM_MR) {
            const int mr = mc - ir < GEMM_MR ? mc - ir : GEMM_MR;
            micro_8x32(kc, pa + (size_t)ir * kc, pb + (size_t)jr * kc, g->c + (size_t)(ic + ir) * g->ldc + jc + jr,
                       g->ldc, g->alpha, g->beta, pc == 0, mr, nr);
          }
        }
      }
    }
  }
  return 0;
}

// ---- A times B-transposed with a long k: dot products, no packing ---------------------------------------------
// Weight gradients (dW = dY · Xᵀ) have both operands contiguous along a long k (14090 for conv1 at batch 32) and a
// small C. Packing them would cost as much as the arithmetic; 4x4 tiles of dot products read them in place instead.
// k runs in blocks of DOT_KB so a tile's rows stay in L1 while the other operand's block sits in L2.

// Tiles of DOT_MI rows of A by DOT_NJ rows of B: 24 accumulators, and per 16 values of k 11 loads for 24 FMAs
// (rows of a long-k operand start unaligned, so most loads split a cache line: loads, not FMAs, bound a 4x4 tile).
enum { DOT_KB = 2048, DOT_MI = 8, DOT_NJ = 3 };

// One tile with MI (a compile-time constant after inlining) rows of A, so a short last tile (m = 9: 8 + 1) computes
// only its own rows; B rows past nj repeat row 0 and are discarded.
static inline __attribute__((always_inline)) void dot_tile_rows(const float *a, int lda, const float *const *brow,
                                                                int kb, const int MI, int nj, float *out) {
  const float *ar[DOT_MI], *br[DOT_NJ];
  for (int r = 0; r < MI; r++) ar[r] = a + (size_t)r * lda;
  for (int q = 0; q < DOT_NJ; q++) br[q] = brow[q < nj ? q : 0];
  __m512 acc[DOT_MI][DOT_NJ];
  for (int r = 0; r < MI; r++)
    for (int q = 0; q < DOT_NJ; q++) acc[r][q] = _mm512_setzero_ps();
  const int full = kb & ~15;
  for (int p = 0; p < full; p += 16) {
    __m512 vb[DOT_NJ];
    for (int q = 0; q < DOT_NJ; q++) vb[q] = _mm512_loadu_ps(br[q] + p);
    for (int r = 0; r < MI; r++) {
      const __m512 va = _mm512_loadu_ps(ar[r] + p);
      for (int q = 0; q < DOT_NJ; q++) acc[r][q] = _mm512_fmadd_ps(va, vb[q], acc[r][q]);
    }
  }
  if (full < kb) {
    const __mmask16 mk = (__mmask16)((1u << (kb - full)) - 1);
    __m512 vb[DOT_NJ];
    for (int q = 0; q < DOT_NJ; q++) vb[q] = _mm512_maskz_loadu_ps(mk, br[q] + full);
    for (int r = 0; r < MI; r++) {
      const __m512 va = _mm512_maskz_loadu_ps(mk, ar[r] + full);
      for (int q = 0; q < DOT_NJ; q++) acc[r][q] = _mm512_fmadd_ps(va, vb[q], acc[r][q]);
    }
  }
  for (int r = 0; r < MI; r++)
    for (int q = 0; q < DOT_NJ; q++) out[r * DOT_NJ + q] = _mm512_reduce_add_ps(acc[r][q]);
}

static void dot_tile(const float *a, int lda, const float *const *brow, int kb, int mi, int nj, float *out) {
  switch (mi) {
  case 1: dot_tile_rows(a, lda, brow, kb, 1, nj, out); break;
  case 2: dot_tile_rows(a, lda, brow, kb, 2, nj, out); break;
  case 3: dot_tile_rows(a, lda, brow, kb, 3, nj, out); break;
  case 4: dot_tile_rows(a, lda, brow, kb, 4, nj, out); break;
  case 5: dot_tile_rows(a, lda, brow, kb, 5, nj, out); break;
  case 6: dot_tile_rows(a, lda, brow, kb, 6, nj, out); break;
  case 7: dot_tile_rows(a, lda, brow, kb, 7, nj, out); break;
  default: dot_tile_rows(a, lda, brow, kb, 8, nj, out); break;
  }
}

static int dot_part(const gemm_args *g, int i_begin, int i_end, int j_begin, int j_end) {
  // The smaller operand's k block stays in L2 and is re-read for every tile of the other.
  const int rows_inner = i_end - i_begin <= j_end - j_begin;
  for (int kb = 0; kb < g->k; kb += DOT_KB) {
    const int kn = g->k - kb < DOT_KB ? g->k - kb : DOT_KB;
    const int first = kb == 0;
    const int step_o = rows_inner ? DOT_NJ : DOT_MI, step_in = rows_inner ? DOT_MI : DOT_NJ;
    const int outer_begin = rows_inner ? j_begin : i_begin, outer_end = rows_inner ? j_end : i_end;
    const int inner_begin = rows_inner ? i_begin : j_begin, inner_end = rows_inner ? i_end : j_end;
    for (int o = outer_begin; o < outer_end; o += step_o) {
      for (int in = inner_begin; in < inner_end; in += step_in) {
        const int i = rows_inner ? in : o, j = rows_inner ? o : in;
        const int mi = i_end - i < DOT_MI ? i_end - i : DOT_MI, nj = j_end - j < DOT_NJ ? j_end - j : DOT_NJ;
        float out[DOT_MI * DOT_NJ];
        const float *brow[DOT_NJ];
        for (int q = 0; q < DOT_NJ; q++) brow[q] = b_row(g, q < nj ? j + q : j) + kb;
        dot_tile(g->a + (size_t)i * g->lda + kb, g->lda, brow, kn, mi, nj, out);
        for (int r = 0; r < mi; r++) {
          float *row = g->c + (size_t)(i + r) * g->ldc + j;
          for (int q = 0; q < nj; q++) {
            const float v = g->alpha * out[r * DOT_NJ + q];
            row[q] = first ? (g->beta == 0.0f ? v : v + g->beta * row[q]) : row[q] + v;
          }
        }
      }
    }
  }
  return 0;
}

// ---- one row times a matrix (batch-1 inference): memory-bound, so both threads stream half the matrix each ------

typedef struct {
  const gemm_args *g;
  int per;
} gemv_slices;

// c[j] = alpha * Σ_p a[p] op(B)[p][j] + beta * c[j] for j in [j0, j1); a's stride is lda when A is stored k x 1.
static int gemv_slice(const void *ctx, int slice) {
  const gemv_slices *s = ctx;
  const gemm_args *g = s->g;
  const int j0 = slice * s->per < g->n ? slice * s->per : g->n, j1 = j0 + s->per < g->n ? j0 + s->per : g->n;
  const int as = g->trans_a ? g->lda : 1;
  const __m512i a_idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(as));
  if (g->trans_b) { // B stored n x k: one dot product per output, four rows of B at a time
    int j = j0;
    for (; j < j1; j += 4) {
      const int nj = j1 - j < 4 ? j1 - j : 4;
      const float *b0 = b_row(g, j);
      const float *b1 = nj > 1 ? b_row(g, j + 1) : b0, *b2 = nj > 2 ? b_row(g, j + 2) : b0;
      const float *b3 = nj > 3 ? b_row(g, j + 3) : b0;
      __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
      for (int p = 0; p < g->k; p += 16) {
        const __mmask16 mk = g->k - p >= 16 ? 0xFFFF : (__mmask16)((1u << (g->k - p)) - 1);
        const __m512 va = as == 1 ? _mm512_maskz_loadu_ps(mk, g->a + p)
                                  : _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mk, a_idx, g->a + (size_t)p * as, 4);
        s0 = _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(mk, b0 + p), s0);
        s1 = _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(mk, b1 + p), s1);
        s2 = _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(mk, b2 + p), s2);
        s3 = _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(mk, b3 + p), s3);
      }
      const float r[4] = {_mm512_reduce_add_ps(s0), _mm512_reduce_add_ps(s1), _mm512_reduce_add_ps(s2),
                          _mm512_reduce_add_ps(s3)};
      for (int q = 0; q < nj; q++) g->c[j + q] = g->alpha * r[q] + (g->beta == 0.0f ? 0.0f : g->beta * g->c[j + q]);
    }
  } else { // B stored k x n: accumulate rows of B, 64 columns at a time in registers
    for (int j = j0; j < j1; j += 64) {
      const int nj = j1 - j < 64 ? j1 - j : 64;
      __mmask16 mk[4];
      for (int v = 0; v < 4; v++) {
        const int left = nj - 16 * v;
        mk[v] = left >= 16 ? 0xFFFF : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
      }
      __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
      for (int p = 0; p < g->k; p++) {
        const __m512 ap = _mm512_set1_ps(g->a[(size_t)p * as]);
        const float *row = b_row(g, p) + j;
        for (int v = 0; v < 4; v++) acc[v] = _mm512_fmadd_ps(ap, _mm512_maskz_loadu_ps(mk[v], row + 16 * v), acc[v]);
      }
      const __m512 va = _mm512_set1_ps(g->alpha), vb = _mm512_set1_ps(g->beta);
      for (int v = 0; v < 4; v++) {
        __m512 out = _mm512_mul_ps(va, acc[v]);
        if (g->beta != 0.0f) out = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mk[v], g->c + j + 16 * v), out);
        _mm512_mask_storeu_ps(g->c + j + 16 * v, mk[v], out);
      }
    }
  }
  return 0;
}

// ---- entry point: C cut into GEMM_SLICES slices for arc_parallel (parallel.c) -------------------------------

enum { GEMM_SLICES = 4 };

typedef struct {
  const gemm_args *g;
  int (*run)(const gemm_args *, int, int, int, int);
  int along_n, per; // slices run along n (else m), `per` columns (rows) each
} gemm_slices;

static int gemm_slice(const void *ctx, int slice) {
  const gemm_slices *j = ctx;
  const gemm_args *g = j->g;
  const int extent = j->along_n ? g->n : g->m;
  const int lo = slice * j->per < extent ? slice * j->per : extent, hi = lo + j->per < extent ? lo + j->per : extent;
  if (lo >= hi) return 0;
  return j->along_n ? j->run(g, 0, g->m, lo, hi) : j->run(g, lo, hi, 0, g->n);
}

// ---- entry point ----------------------------------------------------------------------------------------------

// Returns 0 on success, -1 when built without AVX-512, -2 when out of memory. threads: 1 or 2. b_rows: NULL, or the
// offset of every stored row of B (k of them, n when trans_b), which then replaces ldb.
int arc_sgemm_rows(int32_t trans_a, int32_t trans_b, int32_t m, int32_t n, int32_t k, float alpha, const float *a,
                   int32_t lda, const float *b, int32_t ldb, float beta, float *c, int32_t ldc, int32_t threads,
                   const int32_t *b_rows) {
  if (m <= 0 || n <= 0) return 0;
  const gemm_args g = {trans_a, trans_b, m, n, k, lda, ldb, ldc, alpha, beta, a, b, c, b_rows};
  if (k <= 0 || alpha == 0.0f) { // C = beta * C (beta == 0 clears, whatever C held)
    for (int i = 0; i < m; i++) {
      float *row = c + (size_t)i * ldc;
      for (int j = 0; j < n; j++) row[j] = beta == 0.0f ? 0.0f : beta * row[j];
    }
    return 0;
  }
  if (m == 1) { // slices of 64 outputs (a multiple of both paths' 4 and 64), at least 64K matrix elements each
    const int64_t elems = (int64_t)n * k;
    const int slices = threads > 1 && elems >= 2 * 65536 && n >= 128 ? 8 : 1;
    const gemv_slices job = {&g, ((n + slices - 1) / slices + 63) & ~63};
    return arc_parallel(gemv_slice, &job, slices, threads);
  }
  // A·Bᵀ with 32-64 rows of A against many rows of B (a batch-32 forward through a wide layer, 32x512x3136): computed
  // as Cᵀ = B·Aᵀ on the dot path, which streams B's rows once where packing would transpose them into panels first
  // (cold caches: 2.0 → 1.2 ms on two threads, 3.4 → 2.2 on one), then transposed into C.
  if (!trans_a && trans_b && !b_rows && m >= 32 && m <= 64 && n > 64 && k >= 512) {
    float *ct = transposed_scratch((size_t)m * n); // n x m
    if (!ct) return -2;
    const int rc = arc_sgemm_rows(0, 1, n, m, k, 1.0f, b, ldb, a, lda, 0.0f, ct, m, threads, NULL);
    if (rc) return rc;
    for (int i = 0; i < m; i++) {
      float *row = c + (size_t)i * ldc;
      for (int j = 0; j < n; j++) row[j] = alpha * ct[(size_t)j * m + i] + (beta == 0.0f ? 0.0f : beta * row[j]);
    }
    return 0;
  }
  // A·Bᵀ with a long k: dot products for few rows (small batches) or a narrow C, where packing would cost about as
  // much as the arithmetic; else the packed path (measured on the learners' shapes, one and two threads). Offset rows
  // of B (a flat convolution's weight gradient, 32x256x14090 for Nature's conv1) overlap: the dot path reads each
  // cache line once for all the shifts, where packing would transpose it once per shift (85 vs 54 GFLOP/s).
  const int dot = !trans_a && trans_b && k >= 512 && (m < 32 || n <= 64 || b_rows);
  const int unit_n = dot ? DOT_NJ : GEMM_NR, unit_m = dot ? DOT_MI : GEMM_MR;
  // Slice along n (whole panels) when wide enough, else along m; but along m when an odd count of n panels would
  // leave one thread 25% over half the columns (64x81x512, batch-1 conv2: 1.5x faster along m). Each slice packs
  // all of the other operand, so a balanced n split wins over m even though m's slices are finer.
  const int units_n = (n + unit_n - 1) / unit_n, units_m = (m + unit_m - 1) / unit_m;
  int along_n = n >= 2 * unit_n && (n >= m || m < 2 * unit_m);
  if (along_n && units_m >= 2) {
    const double over_n = (double)((units_n + 1) / 2 * unit_n) * 2 / n, over_m = (double)((units_m + 1) / 2 * unit_m) * 2 / m;
    if (over_n > 1.25 && over_m < over_n) along_n = 0;
  }
  const int unit = along_n ? unit_n : unit_m, units = along_n ? units_n : units_m;
  const int slices = threads > 1 && units > 1 ? GEMM_SLICES : 1;
  const gemm_slices job = {&g, dot ? dot_part : gemm_part, along_n, (units + slices - 1) / slices * unit};
  return arc_parallel(gemm_slice, &job, slices, threads);
}

int arc_sgemm(int32_t trans_a, int32_t trans_b, int32_t m, int32_t n, int32_t k, float alpha, const float *a,
              int32_t lda, const float *b, int32_t ldb, float beta, float *c, int32_t ldc, int32_t threads) {
  return arc_sgemm_rows(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads, NULL);
}

#else

int arc_sgemm_rows(int32_t trans_a, int32_t trans_b, int32_t m, int32_t n, int32_t k, float alpha, const float *a,
                   int32_t lda, const float *b, int32_t ldb, float beta, float *c, int32_t ldc, int32_t threads,
                   const int32_t *b_rows) {
  (void)trans_a, (void)trans_b, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb;
  (void)beta, (void)c, (void)ldc, (void)threads, (void)b_rows;
  return -1;
}

int arc_sgemm(int32_t trans_a, int32_t trans_b, int32_t m, int32_t n, int32_t k, float alpha, const float *a,
              int32_t lda, const float *b, int32_t ldb, float beta, float *c, int32_t ldc, int32_t threads) {
  (void)trans_a, (void)trans_b, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb;
  (void)beta, (void)c, (void)ldc, (void)threads;
  return -1;
}

#endif

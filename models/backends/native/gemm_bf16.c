// Single-precision GEMM computed in bfloat16 on AMX tiles (Intel Sapphire Rapids and later), compiled into the kernel
// library after gemm.c, whose argument struct, row addressing, slicing and thread pool it shares.
//
// C = alpha * op(A) op(B) + beta * C with float32 in and out: the inputs are rounded to bfloat16 (8-bit mantissa,
// round to nearest even), their products are exact in float32 and summed in float32. That is PyTorch's
// `torch.set_float32_matmul_precision("medium")` (and JAX's default matmul precision on TPUs). Opt-in: callers choose
// it per thread with `setMatmulPrecision` (cpu.ts); the default stays full float32.
//
// Why: one TDPBF16PS multiplies a 16x32 by a 32x16 tile (8192 multiply-adds) in about 16 cycles; measured here from
// registers, 1.3 TFLOP/s on one core against ~130 GFLOP/s for float32 FMAs. The learners' GEMMs then become bound by
// packing, that is by reading their operands once: 2-2.7x the float32 kernel on the Doom learner's conv shapes.
//
// Layout: per KC block of k, op(A) is packed into rows of bf16 ([m rounded up to 32][KC], zero padded) and op(B) into
// 32-column panels in the VNNI order the tile unit wants ([KC/2][32][2]: the two k values of a pair side by side).
// The micro-kernel keeps a 32x32 block of C in four tiles (tmm0-3), loads two A tiles (tmm4-5) and two B tiles
// (tmm6-7) per 32 values of k, then stores the block through a small float buffer where alpha and beta apply.
//
// `arc_sgemm_bf16` returns -3 when the CPU or the kernel cannot run AMX (the caller then computes in float32).
#include <stdint.h>

#if defined(__AVX512F__) && defined(__AVX512BF16__) && defined(__AMX_TILE__) && defined(__AMX_BF16__)
#include <sys/syscall.h>
#include <unistd.h>

enum { BF_KC = 512, BF_NC = 512, BF_TILE = 32 };

// Linux grants tile data per process on request (arch_prctl ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, kernel 5.16+).
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;
static int amx_ok;
static void amx_request(void) { amx_ok = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18) == 0; }

// Tile configuration (palette 1): every tile 16 rows of 64 bytes.
typedef struct {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} amx_config;

static void amx_configure(void) {
  amx_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.palette = 1;
  for (int t = 0; t < 8; t++) cfg.rows[t] = 16, cfg.colsb[t] = 64;
  _tile_loadconfig(&cfg);
}

// 32 floats (masked past `count`) as 32 bfloat16, in order.
static inline __m512i bf16_32(const float *s, int count) {
  const __mmask16 m0 = count >= 16 ? 0xFFFF : count > 0 ? (__mmask16)((1u << count) - 1) : 0;
  const __mmask16 m1 = count >= 32 ? 0xFFFF : count > 16 ? (__mmask16)((1u << (count - 16)) - 1) : 0;
  return (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, s + 16), _mm512_maskz_loadu_ps(m0, s));
}

// op(A)[i0 .. i0+mc, p0 .. p0+kc] as bf16 rows of stride BF_KC, rows up to a multiple of 32 and columns up to a
// multiple of 32 zero.
static void bf_pack_a(const gemm_args *g, int i0, int mc, int p0, int kc, uint16_t *restrict dst) {
  const int mcp = (mc + BF_TILE - 1) & ~(BF_TILE - 1), kcp = (kc + 31) & ~31;
  if (!g->trans_a) {
    for (int r = 0; r < mcp; r++) {
      uint16_t *d = dst + (size_t)r * BF_KC;
      const float *s = g->a + (size_t)(i0 + r) * g->lda + p0;
      for (int p = 0; p < kcp; p += 32) _mm512_store_si512(d + p, r < mc ? bf16_32(s + p, kc - p) : _mm512_setzero_si512());
    }
    return;
  }
  // A stored k x m: 16x16 float blocks transposed in registers, then rounded a row at a time.
  float tmp[16 * 32] __attribute__((aligned(64)));
  for (int r = 0; r < mcp; r += 16) {
    const int rows = mc - r < 16 ? (mc - r > 0 ? mc - r : 0) : 16;
    const __mmask16 mr = rows >= 16 ? 0xFFFF : (__mmask16)((1u << rows) - 1);
    for (int p = 0; p < kcp; p += 32) {
      for (int h = 0; h < 32; h += 16) {
        __m512 v[16];
        for (int q = 0; q < 16; q++) {
          v[q] = p + h + q < kc ? _mm512_maskz_loadu_ps(mr, g->a + (size_t)(p0 + p + h + q) * g->lda + i0 + r)
                                : _mm512_setzero_ps();
        }
        transpose16(v); // v[i] = row r+i's 16 values of k
        for (int i = 0; i < 16; i++) _mm512_store_ps(tmp + i * 32 + h, v[i]);
      }
      for (int i = 0; i < 16; i++) _mm512_store_si512(dst + (size_t)(r + i) * BF_KC + p, bf16_32(tmp + i * 32, 32));
    }
  }
}

// op(B)[p0 .. p0+kc, j0 .. j0+nc] as 32-column panels of [kcp/2][32][2] bf16, zero padded.
static void bf_pack_b(const gemm_args *g, int p0, int kc, int j0, int nc, uint16_t *restrict dst) {
  const int kcp = (kc + 31) & ~31;
  if (!g->trans_b) { // stored k x n: rows p and p+1 interleaved 16 columns at a time
    const __m512i pairs = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                           21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const int ncp = (nc + 31) & ~31; // the last panel's missing columns load as zeros
    for (int p = 0; p < kcp; p += 2) {
      const float *r0 = p < kc ? b_row(g, p0 + p) + j0 : NULL, *r1 = p + 1 < kc ? b_row(g, p0 + p + 1) + j0 : NULL;
      for (int j = 0; j < ncp; j += 16) {
        const int left = nc - j;
        const __mmask16 mk = left >= 16 ? 0xFFFF : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
        const __m512 lo = r0 ? _mm512_maskz_loadu_ps(mk, r0 + j) : _mm512_setzero_ps();
        const __m512 hi = r1 ? _mm512_maskz_loadu_ps(mk, r1 + j) : _mm512_setzero_ps();
        const __m512i v = _mm512_permutexvar_epi16(pairs, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        _mm512_store_si512(dst + (size_t)(j >> 5) * kcp * 32 + (size_t)p * 32 + (j & 31) * 2, v);
      }
    }
    return;
  }
  // Stored n x k: each stored row is a column of op(B), its k pairs already adjacent. Round 16 rows by 32 values of
  // k into 16 dwords each, then transpose the 16x16 dwords: dword row q is pair q for the 16 columns.
  for (int j = 0; j < ((nc + 31) & ~31); j += 16) {
    const float *rows[16];
    for (int i = 0; i < 16; i++) rows[i] = j + i < nc ? b_row(g, j0 + j + i) + p0 : NULL;
    uint16_t *panel = dst + (size_t)(j >> 5) * kcp * 32 + (j & 31) * 2;
    for (int p = 0; p < kcp; p += 32) {
      __m512 v[16];
      for (int i = 0; i < 16; i++) v[i] = rows[i] ? (__m512)bf16_32(rows[i] + p, kc - p) : _mm512_setzero_ps();
      transpose16(v);
      for (int q = 0; q < 16; q++) _mm512_store_ps((float *)(panel + (size_t)(p + 2 * q) * 32), v[q]);
    }
  }
}

// This thread's packing buffers for this path (declared in gemm.c, whose thread-exit destructor frees them), grown
// to m rows of A on demand.
static int bf_buffers(uint16_t **pa, uint16_t **pb, int m) {
  const int mcp = (m + BF_TILE - 1) & ~(BF_TILE - 1);
  if (!tls_bf_b) {
    if (tls_register() != 0) return -2;
    tls_bf_b = aligned_alloc(64, sizeof(uint16_t) * BF_KC * BF_NC);
    if (!tls_bf_b) return -2;
  }
  if (tls_bf_a_rows < mcp) {
    free(tls_bf_a);
    tls_bf_a = aligned_alloc(64, sizeof(uint16_t) * BF_KC * (size_t)mcp);
    tls_bf_a_rows = tls_bf_a ? mcp : 0;
    if (!tls_bf_a) return -2;
  }
  *pa = tls_bf_a, *pb = tls_bf_b;
  return 0;
}

static int bf_part(const gemm_args *g, int i_begin, int i_end, int j_begin, int j_end) {
  uint16_t *pa, *pb;
  if (bf_buffers(&pa, &pb, i_end - i_begin) != 0) return -2;
  float out[BF_TILE * BF_TILE] __attribute__((aligned(64)));
  amx_configure();
  const int mc = i_end - i_begin;
  for (int jc = j_begin; jc < j_end; jc += BF_NC) {
    const int nc = j_end - jc < BF_NC ? j_end - jc : BF_NC;
    for (int pc = 0; pc < g->k; pc += BF_KC) {
      const int kc = g->k - pc < BF_KC ? g->k - pc : BF_KC, kcp = (kc + 31) & ~31;
      bf_pack_b(g, pc, kc, jc, nc, pb);
      if (jc == j_begin || (g->k > BF_KC)) bf_pack_a(g, i_begin, mc, pc, kc, pa); // A once when k fits one block
      const float vb = pc == 0 ? g->beta : 1.0f;
      const int read_c = pc != 0 || g->beta != 0.0f;
      for (int jr = 0; jr < nc; jr += BF_TILE) {
        const uint16_t *b = pb + (size_t)(jr >> 5) * kcp * 32;
        const int nr = nc - jr < BF_TILE ? nc - jr : BF_TILE;
        const __mmask16 m0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1);
        const __mmask16 m1 = nr >= 32 ? 0xFFFF : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;
        for (int ir = 0; ir < mc; ir += BF_TILE) {
          const uint16_t *a = pa + (size_t)ir * BF_KC;
          _tile_zero(0);
          _tile_zero(1);
          _tile_zero(2);
          _tile_zero(3);
          for (int p = 0; p < kcp; p += 32) {
            _tile_loadd(4, a + p, BF_KC * 2);
            _tile_loadd(5, a + 16 * BF_KC + p, BF_KC * 2);
            _tile_loadd(6, b + (size_t)p * 32, 128);
            _tile_loadd(7, b + (size_t)p * 32 + 32, 128);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
          }
          _tile_stored(0, out, 128);
          _tile_stored(1, out + 16, 128);
          _tile_stored(2, out + 16 * BF_TILE, 128);
          _tile_stored(3, out + 16 * BF_TILE + 16, 128);
          const int mr = mc - ir < BF_TILE ? mc - ir : BF_TILE;
          const __m512 va = _mm512_set1_ps(g->alpha), vbeta = _mm512_set1_ps(vb);
          for (int r = 0; r < mr; r++) {
            float *row = g->c + (size_t)(i_begin + ir + r) * g->ldc + jc + jr;
            __m512 v0 = _mm512_mul_ps(va, _mm512_load_ps(out + r * BF_TILE));
            __m512 v1 = _mm512_mul_ps(va, _mm512_load_ps(out + r * BF_TILE + 16));
            if (read_c) {
              v0 = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(m0, row), v0);
              v1 = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(m1, row + 16), v1);
            }
            _mm512_mask_storeu_ps(row, m0, v0);
            _mm512_mask_storeu_ps(row + 16, m1, v1);
          }
        }
      }
    }
  }
  _tile_release(); // the kernel then skips the tile state on context switches
  return 0;
}

// arc_sgemm_rows's contract, computed in bfloat16; -3 when AMX cannot run here.
int arc_sgemm_bf16(int32_t trans_a, int32_t trans_b, int32_t m, int32_t n, int32_t k, float alpha, const float *a,
                   int32_t lda, const float *b, int32_t ldb, float beta, float *c, int32_t ldc, int32_t threads,
                   const int32_t *b_rows) {
  pthread_once(&amx_once, amx_request);
  if (!amx_ok) return -3;
  if (m <= 0 || n <= 0) return 0;
  if (k <= 0 || alpha == 0.0f) return arc_sgemm_rows(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 1, b_rows);
  const gemm_args g = {trans_a, trans_b, m, n, k, lda, ldb, ldc, alpha, beta, a, b, c, b_rows};
  // Slice along n in whole panels when there are enough, else along m in whole tiles.
  const int units_n = (n + BF_TILE - 1) / BF_TILE, units_m = (m + BF_TILE - 1) / BF_TILE;
  const int along_n = units_n >= 2 * units_m || units_m < 2;
  const int units = along_n ? units_n : units_m;
  const int slices = threads > 1 && units > 1 ? GEMM_SLICES : 1;
  const gemm_slices job = {&g, bf_part, along_n, (units + slices - 1) / slices * BF_TILE};
  return arc_parallel(gemm_slice, &job, slices, threads);
}

#else

int arc_sgemm_bf16(int32_t trans_a, int32_t trans_b, int32_t m, int32_t n, int32_t k, float alpha, const float *a,
                   int32_t lda, const float *b, int32_t ldb, float beta, float *c, int32_t ldc, int32_t threads,
                   const int32_t *b_rows) {
  (void)trans_a, (void)trans_b, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb;
  (void)beta, (void)c, (void)ldc, (void)threads, (void)b_rows;
  return -3;
}

#endif

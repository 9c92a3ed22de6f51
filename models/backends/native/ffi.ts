/**
 * Symbol table of Arcadia's own kernel library (`kernels.c`), with the C prototype beside each symbol. All calls are
 * synchronous (a sync FFI call costs ~10-100 ns; `nonblocking` would cost ~7 µs) and take typed arrays directly as
 * `buffer` parameters (no copies).
 *
 * @module
 */

/** ABI version `arc_kernels_abi()` must return for these bindings. */
export const KERNELS_ABI = 9;

/** Symbols of `libarcadia_kernels`. */
/** arc_sgemm's parameters: trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads. */
const SGEMM_PARAMETERS = [
  "i32",
  "i32",
  "i32",
  "i32",
  "i32",
  "f32",
  "buffer",
  "i32",
  "buffer",
  "i32",
  "f32",
  "buffer",
  "i32",
  "i32",
] as const;

export const KERNEL_SYMBOLS = {
  // int arc_kernels_abi(void);
  arc_kernels_abi: { parameters: [], result: "i32" },
  // void arc_adam(float *x, const float *g, float *m, float *v, int32_t n, double b1, double b2, double step_size,
  //               double inv_bc2, double eps, double wd, int32_t threads);
  arc_adam: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "i32", "f64", "f64", "f64", "f64", "f64", "f64", "i32"],
    result: "void",
  },
  // double arc_sumsq(const float *x, int32_t n);
  arc_sumsq: { parameters: ["buffer", "i32"], result: "f64" },
  // void arc_scale(float *x, int32_t n, double s);
  arc_scale: { parameters: ["buffer", "i32", "f64"], result: "void" },
  // void arc_unary(int32_t op, const float *x, float *out, int32_t n, double p0, double p1);
  arc_unary: { parameters: ["i32", "buffer", "buffer", "i32", "f64", "f64"], result: "void" },
  // void arc_unary_grad(int32_t op, const float *x, const float *y, const float *gy, float *gx, int32_t n, double p0,
  //                     double p1);
  arc_unary_grad: {
    parameters: ["i32", "buffer", "buffer", "buffer", "buffer", "i32", "f64", "f64"],
    result: "void",
  },
  // void arc_binary2d(int32_t op, const float *a, int32_t as0, int32_t as1, const float *b, int32_t bs0, int32_t bs1,
  //                   float *out, int32_t rows, int32_t cols);
  arc_binary2d: {
    parameters: ["i32", "buffer", "i32", "i32", "buffer", "i32", "i32", "buffer", "i32", "i32"],
    result: "void",
  },
  // void arc_sum_to2d(const float *x, int32_t rows, int32_t cols, float *out, int32_t os0, int32_t os1,
  //                   double alpha);
  arc_sum_to2d: { parameters: ["buffer", "i32", "i32", "buffer", "i32", "i32", "f64"], result: "void" },
  // void arc_copy6(const float *src, int32_t src_off, float *dst, int32_t dst_off, const int32_t *geo,
  //                int32_t accumulate, int32_t threads);
  arc_copy6: { parameters: ["buffer", "i32", "buffer", "i32", "buffer", "i32", "i32"], result: "void" },
  // void arc_im2col(const float *x, const int32_t *geo, float *col, int32_t threads);
  arc_im2col: { parameters: ["buffer", "buffer", "buffer", "i32"], result: "void" },
  // void arc_col2im(const float *col, const int32_t *geo, float *dx, int32_t threads);
  arc_col2im: { parameters: ["buffer", "buffer", "buffer", "i32"], result: "void" },
  // void arc_standardize(float *x, int32_t rows, int32_t size, const double *mean, const double *inv, double clip);
  arc_standardize: { parameters: ["buffer", "i32", "i32", "buffer", "buffer", "f64"], result: "void" },
  // int32_t arc_masked_moments(const float *x, int32_t rows, int32_t size, const uint8_t *mask, double *mean,
  //                            double *m2);
  arc_masked_moments: { parameters: ["buffer", "i32", "i32", "buffer", "buffer", "buffer"], result: "i32" },
  // void arc_u8_to_f32(const uint8_t *raw, int32_t rows, int32_t c, int32_t hw, int32_t hwc, double scale, float *out);
  arc_u8_to_f32: { parameters: ["buffer", "i32", "i32", "i32", "i32", "f64", "buffer"], result: "void" },
  // int arc_sgemm(int32_t trans_a, int32_t trans_b, int32_t m, int32_t n, int32_t k, float alpha, const float *a,
  //               int32_t lda, const float *b, int32_t ldb, float beta, float *c, int32_t ldc, int32_t threads);
  // 0 on success, -1 when built without AVX-512 (use BLAS), -2 out of memory. gemm.c.
  arc_sgemm: {
    parameters: SGEMM_PARAMETERS,
    result: "i32",
  },
  // int arc_sgemm_rows(..., int32_t threads, const int32_t *b_rows): arc_sgemm with each stored row of B at
  // b + b_rows[r] instead of b + r * ldb.
  arc_sgemm_rows: {
    parameters: [...SGEMM_PARAMETERS, "buffer"],
    result: "i32",
  },
  // int arc_sgemm_bf16(...same as arc_sgemm_rows, b_rows may be NULL): the product of bfloat16-rounded inputs summed
  // in float32 on AMX tiles; -3 when the CPU or the OS cannot run AMX (then compute in float32). gemm_bf16.c.
  arc_sgemm_bf16: {
    parameters: [...SGEMM_PARAMETERS, "buffer"],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened kernel library. */
export type KernelLibrary = Deno.DynamicLibrary<typeof KERNEL_SYMBOLS>;

// gemm()'s dispatch, the OpenBLAS path and the reference. The only file that includes cblas.h.
#include "backend/cpu/gemm.h"

#include <cblas.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include "core/threading.h"

namespace bertfit {

namespace {

std::atomic<int> g_impl{-1};  // -1: not decided yet (BERTFIT_GEMM is read at the first call)

}  // namespace

GemmImpl gemm_impl() {
  int v = g_impl.load(std::memory_order_relaxed);
  if (v < 0) {
    const char* e = std::getenv("BERTFIT_GEMM");
    v = static_cast<int>(e && std::strcmp(e, "openblas") == 0 ? GemmImpl::OPENBLAS : GemmImpl::PACKED);
    g_impl.store(v, std::memory_order_relaxed);
  }
  return static_cast<GemmImpl>(v);
}

void set_gemm_impl(GemmImpl impl) {
  g_impl.store(static_cast<int>(impl), std::memory_order_relaxed);
}

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (gemm_impl() == GemmImpl::OPENBLAS)
    gemm_openblas(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    gemm_packed(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_bias(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, const float* bias, float beta, float* C, int64_t ldc,
               const Epilogue& ep) {
  if (gemm_impl() == GemmImpl::PACKED) {
    gemm_packed_bias(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, bias, beta, C, ldc, ep);
    return;
  }
  if (bias) {  // OpenBLAS: C = beta C + bias first, then sgemm with beta = 1 (one pass over C)
    if (M <= 0 || N <= 0) return;
    parallel_for(0, M, M * N >= kParallelMinWork, [&](int64_t i) {
      for (int64_t j = 0; j < N; ++j) {
        float& c = C[i * ldc + j];
        c = beta == 0.0f ? bias[j] : beta * c + bias[j];
      }
    });
    beta = 1.0f;
  }
  gemm_openblas(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  gemm_epilogue_pass(M, N, C, ldc, ep);
}

void gemm_openblas(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                   int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(M), static_cast<blasint>(N), static_cast<blasint>(K), alpha, A,
              static_cast<blasint>(lda), B, static_cast<blasint>(ldb), beta, C, static_cast<blasint>(ldc));
}

void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        const float a = trans_a ? A[k * lda + i] : A[i * lda + k];
        const float b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        acc += static_cast<double>(a) * b;
      }
      const float prev =
          beta == 0.0f ? 0.0f : beta * C[i * ldc + j];  // beta 0 ignores C (may be NaN), as BLAS
      C[i * ldc + j] = static_cast<float>(alpha * acc) + prev;
    }
  }
}

}  // namespace bertfit

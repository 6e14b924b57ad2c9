// The GELU fused into the GEMMs' epilogue (gemm.h's Epilogue, keeping the pre-activation or not) gives
// exactly the bits of the unfused sequence the model ran before: the product written (same GEMM, no step),
// then kernels/activation.h's gelu_forward. Checked bit for bit on gemm_packed (AVX-512 and AVX2 tiles, every
// transpose, tails of the tiles, K chunks, alpha, beta, bias, 1 and 2 threads), gemm_bf16 (vdpbf16ps and its
// fallback), gemm_nt_small, gemm_int8 (the VNNI tiles and the plain loop), gemm_epilogue_pass and the
// OpenBLAS route; and that no padding of C or aux is written.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_bf16.h"
#include "backend/cpu/gemm_int8.h"
#include "backend/cpu/gemm_nt_small.h"
#include "core/cpu_features.h"
#include "core/threading.h"
#include "gemm_test_util.h"
#include "kernels/activation.h"

namespace bertfit {
namespace {

using test::bitwise_equal;
using test::randn;

struct Shape {
  bool ta, tb;
  int64_t M, N, K;
  float alpha, beta;
  bool bias;
};

// A GEMM under test, with the contract's arguments and a fused step.
using GemmFn = std::function<void(const Shape&, const float* A, int64_t lda, const float* B, int64_t ldb,
                                  const float* bias, float* C, int64_t ldc, const Epilogue& ep)>;

constexpr float kPad = 12345.0f;  // padding of C and aux: must stay as it is

// The unfused GELU on the product x (what encoder.cpp ran before the fusion): gelu_forward row by row.
void unfused_gelu(std::vector<float>& C, int64_t M, int64_t N, int64_t ldc) {
  for (int64_t m = 0; m < M; ++m) gelu_forward(C.data() + m * ldc, C.data() + m * ldc, N);
}

// fn with the fused GELU against fn without it followed by gelu_forward, bit for bit.
void check_gelu(const GemmFn& fn, const Shape& s, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "ta=" << s.ta << " tb=" << s.tb << " M=" << s.M << " N=" << s.N
                                    << " K=" << s.K << " alpha=" << s.alpha << " beta=" << s.beta
                                    << " bias=" << s.bias);
  const int64_t lda = (s.ta ? s.M : s.K) + 3, ldb = (s.tb ? s.K : s.N) + 1, ldc = s.N + 5, ld_aux = s.N + 2;
  const std::vector<float> A = randn(static_cast<size_t>((s.ta ? s.K : s.M) * lda), seed);
  const std::vector<float> B = randn(static_cast<size_t>((s.tb ? s.N : s.K) * ldb), seed + 1);
  const std::vector<float> bias = randn(static_cast<size_t>(s.N), seed + 2);
  std::vector<float> C0 = randn(static_cast<size_t>(s.M * ldc), seed + 3);
  std::vector<float> aux0 = randn(static_cast<size_t>(s.M * ld_aux), seed + 4);
  for (int64_t m = 0; m < s.M; ++m) {
    for (int64_t n = s.N; n < ldc; ++n) C0[m * ldc + n] = kPad;
    for (int64_t n = s.N; n < ld_aux; ++n) aux0[m * ld_aux + n] = kPad;
  }
  const float* b = s.bias ? bias.data() : nullptr;
  // The product alone: the x values the GELU starts from.
  std::vector<float> x = C0;
  fn(s, A.data(), lda, B.data(), ldb, b, x.data(), ldc, {});
  std::vector<float> want = x;
  unfused_gelu(want, s.M, s.N, ldc);
  for (bool keep : {false, true}) {  // with and without the pre-activation kept in aux
    SCOPED_TRACE(::testing::Message() << "aux=" << keep);
    std::vector<float> got = C0, aux = aux0;
    fn(s, A.data(), lda, B.data(), ldb, b, got.data(), ldc,
       {EpilogueOp::GELU, keep ? aux.data() : nullptr, ld_aux});
    EXPECT_TRUE(bitwise_equal(got, want));
    std::vector<float> want_aux = aux0;  // x where C has it, the padding untouched; or aux not written
    if (keep)
      for (int64_t m = 0; m < s.M; ++m)
        for (int64_t n = 0; n < s.N; ++n) want_aux[m * ld_aux + n] = x[m * ldc + n];
    EXPECT_TRUE(bitwise_equal(aux, want_aux));
  }
}

// Tails of both tiles (12 x 32, 6 x 16) and of the row blocks (96, 144), K chunked (past 256 for AVX2, past
// 1024 for AVX-512: the last chunk applies the epilogue to reloaded partial sums), every transpose,
// alpha != 1, beta = 1 (the linear layers' accumulate) and 0, with and without a bias; the last is large
// enough to run on two threads.
std::vector<Shape> shapes() {
  std::vector<Shape> v;
  int i = 0;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (const auto& mnk : std::vector<std::array<int64_t, 3>>{
               {1, 1, 1}, {13, 33, 7}, {37, 65, 300}, {150, 20, 9}, {97, 40, 1100}}) {
        v.push_back(
            {ta, tb, mnk[0], mnk[1], mnk[2], i % 3 == 0 ? 0.5f : 1.0f, i % 2 ? 1.0f : 0.0f, i % 4 != 3});
        ++i;
      }
  v.push_back({false, true, 200, 130, 100, 1.0f, 0.0f, true});
  v.push_back({true, false, 130, 200, 100, 1.0f, 1.0f, false});
  return v;
}

void for_each_isa_and_thread_count(const std::function<void()>& body) {
  const int saved = num_threads();
  for (Isa isa : {Isa::AVX512, Isa::AVX2}) {
    set_max_isa(isa);
    if (isa == Isa::AVX512 && !use_avx512()) continue;  // a CPU without AVX-512: the AVX2 round only
    for (int threads : {1, 2}) {
      SCOPED_TRACE(::testing::Message()
                   << "isa=" << (isa == Isa::AVX512 ? "avx512" : "avx2") << " threads=" << threads);
      set_num_threads(threads);
      body();
    }
  }
  set_max_isa(Isa::AVX512);
  set_num_threads(saved);
}

TEST(GemmEpilogue, PackedFusedGeluGivesTheUnfusedBits) {
  const GemmFn fn = [](const Shape& s, const float* A, int64_t lda, const float* B, int64_t ldb,
                       const float* bias, float* C, int64_t ldc, const Epilogue& ep) {
    gemm_packed_bias(s.ta, s.tb, s.M, s.N, s.K, s.alpha, A, lda, B, ldb, bias, s.beta, C, ldc, ep);
  };
  for_each_isa_and_thread_count([&] {
    uint64_t seed = 10;
    for (const Shape& s : shapes()) check_gelu(fn, s, seed += 10);
  });
}

TEST(GemmEpilogue, Bf16FusedGeluGivesTheUnfusedBits) {
  const GemmFn fn = [](const Shape& s, const float* A, int64_t lda, const float* B, int64_t ldb,
                       const float* bias, float* C, int64_t ldc, const Epilogue& ep) {
    gemm_bf16(s.ta, s.tb, s.M, s.N, s.K, s.alpha, A, lda, B, ldb, bias, s.beta, C, ldc, ep);
  };
  for_each_isa_and_thread_count([&] {
    SCOPED_TRACE(gemm_bf16_path());
    uint64_t seed = 1000;
    for (const Shape& s : shapes()) check_gelu(fn, s, seed += 10);
  });
}

TEST(GemmEpilogue, NtSmallFusedGeluGivesTheUnfusedBits) {
  // gemm_nt_small's shapes: A [M, K], weights [N, K], alpha 1, beta 0 or 1 (accumulate); its AVX-512 kernel
  // and, capped at AVX2, its fallback through gemm_bias.
  const GemmFn fn = [](const Shape& s, const float* A, int64_t lda, const float* B, int64_t ldb,
                       const float* bias, float* C, int64_t ldc, const Epilogue& ep) {
    gemm_nt_small(s.M, s.N, s.K, A, lda, B, ldb, bias, s.beta != 0.0f, C, ldc, ep);
  };
  for_each_isa_and_thread_count([&] {
    uint64_t seed = 2000;
    for (const auto& mnk :
         std::vector<std::array<int64_t, 3>>{{1, 1, 1}, {5, 17, 33}, {70, 100, 300}, {130, 49, 64}})
      for (float beta : {0.0f, 1.0f})
        check_gelu(fn, {false, true, mnk[0], mnk[1], mnk[2], 1.0f, beta, beta == 0.0f}, seed += 10);
  });
}

TEST(GemmEpilogue, Int8FusedGeluGivesTheUnfusedBits) {
  // gemm_int8 (quantized inference): x [M, K] times per-row int8 weights [N, K]; the GELU in the VNNI tiles
  // and, capped at AVX2, after the plain ones.
  const GemmFn fn = [](const Shape& s, const float* A, int64_t lda, const float* B, int64_t ldb,
                       const float* bias, float* C, int64_t ldc, const Epilogue& ep) {
    std::vector<int8_t> wq(static_cast<size_t>(s.N * s.K));
    std::vector<float> w_scale(static_cast<size_t>(s.N));
    quantize_rows(B, s.N, s.K, ldb, wq.data(), s.K, w_scale.data());
    gemm_int8(A, s.M, lda, Int8Weights(wq.data(), w_scale.data(), s.N, s.K), bias, C, ldc, ep);
  };
  for_each_isa_and_thread_count([&] {
    SCOPED_TRACE(gemm_int8_path());
    uint64_t seed = 4000;
    for (const auto& mnk :
         std::vector<std::array<int64_t, 3>>{{1, 1, 1}, {13, 33, 7}, {37, 65, 300}, {200, 130, 100}})
      check_gelu(fn, {false, true, mnk[0], mnk[1], mnk[2], 1.0f, 0.0f, mnk[0] != 13}, seed += 10);
  });
}

TEST(GemmEpilogue, EmptySumAndOpenBlasRouteApplyTheGelu) {
  // K = 0 (C = bias, then the GELU) on every GEMM, and BERTFIT_GEMM=openblas's route (sgemm, then
  // gemm_epilogue_pass): the GELU of whatever product that computed.
  const GemmFn packed = [](const Shape& s, const float* A, int64_t lda, const float* B, int64_t ldb,
                           const float* bias, float* C, int64_t ldc, const Epilogue& ep) {
    gemm_packed_bias(s.ta, s.tb, s.M, s.N, s.K, s.alpha, A, lda, B, ldb, bias, s.beta, C, ldc, ep);
  };
  const GemmFn bf16 = [](const Shape& s, const float* A, int64_t lda, const float* B, int64_t ldb,
                         const float* bias, float* C, int64_t ldc, const Epilogue& ep) {
    gemm_bf16(s.ta, s.tb, s.M, s.N, s.K, s.alpha, A, lda, B, ldb, bias, s.beta, C, ldc, ep);
  };
  const GemmFn openblas = [](const Shape& s, const float* A, int64_t lda, const float* B, int64_t ldb,
                             const float* bias, float* C, int64_t ldc, const Epilogue& ep) {
    set_gemm_impl(GemmImpl::OPENBLAS);
    gemm_bias(s.ta, s.tb, s.M, s.N, s.K, s.alpha, A, lda, B, ldb, bias, s.beta, C, ldc, ep);
    set_gemm_impl(GemmImpl::PACKED);
  };
  check_gelu(packed, {false, true, 7, 19, 0, 1.0f, 0.0f, true}, 3000);
  check_gelu(bf16, {false, true, 7, 19, 0, 1.0f, 1.0f, true}, 3010);
  for (const Shape& s : shapes()) check_gelu(openblas, s, 3020);
}

}  // namespace
}  // namespace bertfit

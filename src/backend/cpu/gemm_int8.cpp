// gemm_int8 (gemm_int8.h): the activations are quantized once per call into a row-major byte matrix
// (xq + 128, rows padded to whole groups of 4 k); the weights were packed once (Int8Weights). A thread owns a
// range of 32-column weight panels (or of rows, when there are few panels), and walks it as gemm_packed
// does: MC-row blocks, KC-long chunks of k (int32 partial sums kept between chunks), then the MR x 32
// register tile. The A operand needs no packing: a tile broadcasts the 4 bytes of one k group of a row
// straight from the quantized matrix. AVX512_VNNI tile: 12 x 32, 24 zmm of int32 sums, per k group 2 loads
// of weights, 12 broadcasts, 24 vpdpbusd.
#include "backend/cpu/gemm_int8.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/gemm_tile.h"  // gelu_step512 (the packed GEMMs' fused GELU); mask16 via transpose16.h
#include "bertfit/error.h"
#include "core/cpu_features.h"
#include "core/simd.h"
#include "core/threading.h"

#define BERTFIT_AVX512_VNNI __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx512vnni")))

namespace bertfit {
namespace {

constexpr int kNR = Int8Weights::kPanel;
constexpr int64_t kMaxK = 65536;
constexpr int64_t kParallelMinMac = int64_t{1} << 21;
constexpr int kMR = 12;
constexpr int64_t kMC = 144;
constexpr int64_t kKC = 1024;  // k per chunk: a 12 x 1024 A block and a 1024 x 32 weight panel, 44 KiB of L1

template <typename T>
T* scratch(AlignedBuffer<T>& buf, int64_t n) {
  if (buf.size() < static_cast<size_t>(n)) buf.resize(static_cast<size_t>(n));
  return buf.data();
}

struct Problem {
  const uint8_t* xq;  // [M][ldq] bytes: xq + 128, zero-padded k
  int64_t ldq;
  const float* x_scale;  // [M]
  const Int8Weights* W;
  const float* bias;
  float* y;
  int64_t ldy;
  int64_t M;
  Epilogue ep;  // fused into the VNNI tiles (ep.ld_aux resolved); the plain path runs it as a pass after
};

// The epilogue of the contract for one output.
inline float epilogue(int32_t dot, float xs, float ws, const float* bias, int64_t n) {
  const float v = static_cast<float>(dot) * (xs * ws);
  return bias ? v + bias[n] : v;
}

// Rows [m0, m0 + mr) x the 32 columns of one panel over k groups [q0, q0 + qn): the int32 sums continue from
// / go to P (first / last chunk as flags); on the last chunk the epilogue writes y.
BERTFIT_AVX512_VNNI void tile_vnni(const Problem& pr, const uint32_t* ap, int64_t m0, int64_t mr,
                                   int64_t panel, int64_t q0, int64_t qn, int32_t* P, bool first, bool last) {
  const Int8Weights& W = *pr.W;
  const int8_t* b = W.packed() + (panel * W.k_quads() + q0) * kNR * 4;
  __m512i acc[kMR][2];
#pragma GCC unroll 12
  for (int r = 0; r < kMR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < 2; ++v)
      acc[r][v] = first ? _mm512_setzero_si512() : _mm512_load_si512(P + r * kNR + 16 * v);
  for (int64_t q = 0; q < qn; ++q) {
    const __m512i b0 = _mm512_load_si512(b + q * kNR * 4);
    const __m512i b1 = _mm512_load_si512(b + q * kNR * 4 + 64);
#pragma GCC unroll 12
    for (int r = 0; r < kMR; ++r) {
      const __m512i av = _mm512_set1_epi32(static_cast<int>(ap[q * kMR + r]));
      acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], av, b0);
      acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], av, b1);
    }
  }
  if (!last) {
#pragma GCC unroll 12
    for (int r = 0; r < kMR; ++r)
#pragma GCC unroll 2
      for (int v = 0; v < 2; ++v) _mm512_store_si512(P + r * kNR + 16 * v, acc[r][v]);
    return;
  }
  const int64_t n0 = panel * kNR, nr = std::min<int64_t>(kNR, W.N() - n0);
  const __m512i c128 = _mm512_set1_epi32(128);
  // Unrolled, as the k loop: a runtime-indexed acc would make GCC keep (and store) it in memory every step.
#pragma GCC unroll 12
  for (int r = 0; r < kMR; ++r) {
    if (r >= mr) break;
    const __m512 xs = _mm512_set1_ps(pr.x_scale[m0 + r]);
#pragma GCC unroll 2
    for (int v = 0; v < 2; ++v) {
      const __mmask16 m = mask16(nr - 16 * v);
      if (!m) break;
      const __m512i rs = _mm512_maskz_loadu_epi32(m, W.row_sum() + n0 + 16 * v);
      const __m512i dot = _mm512_sub_epi32(acc[r][v], _mm512_mullo_epi32(c128, rs));
      const __m512 ws = _mm512_maskz_loadu_ps(m, W.scale() + n0 + 16 * v);
      __m512 out = _mm512_mul_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(xs, ws));
      if (pr.bias) out = _mm512_add_ps(out, _mm512_maskz_loadu_ps(m, pr.bias + n0 + 16 * v));
      if (pr.ep.op == EpilogueOp::GELU)
        out = gelu_step512(out, m, pr.ep.aux ? pr.ep.aux + (m0 + r) * pr.ep.ld_aux + n0 + 16 * v : nullptr);
      _mm512_mask_storeu_ps(pr.y + (m0 + r) * pr.ldy + n0 + 16 * v, m, out);
    }
  }
}

// The same sums by a plain loop (the compiler vectorises the 32 columns): CPUs without VNNI.
void tile_plain(const Problem& pr, int64_t m0, int64_t mr, int64_t panel, int64_t q0, int64_t qn, int32_t* P,
                bool first, bool last) {
  const Int8Weights& W = *pr.W;
  const int8_t* b = W.packed() + (panel * W.k_quads() + q0) * kNR * 4;
  const int64_t n0 = panel * kNR, nr = std::min<int64_t>(kNR, W.N() - n0);
  for (int64_t r = 0; r < mr; ++r) {
    int32_t acc[kNR];
    for (int c = 0; c < kNR; ++c) acc[c] = first ? 0 : P[r * kNR + c];
    const uint8_t* a = pr.xq + (m0 + r) * pr.ldq + q0 * 4;
    for (int64_t q = 0; q < qn; ++q) {
      const int32_t a0 = a[4 * q], a1 = a[4 * q + 1], a2 = a[4 * q + 2], a3 = a[4 * q + 3];
      const int8_t* w = b + q * kNR * 4;
      for (int c = 0; c < kNR; ++c)
        acc[c] += a0 * w[4 * c] + a1 * w[4 * c + 1] + a2 * w[4 * c + 2] + a3 * w[4 * c + 3];
    }
    if (!last) {
      for (int c = 0; c < kNR; ++c) P[r * kNR + c] = acc[c];
      continue;
    }
    const float xs = pr.x_scale[m0 + r];
    for (int64_t c = 0; c < nr; ++c) {
      const int32_t dot = acc[c] - 128 * W.row_sum()[n0 + c];
      pr.y[(m0 + r) * pr.ldy + n0 + c] = epilogue(dot, xs, W.scale()[n0 + c], pr.bias, n0 + c);
    }
  }
}

// quantize_rows with xq + 128 written as bytes, 16 lanes at a time: the same IEEE operations (|x| max, the
// product x * (127 / max), rounding to nearest even, clamping), so the same bytes as the scalar formula.
BERTFIT_AVX512_VNNI void quantize_rows_shifted_512(const float* x, int64_t rows, int64_t cols, int64_t ldx,
                                                   uint8_t* q, int64_t ldq, float* scale) {
  const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  const __m512i shift = _mm512_set1_epi32(128);
  for (int64_t r = 0; r < rows; ++r) {
    const float* s = x + r * ldx;
    __m512 m = _mm512_setzero_ps();
    for (int64_t k = 0; k < cols; k += 16)
      m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_maskz_loadu_ps(mask16(cols - k), s + k)));
    const float amax = _mm512_reduce_max_ps(m);
    scale[r] = amax / 127.0f;
    const __m512 inv = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
    uint8_t* d = q + r * ldq;
    for (int64_t k = 0; k < cols; k += 16) {
      const __mmask16 km = mask16(cols - k);
      __m512 v = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(km, s + k), inv),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
      const __m512i i = _mm512_add_epi32(_mm512_cvtps_epi32(v), shift);
      _mm_mask_storeu_epi8(d + k, km, _mm512_cvtepi32_epi8(i));
    }
  }
}

// Rows [m0, m1) x panels [p0, p1), serially.
void gemm_range(const Problem& pr, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  if (m0 >= m1 || p0 >= p1) return;
  const bool vnni = use_avx512_vnni();
  const int64_t Q = pr.W->k_quads(), QC = kKC / 4;
  static thread_local AlignedBuffer<int32_t> p_buf;
  static thread_local AlignedBuffer<uint32_t> a_buf;
  // Partial sums of every tile of one MC block and panel range: (MC / MR) x panels tiles of MR x 32.
  int32_t* P = Q > QC ? scratch(p_buf, kMC * kNR * (p1 - p0)) : nullptr;
  uint32_t* Ap = vnni ? scratch(a_buf, kMC * std::min(QC, Q)) : nullptr;
  for (int64_t ic = m0; ic < m1; ic += kMC) {
    const int64_t mc = std::min(kMC, m1 - ic);
    for (int64_t q0 = 0; q0 < Q; q0 += QC) {
      const int64_t qn = std::min(QC, Q - q0);
      const bool first = q0 == 0, last = q0 + qn == Q;
      // The block's k groups in tile order, Ap[tile][q][r] (one stream per tile instead of 12 strided
      // rows); rows past mc repeat the block's first row (never stored).
      if (vnni)
        for (int64_t ir = 0; ir < mc; ir += kMR)
          for (int r = 0; r < kMR; ++r) {
            const uint8_t* src = pr.xq + (ic + (ir + r < mc ? ir + r : 0)) * pr.ldq + q0 * 4;
            uint32_t* d = Ap + ir * qn + r;
            for (int64_t q = 0; q < qn; ++q) std::memcpy(d + q * kMR, src + 4 * q, 4);
          }
      for (int64_t p = p0; p < p1; ++p)
        for (int64_t ir = 0; ir < mc; ir += kMR) {
          int32_t* tile_p = P ? P + ((p - p0) * kMC + ir) * kNR : nullptr;
          const int64_t mr = std::min<int64_t>(kMR, mc - ir);
          if (vnni)
            tile_vnni(pr, Ap + ir * qn, ic + ir, mr, p, q0, qn, tile_p, first, last);
          else
            tile_plain(pr, ic + ir, mr, p, q0, qn, tile_p, first, last);
        }
    }
  }
}

}  // namespace

void quantize_rows(const float* x, int64_t rows, int64_t cols, int64_t ldx, int8_t* q, int64_t ldq,
                   float* scale) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* s = x + r * ldx;
    float amax = 0.0f;
    for (int64_t k = 0; k < cols; ++k) amax = std::max(amax, std::fabs(s[k]));
    scale[r] = amax / 127.0f;
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    int8_t* d = q + r * ldq;
    for (int64_t k = 0; k < cols; ++k) {
      const float v = std::nearbyint(s[k] * inv);  // the default rounding mode: to nearest, ties to even
      d[k] = static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f));
    }
  }
}

Int8Weights::Int8Weights(const int8_t* wq, const float* w_scale, int64_t N, int64_t K) : N_(N), K_(K) {
  if (K > kMaxK)
    throw ConfigError("int8 linear layer with " + std::to_string(K) + " inputs: more than " +
                      std::to_string(kMaxK) + ", its int32 sums could overflow");
  const int64_t panels = (N + kNR - 1) / kNR, Q = k_quads();
  packed_.resize(static_cast<size_t>(panels * Q * kNR * 4));  // zeroed: the padding
  scale_.assign(w_scale, w_scale + N);
  row_sum_.assign(static_cast<size_t>(N), 0);
  for (int64_t n = 0; n < N; ++n) {
    int8_t* d = packed_.data() + (n / kNR) * Q * kNR * 4 + (n % kNR) * 4;
    int32_t sum = 0;
    for (int64_t k = 0; k < K; ++k) {
      d[(k / 4) * kNR * 4 + k % 4] = wq[n * K + k];
      sum += wq[n * K + k];
    }
    row_sum_[n] = sum;
  }
}

void gemm_int8(const float* x, int64_t M, int64_t ldx, const Int8Weights& W, const float* bias, float* y,
               int64_t ldy, const Epilogue& ep) {
  if (M <= 0 || W.N() <= 0) return;
  const int64_t K = W.K(), ldq = W.k_quads() * 4;
  static thread_local AlignedBuffer<uint8_t> q_buf;
  static thread_local AlignedBuffer<float> s_buf;
  // A thread's own buffers: gemm_int8 may be called from several threads at once (inside a parallel region).
  uint8_t* xq = scratch(q_buf, M * ldq);
  float* xs = scratch(s_buf, M);
  const bool parallel = M * W.N() * K >= kParallelMinMac && !in_parallel() && num_threads() > 1;
  // Quantize (xq + 128 as bytes; the k padding stays as it is: the weights' padding is 0).
  const bool vnni = use_avx512_vnni();
  auto quantize = [&](int64_t r0, int64_t r1) {
    if (vnni) {
      quantize_rows_shifted_512(x + r0 * ldx, r1 - r0, K, ldx, xq + r0 * ldq, ldq, xs + r0);
      return;
    }
    quantize_rows(x + r0 * ldx, r1 - r0, K, ldx, reinterpret_cast<int8_t*>(xq + r0 * ldq), ldq, xs + r0);
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t k = 0; k < K; ++k) xq[r * ldq + k] = static_cast<uint8_t>(xq[r * ldq + k] ^ 0x80u);
  };
  const Epilogue in_tiles = vnni ? with_aux_stride(ep, ldy) : Epilogue{};
  const Problem pr{xq, ldq, xs, &W, bias, y, ldy, M, in_tiles};
  const int64_t panels = (W.N() + kNR - 1) / kNR, row_units = (M + kMR - 1) / kMR;
  if (!parallel) {
    quantize(0, M);
    gemm_range(pr, 0, M, 0, panels);
  } else {
    parallel_region([&](const Team& team) {
      const int64_t nt = team.size(), t = team.thread();
      quantize(M * t / nt, M * (t + 1) / nt);
      team.barrier();
      if (panels >= 2 * nt || panels >= row_units)
        gemm_range(pr, 0, M, panels * t / nt, panels * (t + 1) / nt);
      else
        gemm_range(pr, std::min(M, row_units * t / nt * kMR), std::min(M, row_units * (t + 1) / nt * kMR), 0,
                   panels);
    });
  }
  if (!vnni) gemm_epilogue_pass(M, W.N(), y, ldy, ep);  // the plain tiles wrote y: the step as a pass
}

void gemm_int8_reference(const float* x, int64_t M, int64_t ldx, const int8_t* wq, const float* w_scale,
                         int64_t N, int64_t K, const float* bias, float* y, int64_t ldy) {
  std::vector<int8_t> xq(static_cast<size_t>(M * K));
  std::vector<float> xs(static_cast<size_t>(M));
  quantize_rows(x, M, K, ldx, xq.data(), K, xs.data());
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      int64_t dot = 0;
      for (int64_t k = 0; k < K; ++k) dot += int64_t{xq[m * K + k]} * int64_t{wq[n * K + k]};
      y[m * ldy + n] = epilogue(static_cast<int32_t>(dot), xs[m], w_scale[n], bias, n);
    }
}

const char* gemm_int8_path() {
  return use_avx512_vnni() ? "AVX512_VNNI (vpdpbusd)" : "plain integer loop (no AVX512_VNNI)";
}

}  // namespace bertfit

#include "model/features.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "bertfit/error.h"

namespace bertfit {

namespace {
const std::vector<std::pair<FeatureKind, const char*>> kFeatureNames = {
    {FeatureKind::POOLER, "pooler"},         {FeatureKind::CLS, "cls"},
    {FeatureKind::LAYER_CLS, "layer"},       {FeatureKind::LAST4_CONCAT, "last4-concat"},
    {FeatureKind::LAST4_MEAN, "last4-mean"}, {FeatureKind::LAST4_MAX, "last4-max"},
    {FeatureKind::ALL_CONCAT, "all-concat"}, {FeatureKind::MEAN_TOKENS, "mean-tokens"}};
const std::vector<std::pair<ChunkPooling, const char*>> kPoolingNames = {
    {ChunkPooling::NONE, "none"},
    {ChunkPooling::MEAN, "mean"},
    {ChunkPooling::MAX, "max"},
    {ChunkPooling::ATTENTION, "attention"}};
}  // namespace

FeatureKind parse_feature_kind(const std::string& name) {
  for (const auto& [k, n] : kFeatureNames)
    if (name == n) return k;
  std::string list;
  for (const auto& [k, n] : kFeatureNames) list += (list.empty() ? "" : ", ") + std::string(n);
  throw ConfigError("unknown value \"" + name + "\" (choices: " + list + ")");
}
std::string feature_kind_name(FeatureKind kind) {
  for (const auto& [k, n] : kFeatureNames)
    if (k == kind) return n;
  return "?";
}
ChunkPooling parse_chunk_pooling(const std::string& name) {
  for (const auto& [k, n] : kPoolingNames)
    if (name == n) return k;
  std::string list;
  for (const auto& [k, n] : kPoolingNames) list += (list.empty() ? "" : ", ") + std::string(n);
  throw ConfigError("unknown value \"" + name + "\" (choices: " + list + ")");
}
std::string chunk_pooling_name(ChunkPooling p) {
  for (const auto& [k, n] : kPoolingNames)
    if (k == p) return n;
  return "?";
}

int64_t feature_dim(FeatureKind kind, int64_t C, int64_t L) {
  switch (kind) {
    case FeatureKind::LAST4_CONCAT:
      return 4 * C;
    case FeatureKind::ALL_CONCAT:
      return L * C;
    default:
      return C;
  }
}

std::vector<int64_t> feature_layers(FeatureKind kind, int64_t layer, int64_t L) {
  switch (kind) {
    case FeatureKind::LAYER_CLS: {
      // Hidden states 0 (the embeddings) .. L; a negative layer counts from the top as Python's
      // hidden_states[layer] does (-1: the last layer).
      const int64_t at = layer < 0 ? L + 1 + layer : layer;
      if (at < 0 || at > L)
        throw ConfigError("feature layer " + std::to_string(layer) + " is not one of the model's " +
                          std::to_string(L + 1) + " hidden states (0 = the embeddings .. " +
                          std::to_string(L) + ", or -1 = the last .. " + std::to_string(-(L + 1)) + ")");
      return {at};
    }
    case FeatureKind::LAST4_CONCAT:
    case FeatureKind::LAST4_MEAN:
    case FeatureKind::LAST4_MAX: {
      if (L < 4)
        throw ConfigError("last-four-layer features need at least 4 layers, the model has " +
                          std::to_string(L));
      return {L - 3, L - 2, L - 1, L};
    }
    case FeatureKind::ALL_CONCAT: {
      std::vector<int64_t> v;
      for (int64_t l = 1; l <= L; ++l) v.push_back(l);
      return v;
    }
    default:
      return {L};
  }
}

void features_forward(float* f, int32_t* argmax, const std::vector<const float*>& hidden, const uint8_t* mask,
                      int64_t B, int64_t T, int64_t C, FeatureKind kind, const std::vector<int64_t>& layers) {
  const int64_t F = static_cast<int64_t>(
      kind == FeatureKind::LAST4_CONCAT || kind == FeatureKind::ALL_CONCAT ? layers.size() * C : C);
  for (int64_t b = 0; b < B; ++b) {
    float* out = f + b * F;
    auto cls = [&](int64_t l) { return hidden[l] + b * T * C; };  // row b*T: the [CLS] / <s> token
    switch (kind) {
      case FeatureKind::LAST4_CONCAT:
      case FeatureKind::ALL_CONCAT:
        for (size_t i = 0; i < layers.size(); ++i)
          std::memcpy(out + i * C, cls(layers[i]), C * sizeof(float));
        break;
      case FeatureKind::LAST4_MEAN:
        for (int64_t c = 0; c < C; ++c) {
          float s = 0;
          for (int64_t l : layers) s += cls(l)[c];
          out[c] = s / static_cast<float>(layers.size());
        }
        break;
      case FeatureKind::LAST4_MAX:
        for (int64_t c = 0; c < C; ++c) {
          int32_t best = 0;
          for (size_t i = 1; i < layers.size(); ++i)
            if (cls(layers[i])[c] > cls(layers[best])[c]) best = static_cast<int32_t>(i);
          out[c] = cls(layers[best])[c];
          argmax[b * C + c] = best;
        }
        break;
      case FeatureKind::MEAN_TOKENS: {
        const float* h = hidden[layers[0]] + b * T * C;
        std::fill(out, out + C, 0.0f);
        int64_t n = 0;
        for (int64_t t = 0; t < T; ++t) {
          if (!mask[b * T + t]) continue;
          ++n;
          for (int64_t c = 0; c < C; ++c) out[c] += h[t * C + c];
        }
        const float inv = 1.0f / static_cast<float>(std::max<int64_t>(n, 1));
        for (int64_t c = 0; c < C; ++c) out[c] *= inv;
        break;
      }
      default:  // POOLER (pre-pooler CLS), CLS, LAYER_CLS
        std::memcpy(out, cls(layers[0]), C * sizeof(float));
    }
  }
}

void features_backward(float* dh, int64_t layer, const float* df, const int32_t* argmax, const uint8_t* mask,
                       int64_t B, int64_t T, int64_t C, FeatureKind kind,
                       const std::vector<int64_t>& layers) {
  const int64_t F = static_cast<int64_t>(
      kind == FeatureKind::LAST4_CONCAT || kind == FeatureKind::ALL_CONCAT ? layers.size() * C : C);
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i] != layer) continue;
    for (int64_t b = 0; b < B; ++b) {
      const float* g = df + b * F;
      float* d = dh + b * T * C;  // the [CLS] row
      switch (kind) {
        case FeatureKind::LAST4_CONCAT:
        case FeatureKind::ALL_CONCAT:
          for (int64_t c = 0; c < C; ++c) d[c] += g[i * C + c];
          break;
        case FeatureKind::LAST4_MEAN:
          for (int64_t c = 0; c < C; ++c) d[c] += g[c] / static_cast<float>(layers.size());
          break;
        case FeatureKind::LAST4_MAX:
          for (int64_t c = 0; c < C; ++c)
            if (argmax[b * C + c] == static_cast<int32_t>(i)) d[c] += g[c];
          break;
        case FeatureKind::MEAN_TOKENS: {
          int64_t n = 0;
          for (int64_t t = 0; t < T; ++t) n += mask[b * T + t] != 0;
          const float inv = 1.0f / static_cast<float>(std::max<int64_t>(n, 1));
          for (int64_t t = 0; t < T; ++t)
            if (mask[b * T + t])
              for (int64_t c = 0; c < C; ++c) d[t * C + c] += g[c] * inv;
          break;
        }
        default:
          for (int64_t c = 0; c < C; ++c) d[c] += g[c];
      }
    }
  }
}

void chunk_pool_forward(float* doc, int32_t* argmax, float* weights, const float* f,
                        const uint8_t* chunk_mask, const float* w, int64_t D, int64_t K, int64_t F,
                        ChunkPooling pooling) {
  for (int64_t d = 0; d < D; ++d) {
    float* out = doc + d * F;
    const float* fd = f + d * K * F;
    const uint8_t* m = chunk_mask + d * K;
    int64_t n = 0;
    for (int64_t k = 0; k < K; ++k) n += m[k] != 0;
    if (n == 0) throw ShapeError("chunk pooling: document " + std::to_string(d) + " has no chunk");
    if (K > kMaxChunks)
      throw ShapeError("chunk pooling: " + std::to_string(K) + " chunks per document exceed " +
                       std::to_string(kMaxChunks));
    if (pooling == ChunkPooling::MAX) {
      for (int64_t c = 0; c < F; ++c) {
        int32_t best = -1;
        for (int64_t k = 0; k < K; ++k)
          if (m[k] && (best < 0 || fd[k * F + c] > fd[best * F + c])) best = static_cast<int32_t>(k);
        out[c] = fd[best * F + c];
        argmax[d * F + c] = best;
      }
      continue;
    }
    float* a = weights + d * K;
    if (pooling == ChunkPooling::ATTENTION) {
      float mx = -INFINITY;
      for (int64_t k = 0; k < K; ++k) {
        if (!m[k]) continue;
        float s = 0;
        for (int64_t c = 0; c < F; ++c) s += w[c] * fd[k * F + c];
        a[k] = s;
        mx = std::max(mx, s);
      }
      float sum = 0;
      for (int64_t k = 0; k < K; ++k) {
        a[k] = m[k] ? std::exp(a[k] - mx) : 0.0f;
        sum += a[k];
      }
      for (int64_t k = 0; k < K; ++k) a[k] /= sum;
    } else {  // MEAN
      for (int64_t k = 0; k < K; ++k) a[k] = m[k] ? 1.0f / static_cast<float>(n) : 0.0f;
    }
    std::fill(out, out + F, 0.0f);
    for (int64_t k = 0; k < K; ++k)
      if (m[k])
        for (int64_t c = 0; c < F; ++c) out[c] += a[k] * fd[k * F + c];
  }
}

void chunk_pool_backward(float* df, float* dw, const float* ddoc, const float* f, const int32_t* argmax,
                         const float* weights, const uint8_t* chunk_mask, const float* w, int64_t D,
                         int64_t K, int64_t F, ChunkPooling pooling) {
  std::fill(df, df + D * K * F, 0.0f);
  for (int64_t d = 0; d < D; ++d) {
    const float* g = ddoc + d * F;
    const float* fd = f + d * K * F;
    float* dfd = df + d * K * F;
    const uint8_t* m = chunk_mask + d * K;
    if (pooling == ChunkPooling::MAX) {
      for (int64_t c = 0; c < F; ++c) dfd[argmax[d * F + c] * F + c] += g[c];
      continue;
    }
    const float* a = weights + d * K;
    for (int64_t k = 0; k < K; ++k)
      if (m[k])
        for (int64_t c = 0; c < F; ++c) dfd[k * F + c] += a[k] * g[c];
    if (pooling != ChunkPooling::ATTENTION) continue;
    // out = sum_k a_k f_k, a = softmax(s), s_k = w . f_k:  ds_k = a_k (g . f_k - g . out)
    float g_out = 0;
    float gf[kMaxChunks] = {0};
    for (int64_t k = 0; k < K; ++k) {
      if (!m[k]) continue;
      for (int64_t c = 0; c < F; ++c) gf[k] += g[c] * fd[k * F + c];
      g_out += a[k] * gf[k];
    }
    for (int64_t k = 0; k < K; ++k) {
      if (!m[k]) continue;
      const float ds = a[k] * (gf[k] - g_out);
      for (int64_t c = 0; c < F; ++c) {
        dfd[k * F + c] += ds * w[c];
        dw[c] += ds * fd[k * F + c];
      }
    }
  }
}

}  // namespace bertfit

// Token + position + token-type embeddings (the sum before the embedding LayerNorm).
#pragma once

#include <cstdint>

namespace bertfit {

// BERT: position ids 0..T-1 for every row. out pos[B*T].
void bert_position_ids(int32_t* pos, int64_t B, int64_t T);
// RoBERTa (HF create_position_ids_from_input_ids): cumsum(ids != pad) * (ids != pad) + pad, so real tokens
// get pad+1, pad+2, ... and padding gets pad. out pos[B*T].
void roberta_position_ids(int32_t* pos, const int32_t* ids, int64_t B, int64_t T, int32_t pad);

// out[N,C] = wte[ids[n]] + wpe[pos[n]] + wtt[type[n]]; N = B*T. Ids must be in range (checked by the caller
// once per batch with check_ids, not in the hot loop).
void embedding_forward(float* out, const int32_t* ids, const int32_t* pos, const int32_t* type,
                       const float* wte, const float* wpe, const float* wtt, int64_t N, int64_t C);
// dwte/dwpe/dwtt += scatter of dout. Deterministic: parallel over columns, rows in order.
// Rows whose id equals the table's padding_idx get no gradient, as nn.Embedding(padding_idx=...) does
// (word embeddings: pad_token_id; RoBERTa's position embeddings: pad_token_id too). -1: no padding_idx.
void embedding_backward(float* dwte, float* dwpe, float* dwtt, const float* dout, const int32_t* ids,
                        const int32_t* pos, const int32_t* type, int64_t N, int64_t C,
                        int32_t wte_padding_idx = -1, int32_t wpe_padding_idx = -1);

// Throws ShapeError naming `what` if any id is outside [0, limit).
void check_ids(const char* what, const int32_t* ids, int64_t n, int64_t limit);

}  // namespace bertfit

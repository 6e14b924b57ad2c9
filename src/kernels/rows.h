// Moving rows between the padded [B, T] layout and consecutive rows of the real tokens (padding-free
// inference: model/bert_model.h). Copies only: the values keep their bits.
#pragma once

#include <cstdint>

namespace bertfit {

// dst[i] = src[rows[i]] for i < n (width floats per row; rows strictly ascending). dst may be src (in place:
// row i moves down to i <= rows[i]).
void gather_rows(float* dst, const float* src, const int32_t* rows, int64_t n, int64_t width);

// The inverse over `total` rows: dst[rows[i]] = src[i] for i < n, every other row of dst zero. dst may be
// src (in place: back to front).
void scatter_rows(float* dst, const float* src, const int32_t* rows, int64_t n, int64_t total, int64_t width);

// dst[rows[i]] = src[i] for i < n: width floats per row, dst's rows ld_dst apart (a row may be a column block
// of a wider matrix, e.g. Q's columns of Q|K|V), src's consecutive. Every other row of dst, and the rest of
// each written row, untouched. Serial (a few rows: the [CLS] rows of a batch). dst must not overlap src.
void put_rows(float* dst, int64_t ld_dst, const float* src, const int32_t* rows, int64_t n, int64_t width);

}  // namespace bertfit

// gather_rows / scatter_rows (padding-free inference): against a plain per-row loop, out of place (the
// parallel path: large enough to fork) and in place (the serial front-to-back / back-to-front orders);
// put_rows (the [CLS] rows' Q into Q|K|V) against a plain per-element loop.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/rng.h"
#include "kernels/rows.h"

namespace bertfit {
namespace {

struct Layout {
  int64_t total, width;
  std::vector<int32_t> rows;  // ascending
};

// Every third row and the rows of a run in the middle are padding; the first and last rows are real.
Layout make_layout(int64_t total, int64_t width) {
  Layout l{total, width, {}};
  for (int64_t r = 0; r < total; ++r)
    if (r == 0 || r == total - 1 || (r % 3 != 1 && (r < total / 2 || r > total / 2 + 7)))
      l.rows.push_back(static_cast<int32_t>(r));
  return l;
}

std::vector<float> random_rows(int64_t n, int64_t width, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n * width));
  for (float& x : v) x = rng.uniform() - 0.5f;
  return v;
}

TEST(Rows, GatherAndScatterMoveWholeRowsOutOfPlaceAndInPlace) {
  for (const Layout& l :
       {make_layout(40, 5), make_layout(1500, 96)}) {  // serial, and forked (>= 2^16 floats)
    SCOPED_TRACE(l.total);
    const int64_t n = static_cast<int64_t>(l.rows.size()), W = l.width;
    const std::vector<float> padded = random_rows(l.total, W, 1);
    std::vector<float> expect_gather(static_cast<size_t>(n * W));
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(&expect_gather[i * W], &padded[l.rows[i] * W], W * sizeof(float));
    std::vector<float> out(static_cast<size_t>(n * W), -1.0f);
    gather_rows(out.data(), padded.data(), l.rows.data(), n, W);
    EXPECT_EQ(out, expect_gather);
    std::vector<float> inplace = padded;
    gather_rows(inplace.data(), inplace.data(), l.rows.data(), n, W);
    EXPECT_EQ(std::vector<float>(inplace.begin(), inplace.begin() + n * W), expect_gather);

    // Scatter back: the real rows as they were, every padded row zero (whatever the destination held).
    std::vector<float> expect_scatter(static_cast<size_t>(l.total * W), 0.0f);
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(&expect_scatter[l.rows[i] * W], &padded[l.rows[i] * W], W * sizeof(float));
    std::vector<float> dst(static_cast<size_t>(l.total * W), 7.0f);
    scatter_rows(dst.data(), expect_gather.data(), l.rows.data(), n, l.total, W);
    EXPECT_EQ(dst, expect_scatter);
    scatter_rows(inplace.data(), inplace.data(), l.rows.data(), n, l.total, W);
    EXPECT_EQ(inplace, expect_scatter);
  }
}

// put_rows writes the width floats of each chosen row of a strided destination and nothing else.
TEST(Rows, PutRowsWritesOnlyTheChosenRowsColumns) {
  const int64_t total = 9, ld = 7, width = 3;
  const std::vector<int32_t> rows = {0, 4, 8};
  const std::vector<float> src = random_rows(static_cast<int64_t>(rows.size()), width, 2);
  std::vector<float> dst(static_cast<size_t>(total * ld), 5.0f), expect = dst;
  for (size_t i = 0; i < rows.size(); ++i)
    for (int64_t j = 0; j < width; ++j) expect[rows[i] * ld + j] = src[i * width + j];
  put_rows(dst.data(), ld, src.data(), rows.data(), static_cast<int64_t>(rows.size()), width);
  EXPECT_EQ(dst, expect);
}

}  // namespace
}  // namespace bertfit

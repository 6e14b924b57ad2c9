// The pieces of data-parallel training that one process can check: how work is split between ranks, and
// that a single process's collectives leave the data as they are. The reductions across processes are
// tested under mpirun by mpi_test.sh (bitwise equality with gradient accumulation).
#include "dist/data_parallel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace bertfit::dist {
namespace {

TEST(Shard, PartitionsContiguouslyAndEvenly) {
  for (int64_t n : {0, 1, 2, 3, 7, 16, 17, 100}) {
    for (int size : {1, 2, 3, 4, 8}) {
      int64_t next = 0, smallest = n, largest = 0;
      for (int r = 0; r < size; ++r) {
        const Range s = shard(n, r, size);
        EXPECT_EQ(s.begin, next) << "n " << n << " size " << size << " rank " << r;
        EXPECT_GE(s.size(), 0);
        next = s.end;
        smallest = std::min(smallest, s.size());
        largest = std::max(largest, s.size());
      }
      EXPECT_EQ(next, n) << "n " << n << " size " << size;
      EXPECT_LE(largest - smallest, 1) << "n " << n << " size " << size;
    }
  }
  // One micro-batch per rank when a step has as many as there are ranks: rank r takes micro-batch r, the
  // pairing that makes N ranks equal to accumulation over N micro-batches.
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(shard(4, r, 4).begin, r);
    EXPECT_EQ(shard(4, r, 4).size(), 1);
  }
  // A short last step: the first ranks take one each, the rest none.
  EXPECT_EQ(shard(3, 3, 4).size(), 0);
}

TEST(OrderedSum, OneProcessLeavesTheDataAlone) {
  LocalCommunicator one;
  std::vector<float> x = {1.5f, -0.0f, 3e-8f};
  const std::vector<float> before = x;
  OrderedSum<float>{one}(x.data(), static_cast<int64_t>(x.size()));
  EXPECT_EQ(0, std::memcmp(x.data(), before.data(), x.size() * sizeof(float)));
  EXPECT_EQ(ordered_sum(one, 0.25), 0.25);
}

TEST(RunFingerprint, OneProcessAlwaysAgrees) {
  LocalCommunicator one;
  RunFingerprint fp;
  fp.add("training data", std::string("abc"));
  EXPECT_NO_THROW(fp.check_same_as_rank0(one));
}

TEST(Fnv1a, KnownValue) {
  // FNV-1a 64 of "a" (the published test vector).
  EXPECT_EQ(fnv1a("a", 1), 0xaf63dc4c8601ec8cull);
}

}  // namespace
}  // namespace bertfit::dist

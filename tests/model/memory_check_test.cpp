// A batch too large for memory is a ConfigError that says how much it needs and that it does not fit, raised
// before anything is allocated (issue 11: it ended in std::bad_alloc, an "internal error").
#include <gtest/gtest.h>

#include <string>

#include "bertfit/error.h"
#include "model/bert_model.h"
#include "tiny_model_config.h"

namespace bertfit {
namespace {

ModelConfig tiny() {
  return test::tiny_model_config(50, 16, 1, 2, 24, 16);
}

TEST(MemoryCheck, NeedAboveAvailableIsAnErrorWithBothSizes) {
  const uint64_t gib = 1ull << 30;
  try {
    check_memory_fits(3 * gib, 2 * gib, "a batch of 8 sequences x 512 tokens");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("a batch of 8 sequences x 512 tokens needs 3.00 GiB"), std::string::npos) << m;
    EXPECT_NE(m.find("2.00 GiB are available: it does not fit"), std::string::npos) << m;
    EXPECT_NE(m.find("--max_seq_length"), std::string::npos) << m;
  }
  EXPECT_NO_THROW(check_memory_fits(2 * gib, 2 * gib, "x"));  // exactly fits
  EXPECT_NO_THROW(check_memory_fits(100 * gib, 0, "x"));      // unknown: no check
}

TEST(MemoryCheck, MemAvailableIsRead) {
  // Linux always has /proc/meminfo; a machine running this test has more than 1 MiB free.
  EXPECT_GT(available_memory_bytes(), 1ull << 20);
}

TEST(MemoryCheck, ReserveRefusesABatchLargerThanMemoryAndKeepsTheModelUsable) {
  BertModel m(tiny(), HeadKind::SEQUENCE_CLASSIFICATION);
  m.reserve(2, 8);
  const size_t before = m.arena_floats();
  // 2^40 sequences of 16 tokens: petabytes, above any machine's memory (and far below int64 overflow:
  // 2^44 tokens x a few hundred floats each).
  try {
    m.reserve(int64_t{1} << 40, 16);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("a batch of 1099511627776 sequences x 16 tokens (training activations) needs"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("it does not fit"), std::string::npos) << m;
  }
  EXPECT_EQ(m.arena_floats(), before);  // checked before anything was freed or allocated
}

}  // namespace
}  // namespace bertfit

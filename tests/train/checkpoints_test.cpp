// Checkpoint listing, clean-up after a killed save, rotation, and the optimizer's group-layout check
// (issue 11: a kill -9 during a save left checkpoint-N.tmp-PID, which `--resume_from_checkpoint latest`
// picked and rotation counted; resuming with another layer-wise decay changed the rates silently).
#include "train/checkpoints.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "bertfit/error.h"
#include "tiny_model_config.h"

namespace fs = std::filesystem;

namespace bertfit {
namespace {

class Checkpoints : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(BERTFIT_BINARY_DIR) / "checkpoints_test" /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  // A checkpoint directory; complete ones hold trainer_state.json (written last by the loop).
  std::string make(const std::string& name, bool complete = true) {
    const fs::path p = dir_ / name;
    fs::create_directories(p);
    std::ofstream(p / "model.safetensors") << "x";
    if (complete) std::ofstream(p / "trainer_state.json") << "{}";
    return p.string();
  }
  // A pid that is certainly not running: above the kernel's pid_max limit (4194304 at most).
  static std::string dead_pid() { return "4194309"; }
  fs::path dir_;
};

TEST_F(Checkpoints, StepIsParsedFromTheWholeName) {
  EXPECT_EQ(checkpoint_step("checkpoint-500"), 500);
  EXPECT_EQ(checkpoint_step("checkpoint-0"), 0);
  EXPECT_EQ(checkpoint_step("checkpoint-500.tmp-4242"), -1);
  EXPECT_EQ(checkpoint_step("checkpoint-500.old-4242"), -1);
  EXPECT_EQ(checkpoint_step("checkpoint-"), -1);
  EXPECT_EQ(checkpoint_step("checkpoint--3"), -1);
  EXPECT_EQ(checkpoint_step("checkpoint-12x"), -1);
  EXPECT_EQ(checkpoint_step("checkpoint-99999999999999999999"), -1);  // would overflow
  EXPECT_EQ(checkpoint_step("runs"), -1);
}

TEST_F(Checkpoints, LatestSkipsAndRemovesTheStagingDirectoryOfAKilledSave) {
  make("checkpoint-10");
  const std::string staging = make("checkpoint-20.tmp-" + dead_pid(), false);
  EXPECT_EQ(find_latest_checkpoint(dir_.string()), (dir_ / "checkpoint-10").string());
  EXPECT_FALSE(fs::exists(staging));
}

TEST_F(Checkpoints, LatestSkipsAndRemovesAnIncompleteCheckpoint) {
  // Killed after the weights took their name but before trainer_state.json was written.
  make("checkpoint-10");
  const std::string half = make("checkpoint-20", false);
  EXPECT_EQ(find_latest_checkpoint(dir_.string()), (dir_ / "checkpoint-10").string());
  EXPECT_FALSE(fs::exists(half));
}

TEST_F(Checkpoints, StagingOfARunningSaveIsLeftAlone) {
  const std::string mine = make("checkpoint-30.tmp-" + std::to_string(::getpid()), false);
  make("checkpoint-10");
  EXPECT_EQ(find_latest_checkpoint(dir_.string()), (dir_ / "checkpoint-10").string());
  EXPECT_TRUE(fs::exists(mine));
}

TEST_F(Checkpoints, RotationCountsOnlyCheckpointsAndCleansUp) {
  make("checkpoint-10");
  make("checkpoint-20");
  make("checkpoint-30");
  make("checkpoint-40.tmp-" + dead_pid(), false);
  std::ofstream(dir_ / ("trainer_state.json.tmp-" + dead_pid())) << "{";  // write_file_atomic's, killed
  std::ofstream(dir_ / ("eval_results.json.tmp-" + std::to_string(::getpid()))) << "{";  // a live one's
  rotate_checkpoints(dir_.string(), 2, (dir_ / "checkpoint-10").string());
  EXPECT_FALSE(fs::exists(dir_ / ("trainer_state.json.tmp-" + dead_pid())));
  EXPECT_TRUE(fs::exists(dir_ / ("eval_results.json.tmp-" + std::to_string(::getpid()))));
  // Limit 2 with the best (10) kept: 20 goes; 30 is the newest. The leftovers are gone and did not count.
  EXPECT_TRUE(fs::exists(dir_ / "checkpoint-10"));
  EXPECT_FALSE(fs::exists(dir_ / "checkpoint-20"));
  EXPECT_TRUE(fs::exists(dir_ / "checkpoint-30"));
  EXPECT_FALSE(fs::exists(dir_ / ("checkpoint-40.tmp-" + dead_pid())));
  const auto left = list_checkpoints(dir_.string());
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].first, 10);
  EXPECT_EQ(left[1].first, 30);
}

TEST_F(Checkpoints, OtherEntriesAreNeverTouched) {
  make("runs");
  make("my.tmp-1", false);  // not a checkpoint's staging name
  std::ofstream(dir_ / "checkpoint-5.tmp-1") << "a file, not a directory";
  EXPECT_TRUE(remove_checkpoint_leftovers(dir_.string()).empty());
  EXPECT_TRUE(fs::exists(dir_ / "runs"));
  EXPECT_TRUE(fs::exists(dir_ / "my.tmp-1"));
  EXPECT_TRUE(fs::exists(dir_ / "checkpoint-5.tmp-1"));
  EXPECT_EQ(find_latest_checkpoint((dir_ / "missing").string()), "");
}

// A tiny model: the optimizer's groups depend on its layers.
ModelConfig tiny() {
  return test::tiny_model_config(50, 16, 2, 2, 24, 16);
}

TEST_F(Checkpoints, OptimizerStateWithAnotherGroupLayoutIsAnError) {
  const BertModel model(tiny(), HeadKind::SEQUENCE_CLASSIFICATION);
  OptimizerOptions o;
  o.learning_rate = 1e-3;
  o.layerwise_lr_decay = 0.9;
  o.weight_decay = 0.01;
  const Optimizer saved(model, o);
  const std::string path = (dir_ / "optimizer.safetensors").string();
  saved.save(path);

  Optimizer same(model, o);
  EXPECT_NO_THROW(load_optimizer_state(same, path));

  OptimizerOptions other = o;
  other.layerwise_lr_decay = 0.8;
  Optimizer changed(model, other);
  try {
    load_optimizer_state(changed, path);
    FAIL() << "no error";
  } catch (const FormatError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(path + ": parameter group"), std::string::npos) << m;
    EXPECT_NE(m.find("differs"), std::string::npos) << m;
    EXPECT_NE(m.find("--layerwise_lr_decay"), std::string::npos) << m;
  }
  OptimizerOptions no_decay = o;
  no_decay.weight_decay = 0;
  EXPECT_THROW(check_optimizer_groups(path, Optimizer(model, no_decay).groups()), FormatError);
  OptimizerOptions head = o;
  head.head_learning_rate = 5e-3;
  EXPECT_THROW(check_optimizer_groups(path, Optimizer(model, head).groups()), FormatError);
}

}  // namespace
}  // namespace bertfit

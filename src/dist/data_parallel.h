// What data-parallel training adds to the training loop (training_loop.cpp), over any Communicator:
//
//   - the share of a step's micro-batches each rank computes (shard);
//   - the gradient reduction, installed as the loop's GradientHook: every rank ends with the sum of all
//     ranks' gradients, added in rank order (OrderedSum), so the step equals one process's gradient
//     accumulation bit for bit (docs/distributed.md says why, and what would break it);
//   - a check that every rank runs the same training (RunFingerprint), before the first collective that
//     would otherwise hang or silently mix different runs.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dist/communicator.h"

namespace bertfit::dist {

// [begin, end) of n items for `rank` of `size`: contiguous, the first n % size ranks one more.
struct Range {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};
Range shard(int64_t n, int rank, int size);

// Every rank's x[count], summed element by element into every rank's x, the ranks' values added in rank
// order: x = ((x_0 + x_1) + x_2) + ... rounded after each addition, the same bits on every rank. MPI only
// moves data here (an all-to-all gives rank j every rank's j-th shard, which it adds in rank order; an
// all-gather returns the sums), because the order in which MPI_Allreduce adds is not specified and differs
// between algorithms, message sizes and rank counts. Costs one all-to-all and one all-gather of count
// elements (as a reduce-scatter + all-gather allreduce does) and a receive buffer of count elements.
template <typename T>
class OrderedSum {
 public:
  explicit OrderedSum(Communicator& comm) : comm_(comm) {}
  void operator()(T* x, int64_t count);

 private:
  Communicator& comm_;
  std::vector<T> recv_;
};

// OrderedSum of a gradient buffer in buckets started while the backward pass is still running, as DDP's
// bucketing does: the backward reports each time a suffix [offset, count) of the buffer is final (after the
// head, after each encoder layer top down, after the embeddings: BertModel::on_gradients_ready); a bucket's
// all-to-all starts as soon as its range is final, its sums and all-gather as soon as that completes. Every
// element is still the sum ((x_0 + x_1) + ...) in rank order: the bits equal OrderedSum's. The buckets are
// cut at the reported offsets into pieces of at least cap elements, the same on every rank (they depend only
// on the model), and the collectives are started in bucket order on each stream, as MPI requires.
class BucketedReducer {
 public:
  // ready_offsets: the offsets the backward reports, descending, the last 0. cap: elements per bucket.
  BucketedReducer(Communicator& comm, std::vector<int64_t> ready_offsets, int64_t count, int64_t cap);
  // A step begins: the buffer to reduce (its gradients are not final yet).
  void begin(float* x);
  // [offset, count) is final: starts the buckets inside it and makes progress on the started ones.
  void ready_from(int64_t offset);
  // Starts what is left and completes everything: afterwards x holds the sums on every rank.
  void finish();
  int64_t buckets() const { return static_cast<int64_t>(buckets_.size()); }
  // Seconds spent in finish() over all steps: the reduction's time not hidden behind the backward.
  double exposed_seconds() const { return exposed_seconds_; }

 private:
  struct Bucket {
    int64_t begin = 0, end = 0;
    std::vector<int64_t> counts, offsets, recv_counts, recv_offsets;
    std::vector<float> recv;
    int phase = 0;  // 0 waiting, 1 all-to-all started, 2 all-gather started, 3 done
    Communicator::Request request = 0;
  };
  void start(Bucket& b);
  void progress(bool block);
  Communicator& comm_;
  std::vector<Bucket> buckets_;  // from the end of the buffer down (the order the backward finishes them)
  float* x_ = nullptr;
  size_t next_start_ = 0, next_gather_ = 0;
  double exposed_seconds_ = 0;
};

// One value: every rank's x, added in rank order (0 + x_0 + x_1 + ...), on every rank.
double ordered_sum(Communicator& comm, double x);

// Named 64-bit hashes of what must agree across ranks (the data, the settings, the model's size, the step
// a resumed run starts at).
class RunFingerprint {
 public:
  void add(const std::string& what, uint64_t value) { fields_.emplace_back(what, value); }
  void add(const std::string& what, const std::string& bytes);
  // Throws ConfigError on every rank whose fingerprint differs from rank 0's, naming the first field that
  // differs; the others go on (into the next collective, from which the failing rank's abort releases them).
  void check_same_as_rank0(Communicator& comm) const;

 private:
  std::vector<std::pair<std::string, uint64_t>> fields_;
};

// 64-bit FNV-1a, continuing from h.
uint64_t fnv1a(const void* data, size_t bytes, uint64_t h = 0xcbf29ce484222325ull);

}  // namespace bertfit::dist

#include "dist/data_parallel.h"

#include <algorithm>
#include <chrono>
#include <type_traits>

#include "bertfit/error.h"
#include "core/threading.h"

namespace bertfit::dist {

Range shard(int64_t n, int rank, int size) {
  const int64_t q = n / size, r = n % size;
  Range out;
  out.begin = rank * q + std::min<int64_t>(rank, r);
  out.end = out.begin + q + (rank < r ? 1 : 0);
  return out;
}

namespace {

// out[i] = ((in[0][i] + in[1][i]) + in[2][i]) + ..., in[r] = in + r * n. Threads split the elements, never
// an element's sum: the bits do not depend on the thread count.
template <typename T>
void add_in_rank_order(T* out, const T* in, int64_t n, int W) {
  parallel_for(0, n, n * W >= kParallelMinWork, [&](int64_t i) {
    T s = in[i];
    for (int r = 1; r < W; ++r) s += in[r * n + i];
    out[i] = s;
  });
}

}  // namespace

template <typename T>
void OrderedSum<T>::operator()(T* x, int64_t count) {
  const int W = comm_.size();
  if (W == 1 || count == 0) return;
  const int me = comm_.rank();
  std::vector<int64_t> counts(W), offsets(W), recv_counts(W), recv_offsets(W);
  for (int j = 0; j < W; ++j) {
    const Range s = shard(count, j, W);
    counts[j] = s.size();
    offsets[j] = s.begin;
  }
  const int64_t mine = counts[me];
  for (int r = 0; r < W; ++r) {
    recv_counts[r] = mine;
    recv_offsets[r] = r * mine;
  }
  recv_.resize(static_cast<size_t>(W * mine));
  if constexpr (std::is_same_v<T, float>) {
    comm_.all_to_all(x, counts.data(), offsets.data(), recv_.data(), recv_counts.data(), recv_offsets.data());
  } else {  // doubles travel as pairs of floats' worth of bytes: the same exchange with twice the counts
    std::vector<int64_t> c2(W), o2(W), rc2(W), ro2(W);
    for (int j = 0; j < W; ++j)
      c2[j] = 2 * counts[j], o2[j] = 2 * offsets[j], rc2[j] = 2 * recv_counts[j],
      ro2[j] = 2 * recv_offsets[j];
    comm_.all_to_all(reinterpret_cast<const float*>(x), c2.data(), o2.data(),
                     reinterpret_cast<float*>(recv_.data()), rc2.data(), ro2.data());
  }
  // Element i of this rank's shard: ((x_0 + x_1) + x_2) + ..., one rounding per addition, in rank order.
  add_in_rank_order(x + offsets[me], recv_.data(), mine, W);
  if constexpr (std::is_same_v<T, float>) {
    comm_.all_gather_in_place(x, counts.data(), offsets.data());
  } else {
    std::vector<int64_t> c2(W), o2(W);
    for (int j = 0; j < W; ++j) c2[j] = 2 * counts[j], o2[j] = 2 * offsets[j];
    comm_.all_gather_in_place(reinterpret_cast<float*>(x), c2.data(), o2.data());
  }
}

template class OrderedSum<float>;
template class OrderedSum<double>;

BucketedReducer::BucketedReducer(Communicator& comm, std::vector<int64_t> ready_offsets, int64_t count,
                                 int64_t cap)
    : comm_(comm) {
  const int W = comm.size();
  int64_t end = count;
  for (size_t i = 0; i < ready_offsets.size(); ++i) {
    const int64_t o = ready_offsets[i];
    if (end - o < cap && o > 0) continue;  // too small yet: grows down to the next offset
    if (end > o) {
      Bucket b;
      b.begin = o;
      b.end = end;
      const int64_t n = end - o;
      b.counts.resize(W), b.offsets.resize(W), b.recv_counts.resize(W), b.recv_offsets.resize(W);
      for (int j = 0; j < W; ++j) {
        const Range s = shard(n, j, W);
        b.counts[j] = s.size();
        b.offsets[j] = s.begin;
      }
      const int64_t mine = b.counts[comm.rank()];
      for (int r = 0; r < W; ++r) b.recv_counts[r] = mine, b.recv_offsets[r] = r * mine;
      b.recv.resize(static_cast<size_t>(W * mine));
      buckets_.push_back(std::move(b));
    }
    end = o;
  }
}

void BucketedReducer::begin(float* x) {
  x_ = x;
  next_start_ = next_gather_ = 0;
  for (Bucket& b : buckets_) b.phase = 0;
}

void BucketedReducer::start(Bucket& b) {
  b.request = comm_.start_all_to_all(0, x_ + b.begin, b.counts.data(), b.offsets.data(), b.recv.data(),
                                     b.recv_counts.data(), b.recv_offsets.data());
  b.phase = 1;
}

// Buckets move on in order: the sums and all-gather of bucket k start only after bucket k-1's did, so every
// rank starts its collectives in the same order on each stream.
void BucketedReducer::progress(bool block) {
  const int W = comm_.size();
  while (next_gather_ < next_start_) {
    Bucket& b = buckets_[next_gather_];
    if (block)
      comm_.wait(b.request);
    else if (!comm_.test(b.request))
      return;
    const int me = comm_.rank();
    add_in_rank_order(x_ + b.begin + b.offsets[me], b.recv.data(), b.counts[me], W);
    b.request = comm_.start_all_gather_in_place(1, x_ + b.begin, b.counts.data(), b.offsets.data());
    b.phase = 2;
    ++next_gather_;
  }
}

void BucketedReducer::ready_from(int64_t offset) {
  if (comm_.size() == 1) return;
  while (next_start_ < buckets_.size() && buckets_[next_start_].begin >= offset)
    start(buckets_[next_start_++]);
  progress(false);
}

void BucketedReducer::finish() {
  if (comm_.size() == 1) return;
  const auto t0 = std::chrono::steady_clock::now();
  while (next_start_ < buckets_.size()) start(buckets_[next_start_++]);
  progress(true);
  for (Bucket& b : buckets_) {
    comm_.wait(b.request);
    b.phase = 3;
  }
  exposed_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double ordered_sum(Communicator& comm, double x) {
  const int W = comm.size();
  if (W == 1) return x;
  std::vector<double> all(static_cast<size_t>(W));
  comm.all_gather(&x, sizeof(double), all.data());
  double s = 0;  // as one process accumulates: 0, then + each micro-batch's value in order
  for (double v : all) s += v;
  return s;
}

uint64_t fnv1a(const void* data, size_t bytes, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

void RunFingerprint::add(const std::string& what, const std::string& bytes) {
  add(what, fnv1a(bytes.data(), bytes.size()));
}

void RunFingerprint::check_same_as_rank0(Communicator& comm) const {
  const int W = comm.size();
  if (W == 1) return;
  const int64_t n = static_cast<int64_t>(fields_.size());
  std::vector<uint64_t> mine(fields_.size()), all(fields_.size() * static_cast<size_t>(W));
  for (size_t i = 0; i < fields_.size(); ++i) mine[i] = fields_[i].second;
  comm.all_gather(mine.data(), n * static_cast<int64_t>(sizeof(uint64_t)), all.data());
  for (size_t i = 0; i < fields_.size(); ++i)
    if (mine[i] != all[i])  // rank 0's value of field i
      throw ConfigError("rank " + std::to_string(comm.rank()) + " of " + std::to_string(W) + ": its " +
                        fields_[i].first +
                        " differs from rank 0's: every rank must run the same training "
                        "(the same command, data files with the same contents, the same checkpoint)");
}

}  // namespace bertfit::dist

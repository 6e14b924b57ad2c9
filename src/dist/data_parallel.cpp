#include "dist/data_parallel.h"

#include <algorithm>
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
  // Threads split the elements, never an element's sum: the bits do not depend on the thread count.
  T* out = x + offsets[me];
  const T* in = recv_.data();
#pragma omp parallel for schedule(static) if (mine * W >= kParallelMinWork)
  for (int64_t i = 0; i < mine; ++i) {
    T s = in[i];
    for (int r = 1; r < W; ++r) s += in[r * mine + i];
    out[i] = s;
  }
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

// Communicator over Open MPI (MPI_COMM_WORLD). Compiled only with BERTFIT_WITH_MPI; nothing outside src/dist
// includes mpi.h.
#pragma once

#include <map>
#include <memory>

#include "dist/communicator.h"

namespace bertfit::dist {

class MpiCommunicator : public Communicator {
 public:
  // MPI_Init_thread (FUNNELED: only the main thread calls MPI; OpenMP threads never do), once per process.
  static std::shared_ptr<MpiCommunicator> init(int* argc, char*** argv);
  ~MpiCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string describe() const override;
  void broadcast(void* data, int64_t bytes, int root) override;
  void all_gather(const void* in, int64_t bytes_each, void* out) override;
  void all_to_all(const float* in, const int64_t* send_counts, const int64_t* send_offsets, float* out,
                  const int64_t* recv_counts, const int64_t* recv_offsets) override;
  void all_gather_in_place(float* data, const int64_t* counts, const int64_t* offsets) override;
  void barrier() override;
  Request start_all_to_all(int stream, const float* in, const int64_t* send_counts,
                           const int64_t* send_offsets, float* out, const int64_t* recv_counts,
                           const int64_t* recv_offsets) override;
  Request start_all_gather_in_place(int stream, float* data, const int64_t* counts,
                                    const int64_t* offsets) override;
  bool test(Request request) override;
  void wait(Request request) override;
  [[noreturn]] void abort(int exit_code) override;
  void finalize() override;

 private:
  MpiCommunicator() = default;
  struct Pending;  // an MPI_Request with the count arrays MPI reads until it completes
  int rank_ = 0, size_ = 1;
  bool finalized_ = false;
  void* streams_[2] = {nullptr, nullptr};  // MPI_Comm (duplicates of MPI_COMM_WORLD), made on first use
  std::map<Request, std::unique_ptr<Pending>> pending_;
  Request next_ = 1;
};

}  // namespace bertfit::dist

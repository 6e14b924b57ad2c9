// The processes of a data-parallel run and the few collectives training needs, behind one small interface:
// a single-process implementation (every build) and Open MPI's (builds with BERTFIT_WITH_MPI, when the
// program was started by mpirun). The library asks world() for the process's communicator, as it asks for
// its LogSink: one per process, installed by the program (the CLI's main) before any work.
//
// Only what the training loop uses is here. Every collective must be called by every rank, in the same
// order, with the same sizes (MPI's rule); a rank that fails instead calls abort(), which ends all of them:
// no rank is left waiting in a collective for one that will never come.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace bertfit::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "single process", "Open MPI v4.1.4, 2 ranks": for the run's log.
  virtual std::string describe() const = 0;
  // bytes at data on rank `root` to every rank's data.
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  // Every rank's `bytes_each` bytes at in, concatenated in rank order into out (size() * bytes_each bytes)
  // on every rank.
  virtual void all_gather(const void* in, int64_t bytes_each, void* out) = 0;
  // Personalised exchange of floats: this rank sends in[send_offsets[j] ..+ send_counts[j]] to rank j and
  // receives rank j's part for it at out[recv_offsets[j] ..+ recv_counts[j]].
  virtual void all_to_all(const float* in, const int64_t* send_counts, const int64_t* send_offsets,
                          float* out, const int64_t* recv_counts, const int64_t* recv_offsets) = 0;
  // In place: rank j's data[offsets[j] ..+ counts[j]] to every rank's same range.
  virtual void all_gather_in_place(float* data, const int64_t* counts, const int64_t* offsets) = 0;
  virtual void barrier() = 0;

  // Nonblocking all_to_all / all_gather_in_place, for reductions that overlap the backward. Each runs on one
  // of two streams (0, 1: each its own duplicate of the communicator), so that the ranks' calls only have to
  // come in the same order within a stream. The buffers must stay untouched until the request completes;
  // test() makes progress and returns true once it has (the request is then gone); wait() blocks until then.
  using Request = int64_t;
  virtual Request start_all_to_all(int stream, const float* in, const int64_t* send_counts,
                                   const int64_t* send_offsets, float* out, const int64_t* recv_counts,
                                   const int64_t* recv_offsets) = 0;
  virtual Request start_all_gather_in_place(int stream, float* data, const int64_t* counts,
                                            const int64_t* offsets) = 0;
  virtual bool test(Request request) = 0;
  virtual void wait(Request request) = 0;

  // Ends every rank of the job with this exit code (MPI_Abort); never returns.
  [[noreturn]] virtual void abort(int exit_code) = 0;
  // Orderly end of a successful run (MPI_Finalize); the communicator is unusable afterwards.
  virtual void finalize() {}
};

// One process: rank 0 of 1; the collectives copy or do nothing.
class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string describe() const override { return "single process"; }
  void broadcast(void*, int64_t, int) override {}
  void all_gather(const void* in, int64_t bytes_each, void* out) override;
  void all_to_all(const float* in, const int64_t* send_counts, const int64_t* send_offsets, float* out,
                  const int64_t* recv_counts, const int64_t* recv_offsets) override;
  void all_gather_in_place(float*, const int64_t*, const int64_t*) override {}
  void barrier() override {}
  Request start_all_to_all(int, const float* in, const int64_t* send_counts, const int64_t* send_offsets,
                           float* out, const int64_t* recv_counts, const int64_t* recv_offsets) override {
    all_to_all(in, send_counts, send_offsets, out, recv_counts, recv_offsets);
    return 0;
  }
  Request start_all_gather_in_place(int, float*, const int64_t*, const int64_t*) override { return 0; }
  bool test(Request) override { return true; }
  void wait(Request) override {}
  [[noreturn]] void abort(int exit_code) override;
};

// The process's communicator (a LocalCommunicator until one is installed).
Communicator& world();
// Installs the process's communicator and returns the previous one.
std::shared_ptr<Communicator> set_world(std::shared_ptr<Communicator> comm);

// True when this build has MPI (BERTFIT_WITH_MPI).
bool built_with_mpi();
// True when the environment says a launcher (mpirun / mpiexec / srun with PMIx) started this process as one
// rank of several.
bool launched_by_mpi();
// For the CLI's main: when built with MPI and launched by mpirun, initialises MPI and installs its
// communicator; otherwise leaves the single process. Launched by mpirun without MPI in the build: throws
// ConfigError saying so (N copies of one training would each write the same output).
void init_world(int* argc, char*** argv);

}  // namespace bertfit::dist

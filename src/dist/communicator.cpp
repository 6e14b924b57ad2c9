#include "dist/communicator.h"

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "bertfit/error.h"

#ifdef BERTFIT_WITH_MPI
#include "dist/mpi_communicator.h"
#endif

namespace bertfit::dist {

void LocalCommunicator::all_gather(const void* in, int64_t bytes_each, void* out) {
  if (bytes_each > 0 && in != out) std::memmove(out, in, static_cast<size_t>(bytes_each));
}

void LocalCommunicator::all_to_all(const float* in, const int64_t* send_counts, const int64_t* send_offsets,
                                   float* out, const int64_t* /*recv_counts*/, const int64_t* recv_offsets) {
  if (send_counts[0] > 0)
    std::memmove(out + recv_offsets[0], in + send_offsets[0],
                 static_cast<size_t>(send_counts[0]) * sizeof(float));
}

void LocalCommunicator::abort(int exit_code) {
  std::exit(exit_code);
}

namespace {
std::mutex g_mutex;
std::shared_ptr<Communicator>& slot() {
  static std::shared_ptr<Communicator> comm = std::make_shared<LocalCommunicator>();
  return comm;
}
}  // namespace

Communicator& world() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return *slot();
}

std::shared_ptr<Communicator> set_world(std::shared_ptr<Communicator> comm) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!comm) comm = std::make_shared<LocalCommunicator>();
  std::swap(slot(), comm);
  return comm;
}

bool built_with_mpi() {
#ifdef BERTFIT_WITH_MPI
  return true;
#else
  return false;
#endif
}

bool launched_by_mpi() {
  // Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE; PMIx launchers (srun --mpi=pmix, prterun) PMIX_RANK; MPICH's
  // Hydra PMI_SIZE.
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

void init_world(int* argc, char*** argv) {
  if (!launched_by_mpi()) return;
#ifdef BERTFIT_WITH_MPI
  set_world(MpiCommunicator::init(argc, argv));
#else
  (void)argc;
  (void)argv;
  const char* n = std::getenv("OMPI_COMM_WORLD_SIZE");
  if (n && std::atoi(n) > 1)
    throw ConfigError(
        "this bertfit was built without MPI, but mpirun started it as one of " + std::string(n) +
        " processes: rebuild with libopenmpi-dev installed (scripts/setup.sh), or run it without mpirun");
#endif
}

}  // namespace bertfit::dist

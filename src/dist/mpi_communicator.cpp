#include "dist/mpi_communicator.h"

// The C API only (the deprecated C++ bindings would need libmpi_cxx).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <climits>
#include <cstdio>
#include <string>
#include <vector>

#include "bertfit/error.h"

namespace bertfit::dist {

namespace {

// MPI counts are ints: larger messages go in pieces of at most this many bytes.
constexpr int64_t kMaxPiece = int64_t{1} << 30;

// An MPI error as a bertfit error (the handler is MPI_ERRORS_RETURN, so calls return their code).
void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error(std::string("MPI ") + what + " failed: " + std::string(text, static_cast<size_t>(len)));
}

int as_int(int64_t n, const char* what) {
  if (n < 0 || n > INT_MAX)
    throw Error(std::string("MPI ") + what + ": " + std::to_string(n) +
                " elements for one rank exceed MPI's int counts");
  return static_cast<int>(n);
}

// A duplicate of MPI_COMM_WORLD in *slot (made once).
MPI_Comm stream_comm(void** slot);

}  // namespace

std::shared_ptr<MpiCommunicator> MpiCommunicator::init(int* argc, char*** argv) {
  int provided = 0;
  check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  // Errors come back as codes (turned into bertfit errors, which end the job through abort()), not as
  // MPI's default abort without a word from bertfit.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  std::shared_ptr<MpiCommunicator> c(new MpiCommunicator());
  MPI_Comm_rank(MPI_COMM_WORLD, &c->rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &c->size_);
  // The two streams now, while every rank is here: MPI_Comm_dup is itself a collective of the world.
  for (void*& slot : c->streams_) stream_comm(&slot);
  return c;
}

MpiCommunicator::~MpiCommunicator() {
  finalize();
}

std::string MpiCommunicator::describe() const {
  char version[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(version, &len);
  std::string v(version, static_cast<size_t>(len));
  if (const size_t comma = v.find(','); comma != std::string::npos) v.resize(comma);  // "Open MPI v4.1.4"
  return v + ", " + std::to_string(size_) + " ranks";
}

void MpiCommunicator::broadcast(void* data, int64_t bytes, int root) {
  auto* p = static_cast<char*>(data);
  for (int64_t off = 0; off < bytes; off += kMaxPiece)
    check(MPI_Bcast(p + off, static_cast<int>(std::min(kMaxPiece, bytes - off)), MPI_BYTE, root,
                    MPI_COMM_WORLD),
          "MPI_Bcast");
}

void MpiCommunicator::all_gather(const void* in, int64_t bytes_each, void* out) {
  check(MPI_Allgather(in, as_int(bytes_each, "MPI_Allgather"), MPI_BYTE, out,
                      as_int(bytes_each, "MPI_Allgather"), MPI_BYTE, MPI_COMM_WORLD),
        "MPI_Allgather");
}

void MpiCommunicator::all_to_all(const float* in, const int64_t* send_counts, const int64_t* send_offsets,
                                 float* out, const int64_t* recv_counts, const int64_t* recv_offsets) {
  std::vector<int> sc(size_), so(size_), rc(size_), ro(size_);
  for (int j = 0; j < size_; ++j) {
    sc[j] = as_int(send_counts[j], "MPI_Alltoallv");
    so[j] = as_int(send_offsets[j], "MPI_Alltoallv");
    rc[j] = as_int(recv_counts[j], "MPI_Alltoallv");
    ro[j] = as_int(recv_offsets[j], "MPI_Alltoallv");
  }
  check(MPI_Alltoallv(in, sc.data(), so.data(), MPI_FLOAT, out, rc.data(), ro.data(), MPI_FLOAT,
                      MPI_COMM_WORLD),
        "MPI_Alltoallv");
}

void MpiCommunicator::all_gather_in_place(float* data, const int64_t* counts, const int64_t* offsets) {
  std::vector<int> c(size_), o(size_);
  for (int j = 0; j < size_; ++j) {
    c[j] = as_int(counts[j], "MPI_Allgatherv");
    o[j] = as_int(offsets[j], "MPI_Allgatherv");
  }
  check(
      MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, c.data(), o.data(), MPI_FLOAT, MPI_COMM_WORLD),
      "MPI_Allgatherv");
}

struct MpiCommunicator::Pending {
  MPI_Request request = MPI_REQUEST_NULL;
  std::vector<int> a, b, c, d;
};

namespace {
MPI_Comm stream_comm(void** slot) {
  if (!*slot) {
    auto* c = new MPI_Comm;
    check(MPI_Comm_dup(MPI_COMM_WORLD, c), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(*c, MPI_ERRORS_RETURN);
    *slot = c;
  }
  return *static_cast<MPI_Comm*>(*slot);
}
}  // namespace

MpiCommunicator::Request MpiCommunicator::start_all_to_all(int stream, const float* in,
                                                           const int64_t* send_counts,
                                                           const int64_t* send_offsets, float* out,
                                                           const int64_t* recv_counts,
                                                           const int64_t* recv_offsets) {
  auto p = std::make_unique<Pending>();
  p->a.resize(size_), p->b.resize(size_), p->c.resize(size_), p->d.resize(size_);
  for (int j = 0; j < size_; ++j) {
    p->a[j] = as_int(send_counts[j], "MPI_Ialltoallv");
    p->b[j] = as_int(send_offsets[j], "MPI_Ialltoallv");
    p->c[j] = as_int(recv_counts[j], "MPI_Ialltoallv");
    p->d[j] = as_int(recv_offsets[j], "MPI_Ialltoallv");
  }
  check(MPI_Ialltoallv(in, p->a.data(), p->b.data(), MPI_FLOAT, out, p->c.data(), p->d.data(), MPI_FLOAT,
                       stream_comm(&streams_[stream & 1]), &p->request),
        "MPI_Ialltoallv");
  const Request id = next_++;
  pending_[id] = std::move(p);
  return id;
}

MpiCommunicator::Request MpiCommunicator::start_all_gather_in_place(int stream, float* data,
                                                                    const int64_t* counts,
                                                                    const int64_t* offsets) {
  auto p = std::make_unique<Pending>();
  p->a.resize(size_), p->b.resize(size_);
  for (int j = 0; j < size_; ++j) {
    p->a[j] = as_int(counts[j], "MPI_Iallgatherv");
    p->b[j] = as_int(offsets[j], "MPI_Iallgatherv");
  }
  check(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, p->a.data(), p->b.data(), MPI_FLOAT,
                        stream_comm(&streams_[stream & 1]), &p->request),
        "MPI_Iallgatherv");
  const Request id = next_++;
  pending_[id] = std::move(p);
  return id;
}

bool MpiCommunicator::test(Request request) {
  auto it = pending_.find(request);
  if (it == pending_.end()) return true;
  int done = 0;
  check(MPI_Test(&it->second->request, &done, MPI_STATUS_IGNORE), "MPI_Test");
  if (done) pending_.erase(it);
  return done != 0;
}

void MpiCommunicator::wait(Request request) {
  auto it = pending_.find(request);
  if (it == pending_.end()) return;
  check(MPI_Wait(&it->second->request, MPI_STATUS_IGNORE), "MPI_Wait");
  pending_.erase(it);
}

void MpiCommunicator::barrier() {
  check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

void MpiCommunicator::abort(int exit_code) {
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);  // MPI_Abort does not return; if it did, this process still ends
}

void MpiCommunicator::finalize() {
  if (finalized_) return;
  finalized_ = true;
  int done = 0;
  MPI_Finalized(&done);
  if (done) return;
  for (void*& c : streams_)
    if (c) {
      MPI_Comm_free(static_cast<MPI_Comm*>(c));
      delete static_cast<MPI_Comm*>(c);
      c = nullptr;
    }
  MPI_Finalize();
}

}  // namespace bertfit::dist

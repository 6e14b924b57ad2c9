// One thread pool for everything: OpenMP (libgomp). OpenBLAS is linked in its OpenMP build, so its sgemm
// uses the same pool, and an sgemm called inside one of our `omp parallel` regions runs single-threaded in
// the calling thread (used for per-head attention products). Never two pools spinning on the same cores.
#pragma once

namespace bertfit {

// Sets the thread count for our kernels and for OpenBLAS. n <= 0: all cores.
void set_num_threads(int n);
int num_threads();
// "OpenBLAS 0.3.21 ... USE_OPENMP ..." as the library reports itself (to prove which BLAS is linked).
const char* blas_config();

}  // namespace bertfit

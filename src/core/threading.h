// One thread pool for everything: OpenMP (libgomp). Our gemm() uses it, and runs single-threaded in the
// calling thread when called inside one of our `omp parallel` regions. OpenBLAS (gemm_openblas, the tests'
// reference and BERTFIT_GEMM=openblas) is linked in its OpenMP build, so it follows the same rules with the
// same pool. Never two pools spinning on the same cores.
#pragma once

#include <cstdint>

namespace bertfit {

// Below this many elements of work a kernel runs serially: forking and joining a parallel region costs
// 5-20 us (more when the cores are shared), more than 32k elementwise operations take. Tiny models (tests,
// the small shapes of the heads) would otherwise spend most of their time in OpenMP.
constexpr int64_t kParallelMinWork = 32768;

// Sets the thread count for our kernels and for OpenBLAS. n <= 0: all cores.
void set_num_threads(int n);
int num_threads();
// "OpenBLAS 0.3.21 ... USE_OPENMP ..." as the library reports itself (to prove which BLAS is linked).
const char* blas_config();

}  // namespace bertfit

// `bertfit info`: what this build is and what it can do so far (BLAS, threads, commands).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "backend/cpu/gemm_bf16.h"
#include "backend/cpu/gemm_int8.h"
#include "cli/commands.h"
#include "core/aligned_buffer.h"
#include "core/cpu_features.h"
#include "core/threading.h"
#include "core/wait_policy.h"

namespace bertfit::cli {

void add_info_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Print the build's configuration: BLAS, threads, ISA");
  cmd->callback([] {
    std::printf("bertfit 0.1.0\n");
    std::printf("BLAS:    %s\n", blas_config());
    std::printf("threads: %d (bertfit's pool; OMP_NUM_THREADS or --threads to change)\n", num_threads());
    std::printf("waiting: %s (BERTFIT_WAIT_POLICY, BERTFIT_SPIN_US; docs/architecture.md)\n",
                wait_policy_description());
    // OpenBLAS (BERTFIT_GEMM=openblas only) runs on libgomp's threads, which wait as OMP_WAIT_POLICY says
    // (main.cpp sets PASSIVE unless the user set it or GOMP_SPINCOUNT).
    std::string gomp;
    if (const char* policy = std::getenv("OMP_WAIT_POLICY")) gomp = std::string("OMP_WAIT_POLICY=") + policy;
    if (const char* spin = std::getenv("GOMP_SPINCOUNT"))
      gomp += (gomp.empty() ? "" : ", ") + std::string("GOMP_SPINCOUNT=") + spin;
    if (gomp.empty()) gomp = "libgomp's default (spin, then sleep)";
    std::printf("OpenBLAS waiting: %s (libgomp's threads; BERTFIT_GEMM=openblas only)\n", gomp.c_str());
#if defined(__AVX2__) && defined(__FMA__)
    // The build's baseline, and what the kernels dispatch to at run time (core/cpu_features.h).
    std::printf("ISA:     AVX2 + FMA (build baseline); AVX-512 kernels %s\n",
                use_avx512() ? "in use (BERTFIT_MAX_ISA=avx2 turns them off)"
                             : "not in use (no AVX-512 F/DQ/VL/BW, or BERTFIT_MAX_ISA=avx2)");
#else
    std::printf("ISA:     generic\n");
#endif
    // The low-precision paths (run-time dispatch, as the AVX-512 kernels; docs/quantization.md).
    std::printf("bf16:    %s (--bf16 training)\n", gemm_bf16_path());
    std::printf("int8:    %s (bertfit quantize models)\n", gemm_int8_path());
    std::printf("memory:  %s\n", huge_pages_description().c_str());
  });
}

}  // namespace bertfit::cli

// `bertfit info`: what this build is and what it can do so far (BLAS, threads, commands).
#include <cstdio>

#include "cli/commands.h"
#include "core/threading.h"

namespace bertfit::cli {

void add_info_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Print the build's configuration: BLAS, threads, ISA");
  cmd->callback([] {
    std::printf("bertfit 0.1.0\n");
    std::printf("BLAS:    %s\n", blas_config());
    std::printf("threads: %d (OpenMP; OMP_NUM_THREADS or --threads to change)\n", num_threads());
#if defined(__AVX2__) && defined(__FMA__)
    std::printf("ISA:     AVX2 + FMA\n");
#else
    std::printf("ISA:     generic\n");
#endif
  });
}

}  // namespace bertfit::cli

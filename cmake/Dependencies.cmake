# Every dependency is a Debian package installed by scripts/setup.sh.

# OpenBLAS by name, OpenMP flavour. The base image's reference BLAS ships cblas.h and links too, about 20x
# slower, so we never search generically: we take Debian's openblas-openmp directory and fail otherwise.
# The OpenMP flavour matters: an sgemm called inside one of our `omp parallel` regions runs single-threaded
# in the caller's thread, and there is one libgomp pool for BLAS and our kernels (no two pools fighting).
find_library(OPENBLAS_LIBRARY NAMES openblas
  PATHS /usr/lib/x86_64-linux-gnu/openblas-openmp /usr/lib/aarch64-linux-gnu/openblas-openmp
  NO_DEFAULT_PATH)
find_path(OPENBLAS_INCLUDE_DIR cblas.h
  PATHS /usr/include/x86_64-linux-gnu/openblas-openmp /usr/include/aarch64-linux-gnu/openblas-openmp
  NO_DEFAULT_PATH)
if(NOT OPENBLAS_LIBRARY OR NOT OPENBLAS_INCLUDE_DIR)
  message(FATAL_ERROR "OpenBLAS (OpenMP build) not found: run scripts/setup.sh (apt-get install libopenblas-openmp-dev)")
endif()
add_library(openblas::openblas UNKNOWN IMPORTED)
set_target_properties(openblas::openblas PROPERTIES
  IMPORTED_LOCATION ${OPENBLAS_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${OPENBLAS_INCLUDE_DIR})
message(STATUS "BLAS: ${OPENBLAS_LIBRARY}")

find_package(OpenMP REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Threads REQUIRED)
find_package(ZLIB REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(ONIG IMPORTED_TARGET oniguruma)
find_package(ICU COMPONENTS uc i18n data)
if(BERTFIT_TESTS)
  find_package(GTest REQUIRED)
endif()

# Open MPI (libopenmpi-dev) for data-parallel training, optional: found -> BERTFIT_WITH_MPI and
# `mpirun -np N bertfit finetune|pretrain`; not found (or -DBERTFIT_MPI=OFF) -> the same program, one process.
option(BERTFIT_MPI "Data-parallel training with MPI when an MPI library is found" ON)
set(BERTFIT_WITH_MPI OFF)
if(BERTFIT_MPI)
  find_package(MPI COMPONENTS C QUIET)
  if(MPI_C_FOUND)
    set(BERTFIT_WITH_MPI ON)
    message(STATUS "MPI: ${MPI_C_LIBRARIES} (data-parallel training with mpirun)")
  else()
    message(STATUS "MPI: not found, data-parallel training off (apt-get install libopenmpi-dev openmpi-bin)")
  endif()
endif()
find_program(MPIRUN_EXECUTABLE NAMES mpirun)

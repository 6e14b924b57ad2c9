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

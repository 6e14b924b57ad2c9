# `cmake --install`: the C++ API (include/bertfit/) as one static archive, libbertfit.a (every area library's
# objects, so users link one file), with a CMake package (find_package(bertfit) -> bertfit::bertfit) and a
# pkg-config file (bertfit.pc), plus the bertfit command. Both describe the system libraries the archive
# needs: OpenBLAS (the OpenMP build, by path), OpenMP, ICU, Oniguruma, zlib, threads.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(_bertfit_archive_areas core backend kernels model io tokenizer data train api)
set(_bertfit_objects $<TARGET_OBJECTS:bertfit_dist_single>)  # dist without MPI (src/dist/CMakeLists.txt)
foreach(area ${_bertfit_archive_areas})
  list(APPEND _bertfit_objects $<TARGET_OBJECTS:bertfit_${area}>)
endforeach()
add_library(bertfit_archive STATIC ${_bertfit_objects})
set_target_properties(bertfit_archive PROPERTIES OUTPUT_NAME bertfit LINKER_LANGUAGE CXX)

install(TARGETS bertfit_archive ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS bertfit RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/bertfit DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")

set(BERTFIT_OPENBLAS_LIBRARY ${OPENBLAS_LIBRARY})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/bertfitConfig.cmake.in
  ${PROJECT_BINARY_DIR}/bertfitConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/bertfit)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/bertfitConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/bertfitConfig.cmake ${PROJECT_BINARY_DIR}/bertfitConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/bertfit)
# The .pc file finds the prefix from where it lies (relocatable): "../.." from lib/pkgconfig, "../../.." from
# Debian's lib/x86_64-linux-gnu/pkgconfig (GNUInstallDirs' libdir with the prefix /usr); an absolute libdir
# gets the absolute prefix.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(BERTFIT_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _pc_up "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
  string(REGEX REPLACE "/$" "" _pc_up "${_pc_up}")
  set(BERTFIT_PC_PREFIX "\${pcfiledir}/${_pc_up}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/bertfit.pc.in ${PROJECT_BINARY_DIR}/bertfit.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/bertfit.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# Classify benchmark driver (bench/classify_bench.sh also builds it directly).
# Include from bench/CMakeLists.txt: include(${CMAKE_CURRENT_LIST_DIR}/classify.cmake)
add_executable(dlc_classify_engines ${CMAKE_CURRENT_LIST_DIR}/classify_engines.cpp)
target_link_libraries(dlc_classify_engines PRIVATE dlc_classify)
pkg_check_modules(HYPERSCAN IMPORTED_TARGET libhs)
if(HYPERSCAN_FOUND)  # libhyperscan-dev: only to compare engines, dlc does not use it
  target_compile_definitions(dlc_classify_engines PRIVATE DLC_HAVE_HYPERSCAN)
  target_link_libraries(dlc_classify_engines PRIVATE PkgConfig::HYPERSCAN)
endif()

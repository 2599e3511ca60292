# Installs the built tapegrad into a fresh prefix, then builds and runs the consumer programs
# against it: with CMake (find_package), and with pkg-config the way a Makefile would
# (`pkg-config --cflags --libs tapegrad`, no --static) in C++17 and C++20, with and without
# file I/O; and a program of the core alone, which must link without the nn and io layers
# and without libzip and zlib. Also a parent project that adds tapegrad's sources with
# add_subdirectory (configured only). -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... -DCXX=...
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err
                  WORKING_DIRECTORY ${WORK_DIR})
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "failed: ${ARGN}\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()
# The core-only program: runs and finds the gradient.
function(check_core_output program)
  run(${program})
  message("${program}: ${last_output}")
  if(NOT last_output MATCHES "consumer_core: d/dx sum\\(x\\^2\\) at \\(1, 2, 3\\) = \\(2, 4, 6\\)")
    message(FATAL_ERROR "the core-only consumer did not find the gradient")
  endif()
endfunction()
function(check_output program standard)
  run(${program})
  message("${program}: ${last_output}")
  if(NOT program MATCHES "_io" AND NOT last_output MATCHES "\\(C\\+\\+${standard}\\)")
    message(FATAL_ERROR "built with -std=c++${standard} but compiled as another standard: "
                        "do the flags (pkg-config's Cflags?) override -std?")
  elseif(program MATCHES "_io" AND NOT last_output MATCHES "saved and loaded back equal")
    message(FATAL_ERROR "the model did not come back from its .npz file")
  elseif(NOT program MATCHES "_io" AND
         NOT last_output MATCHES "consumer \\(C\\+\\+${standard}\\): weight 3\\.0000[0-9]* bias -1\\.0000")
    message(FATAL_ERROR "the consumer did not learn y = 3x - 1 in C++${standard}")
  endif()
endfunction()
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)

# CMake: find_package(tapegrad CONFIG)
# (Makefiles, for the link command of each program in its link.txt.)
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build -G "Unix Makefiles"
    -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=${CXX})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
check_output(${WORK_DIR}/build/consumer 17)
check_output(${WORK_DIR}/build/consumer_io 17)
check_core_output(${WORK_DIR}/build/consumer_core)
# tapegrad::core brings the core's library and OpenBLAS, not the other layers nor libzip/zlib.
file(READ ${WORK_DIR}/build/CMakeFiles/consumer_core.dir/link.txt core_link)
message("consumer_core links: ${core_link}")
if(NOT core_link MATCHES "libtapegrad_core\\.a|libtapegrad_core\\.so" OR NOT core_link MATCHES "openblas")
  message(FATAL_ERROR "consumer_core's link lacks the core library or OpenBLAS: ${core_link}")
endif()
if(core_link MATCHES "tapegrad_nn|tapegrad_io|zip|libz\\.|-lz( |$)")
  message(FATAL_ERROR "consumer_core links more than tapegrad::core needs: ${core_link}")
endif()
# And by hand: the core library and OpenBLAS are all it needs.
run(${CXX} -std=c++17 ${SOURCE_DIR}/core.cpp -o ${WORK_DIR}/core_by_hand -I${WORK_DIR}/prefix/include
    -L${WORK_DIR}/prefix/lib -ltapegrad_core -lopenblas)
check_core_output(${WORK_DIR}/core_by_hand)

# pkg-config, without --static, whatever the library's kind (static by default)
set(ENV{PKG_CONFIG_PATH} ${WORK_DIR}/prefix/lib/pkgconfig)
execute_process(COMMAND pkg-config --cflags --libs tapegrad OUTPUT_VARIABLE flags
                RESULT_VARIABLE status OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "pkg-config does not find tapegrad")
endif()
message("pkg-config --cflags --libs tapegrad: ${flags}")
separate_arguments(flags UNIX_COMMAND "${flags}")
foreach(standard 17 20)
  foreach(source main io)
    set(program ${WORK_DIR}/pkgconfig_cxx${standard}_${source})
    # The user's -std comes first, as in `$(CXX) $(CXXFLAGS) ... $(pkg-config ...)`: the .pc
    # file must not override it.
    run(${CXX} -std=c++${standard} ${SOURCE_DIR}/${source}.cpp -o ${program} ${flags})
    check_output(${program} ${standard})
  endforeach()
endforeach()

# add_subdirectory: tapegrad's tests, demos and benchmarks off by default (subproject/).
get_filename_component(tapegrad_source ${SOURCE_DIR}/../.. ABSOLUTE)
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/subproject -B ${WORK_DIR}/subproject
    -DTAPEGRAD_SOURCE_DIR=${tapegrad_source} -DCMAKE_CXX_COMPILER=${CXX})
message("a parent project that adds tapegrad with add_subdirectory configures without tapegrad's tests")

# Installs the built tapegrad into a fresh prefix, then builds and runs the consumer programs
# against it: with CMake (find_package), and with pkg-config the way a Makefile would
# (`pkg-config --cflags --libs tapegrad`, no --static) in C++17 and C++20, with and without
# file I/O. -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... -DCXX=...
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
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=${CXX})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
check_output(${WORK_DIR}/build/consumer 17)
check_output(${WORK_DIR}/build/consumer_io 17)

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

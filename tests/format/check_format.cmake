# Every tracked C++ file is formatted by the project's .clang-format: any difference fails,
# naming the file and line (clang-format's own warning).
# -DCLANG_FORMAT=... -DGIT=... -DSOURCE_DIR=...
execute_process(COMMAND ${GIT} -C ${SOURCE_DIR} ls-files -- *.cpp *.hpp *.h *.cc
                OUTPUT_VARIABLE files RESULT_VARIABLE git_failed ERROR_VARIABLE git_error)
if(git_failed)
  message(FATAL_ERROR "format: 'git ls-files' failed in ${SOURCE_DIR}: ${git_error}")
endif()
string(REGEX REPLACE "\n$" "" files "${files}")
string(REPLACE "\n" ";" files "${files}")
list(LENGTH files count)
if(count EQUAL 0)
  message(FATAL_ERROR "format: no C++ files tracked in ${SOURCE_DIR}")
endif()
execute_process(COMMAND ${CLANG_FORMAT} --dry-run --Werror ${files}
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE differs ERROR_VARIABLE report)
if(differs)
  message(FATAL_ERROR "${report}\nformat: files above differ from .clang-format; "
                      "run: git ls-files '*.cpp' '*.hpp' | xargs ${CLANG_FORMAT} -i")
endif()
message(STATUS "format: ${count} files clean")

# Compiles compile_fail/misuse.cpp once per case: case 0 must compile, every other case must
# fail with its expected message. -DCXX=... -DINCLUDE_DIR=... -DSOURCE=...
cmake_policy(SET CMP0007 NEW)  # keep the empty pattern of case 0
set(expected
  "" # case 0 compiles
  "backward\\(\\) takes no bool or number"
  "backward\\(\\) takes no bool or number"
  "backward\\(\\) takes no bool or number"
  "backward\\(\\) takes no bool or number"
  "backward\\(\\) takes no bool or number"
  "is private within this context")
list(LENGTH expected count)
math(EXPR last "${count} - 1")
foreach(case RANGE ${last})
  list(GET expected ${case} pattern)
  execute_process(COMMAND ${CXX} -std=c++17 -fsyntax-only -DCASE=${case} -I${INCLUDE_DIR} ${SOURCE}
                  RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(case EQUAL 0)
    if(NOT status EQUAL 0)
      message(FATAL_ERROR "case 0 (correct use) does not compile:\n${err}")
    endif()
  elseif(status EQUAL 0)
    message(FATAL_ERROR "case ${case} compiles but must not")
  elseif(NOT err MATCHES "${pattern}")
    message(FATAL_ERROR "case ${case} fails without the expected message '${pattern}':\n${err}")
  else()
    message(STATUS "case ${case}: refused as expected")
  endif()
endforeach()

# Runs a demo twice, with ARGS_A and with ARGS_B (';'-separated), and checks that the lines of
# output matching PATTERN are the same, and that there are some: e.g. an eager and a compiled
# run must print the same losses and accuracies. Variables (-D): PROGRAM ARGS_A ARGS_B PATTERN,
# and MASK (optional): a regular expression whose matches are replaced by '#' in both outputs
# before the lines are taken (a column of times in a table of results).
foreach(run A B)
  execute_process(COMMAND ${PROGRAM} ${ARGS_${run}} OUTPUT_VARIABLE output ERROR_VARIABLE errors
                  RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "${PROGRAM} ${ARGS_${run}} exited with ${status}: ${errors}")
  endif()
  if(MASK)
    string(REGEX REPLACE "${MASK}" "#" output "${output}")
  endif()
  string(REGEX MATCHALL "${PATTERN}[^\n]*" lines_${run} "${output}")
endforeach()
message("${lines_A}")
if(NOT lines_A)
  message(FATAL_ERROR "no line matches ${PATTERN}")
endif()
if(NOT lines_A STREQUAL lines_B)
  message(FATAL_ERROR "the runs differ:\n${lines_A}\nagainst\n${lines_B}")
endif()

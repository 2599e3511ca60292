# Runs a demo on bad input and checks that it refuses it: a non-zero exit status (not a
# crash: no signal, no abort), and stderr matching EXPECT. Variables (-D):
#   PROGRAM   the demo's path;  ARGS  its arguments, separated by ';'
#   EXPECT    a regular expression its stderr must match (optional)
#   OUTPUT    a regular expression its stdout must match (optional)
#   WRITE     a file to write before the run (optional), with
#   CONTENT   its lines, separated by '|'
#   MAKE_DIRECTORY  a directory to create before the run (optional)
if(WRITE)
  string(REPLACE "|" "\n" text "${CONTENT}")
  file(WRITE "${WRITE}" "${text}\n")
endif()
if(MAKE_DIRECTORY)
  file(MAKE_DIRECTORY "${MAKE_DIRECTORY}")
endif()
execute_process(COMMAND ${PROGRAM} ${ARGS} OUTPUT_VARIABLE output ERROR_VARIABLE errors
                RESULT_VARIABLE status)
message("exit status: ${status}\nstderr: ${errors}")
if(NOT status MATCHES "^[0-9]+$")
  message(FATAL_ERROR "${PROGRAM} crashed (${status}) instead of refusing the input")
endif()
if(status EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} exited with 0 on bad input; stdout:\n${output}")
endif()
if(EXPECT AND NOT errors MATCHES "${EXPECT}")
  message(FATAL_ERROR "stderr does not match: ${EXPECT}")
endif()
if(OUTPUT AND NOT output MATCHES "${OUTPUT}")
  message(FATAL_ERROR "stdout does not match: ${OUTPUT}\n${output}")
endif()

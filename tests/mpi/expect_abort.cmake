# A rank that throws must end the whole job: non-zero status, a message naming the rank and
# the error, within 30 s (a hang is a failure, not a wait).
#   -DMPIRUN=mpirun.sh -DMPIEXEC=... -DPROGRAM=... -DARGS=a;b -DEXPECT=regex
execute_process(COMMAND sh ${MPIRUN} ${MPIEXEC} 2 ${PROGRAM} ${ARGS}
                TIMEOUT 30 RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("status: ${status}\n--- output ---\n${out}\n--- errors ---\n${err}")
if(status MATCHES "timeout|Process terminated due to timeout")
  message(FATAL_ERROR "the job did not end within 30 s: ${status}")
endif()
if(status EQUAL 0)
  message(FATAL_ERROR "the job ended with status 0; expected a failure")
endif()
if(NOT "${out}${err}" MATCHES "${EXPECT}")
  message(FATAL_ERROR "no message matching '${EXPECT}'")
endif()

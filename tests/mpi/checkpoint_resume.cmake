# A data-parallel run on 2 ranks stopped after a checkpoint and resumed in a new job ends, on
# every rank, with the parameters, dropout stream and sampler state of the uninterrupted run,
# bit for bit: once resumed in the middle of an epoch, once at an epoch's end.
#   -DMPIRUN=mpirun.sh -DMPIEXEC=... -DPROGRAM=checkpoint_checks -DWORK=folder
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})

# One job of PROGRAM under mpirun -np 2; its output in job_output.
function(job)
  execute_process(COMMAND sh ${MPIRUN} ${MPIEXEC} 2 ${PROGRAM} --work ${WORK} ${ARGN}
                  TIMEOUT 120 RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT status EQUAL 0 OR NOT out MATCHES "all checks passed on 2 ranks")
    message(FATAL_ERROR "job ${ARGN}: status ${status}\n--- output ---\n${out}\n--- errors ---\n${err}")
  endif()
  set(job_output "${out}" PARENT_SCOPE)
endfunction()

# The files NAME_rank0.bin and NAME_rank1.bin must equal uninterrupted_rankR.bin (SAME) or not.
function(compare name same)
  foreach(rank 0 1)
    execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${WORK}/uninterrupted_rank${rank}.bin
                            ${WORK}/${name}_rank${rank}.bin RESULT_VARIABLE differ)
    if(same AND NOT differ EQUAL 0)
      message(FATAL_ERROR "rank ${rank}: ${name} differs from the uninterrupted run")
    elseif(NOT same AND differ EQUAL 0)
      message(FATAL_ERROR "rank ${rank}: ${name} equals the uninterrupted run (the comparison cannot fail)")
    endif()
  endforeach()
endfunction()

job(--out uninterrupted)
# Checkpoints after steps 5 and 10 (epoch 1, step 3 of 7), a clean stop after step 13.
job(--out stopped --every 5 --stop-after 13)
compare(stopped FALSE)
job(--out resumed --resume)
if(NOT job_output MATCHES "resumed at epoch 1, step 3\n")
  message(FATAL_ERROR "expected a resume at epoch 1, step 3:\n${job_output}")
endif()
compare(resumed TRUE)

# A checkpoint after the last step of epoch 0 (step 7), a stop after step 9.
file(REMOVE ${WORK}/run.ckpt)
job(--out stopped_at_end --every 7 --stop-after 9)
job(--out resumed_at_end --resume)
if(NOT job_output MATCHES "resumed at epoch 0, step 7\n")
  message(FATAL_ERROR "expected a resume at epoch 0, step 7:\n${job_output}")
endif()
compare(resumed_at_end TRUE)
message("PASS: both resumed runs end bit for bit as the uninterrupted run, on both ranks")

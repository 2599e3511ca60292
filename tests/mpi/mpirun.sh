#!/bin/sh
# mpirun for the tests: mpirun.sh MPIEXEC NP PROGRAM [ARGS...]
# --oversubscribe: more ranks than cores is fine (CI machines have 2). --allow-run-as-root only
# when the tests do run as root (as in CI containers): Open MPI refuses root without it.
mpiexec="$1"
np="$2"
shift 2
if [ "$(id -u)" = 0 ]; then
  exec "$mpiexec" --allow-run-as-root --oversubscribe -np "$np" "$@"
fi
exec "$mpiexec" --oversubscribe -np "$np" "$@"

#!/usr/bin/env bash
# Run one dnajax verb as N local processes joined by jax.distributed on 127.0.0.1 (CPU devices).
#
# Needs: dnajax ($DNAJAX, else ./.venv/bin/dnajax, else dnajax on PATH); a free TCP port (default 12355).
# Usage:  launch/local_multiprocess.sh N [--devices-per-process K] [--port P] VERB ARGS...
# e.g.    launch/local_multiprocess.sh 2 --devices-per-process 4 train --config configs/tiny.py --workdir runs/mp
# Every process runs the same command; process 0 writes logs and metrics; checkpoints are saved by all together.
set -euo pipefail
usage() {  # one line on what is wrong, then the usage lines of this header; exit 2
  echo "local_multiprocess.sh: $1" >&2
  sed -n '5,6p' "$0" >&2
  exit 2
}
positive() {  # positive NAME VALUE: VALUE is an integer >= 1 (and a port at most 65535), else usage and exit 2
  [[ "$2" =~ ^[0-9]{1,9}$ ]] && [ "$((10#$2))" -ge 1 ] || usage "$1 '$2' is not a positive integer"
  if [ "$1" = "--port" ] && [ "$((10#$2))" -gt 65535 ]; then usage "--port '$2' is above 65535"; fi
}
if [ $# -lt 2 ]; then usage "expected a process count N, then a dnajax verb and its arguments"; fi
n=$1; shift
positive "the process count N" "$n"
n=$((10#$n))
devices=1; port=12355
while [ $# -gt 0 ]; do
  case "$1" in
    --devices-per-process|--port)
      [ $# -ge 2 ] || usage "$1 needs a value"
      positive "$1" "$2"
      if [ "$1" = "--port" ]; then port=$((10#$2)); else devices=$((10#$2)); fi
      shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || usage "no dnajax verb given after the options"
verb=$1; shift
here=$(cd "$(dirname "$0")/.." && pwd)
# The dnajax to run: $DNAJAX, else the checkout's .venv, else dnajax on PATH.
if [ -n "${DNAJAX:-}" ]; then dnajax=$DNAJAX
elif [ -x "$here/.venv/bin/dnajax" ]; then dnajax=$here/.venv/bin/dnajax
elif command -v dnajax >/dev/null 2>&1; then dnajax=$(command -v dnajax)
else echo "local_multiprocess.sh: no dnajax found; set DNAJAX, run make install, or put dnajax on PATH" >&2; exit 2
fi
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' INT TERM
for ((i = 0; i < n; i++)); do
  XLA_FLAGS="--xla_force_host_platform_device_count=$devices ${XLA_FLAGS:-}" JAX_PLATFORMS=cpu \
    "$dnajax" "$verb" "$@" --coordinator "127.0.0.1:$port" --num-processes "$n" --process-id "$i" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
exit $status

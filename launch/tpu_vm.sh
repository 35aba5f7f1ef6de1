#!/usr/bin/env bash
# Run dnajax on a Cloud TPU VM slice: create the slice (or reuse it), copy this checkout to every worker, install
# dnajax with jax[tpu], and run the same CLI on all workers at once (--worker=all). JAX finds the other hosts by
# itself on a TPU slice, so no coordinator flags are needed.
#
# Needs: gcloud, authenticated, with TPU quota in ZONE; a gs:// bucket for checkpoints; the training corpus
# prepared beforehand (`dnajax prepare`) and uploaded to gs:// (--corpus): it is copied to the local disk of every
# worker (/tmp/dnajax-corpus) and read from there.
#
# Usage:
#   launch/tpu_vm.sh --name NAME --zone ZONE --type v5litepod-16 --bucket gs://BUCKET/RUN \
#       [--version v2-alpha-tpuv5-lite] [--corpus gs://BUCKET/corpus] -- train --config configs/base.py [--config.x=y ...]
# Checkpoints go to gs://BUCKET/RUN/checkpoints (orbax writes there from all hosts); the workdir (config.json,
# metrics.jsonl, tensorboard/) lives on each host's /tmp/dnajax-run and is copied to gs://BUCKET/RUN at the end.
set -euo pipefail
usage() { sed -n '2,15p' "$0" >&2; exit 2; }
name= zone= type= bucket= version=v2-alpha-tpuv5-lite corpus=
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name=$2; shift 2 ;;
    --zone) zone=$2; shift 2 ;;
    --type) type=$2; shift 2 ;;
    --bucket) bucket=${2%/}; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --corpus) corpus=${2%/}; shift 2 ;;
    --) shift; break ;;
    *) usage ;;
  esac
done
[ -n "$name" ] && [ -n "$zone" ] && [ -n "$type" ] && [ -n "$bucket" ] && [ $# -ge 1 ] || usage
command -v gcloud >/dev/null || { echo "tpu_vm.sh: gcloud not found; install the Google Cloud SDK" >&2; exit 2; }
verb=$1; shift

tpu=(gcloud compute tpus tpu-vm)
if ! "${tpu[@]}" describe "$name" --zone "$zone" >/dev/null 2>&1; then
  "${tpu[@]}" create "$name" --zone "$zone" --accelerator-type "$type" --version "$version"
fi

# Ship this checkout (tracked files) to every worker.
here=$(cd "$(dirname "$0")/.." && pwd)
archive=$(mktemp /tmp/dnajax-src.XXXXXX.tar.gz)
git -C "$here" archive --format=tar.gz -o "$archive" HEAD
"${tpu[@]}" scp "$archive" "$name:/tmp/dnajax-src.tar.gz" --zone "$zone" --worker=all
rm -f "$archive"

data_args=()
fetch_corpus=true
if [ -n "$corpus" ]; then
  fetch_corpus="mkdir -p /tmp/dnajax-corpus && gsutil -m rsync -r $corpus /tmp/dnajax-corpus"
  data_args=(--data /tmp/dnajax-corpus)
fi
ckpt_arg=
[ "$verb" = train ] && ckpt_arg="--config.ckpt.dir=$bucket/checkpoints"
args=$(printf ' %q' "$@" "${data_args[@]}")
remote="set -e
mkdir -p ~/dnajax && tar -xzf /tmp/dnajax-src.tar.gz -C ~/dnajax && cd ~/dnajax
[ -x .venv/bin/dnajax ] || { python3 -m venv .venv && .venv/bin/pip install -q -e . 'jax[tpu]'; }
$fetch_corpus
.venv/bin/dnajax $verb --workdir /tmp/dnajax-run $ckpt_arg$args
gsutil -m rsync -r -x 'corpus/.*|checkpoints/.*' /tmp/dnajax-run $bucket || true"
"${tpu[@]}" ssh "$name" --zone "$zone" --worker=all --command "$remote"

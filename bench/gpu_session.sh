#!/usr/bin/env bash
# One GPU session (docs/PERF.md): run on the lent machine from the repo root, with .gpu (the bundle
# of shared/gpu/make-bundle.sh plus fi-cache.tar.xz, flashinfer's JIT build) and .whl (rich,
# pytest) carried. Writes logs and JSON to ${OUT:-gpu-out}. Each step has its own time limit.
set -u
out=${OUT:-gpu-out}; mkdir -p "$out"
source .gpu/install.sh
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
export FLASHINFER_WORKSPACE_BASE=/tmp/fic PYTHONPATH=$PWD:$PYTHONPATH
if [ -f .gpu/fi-cache.tar.xz ] && [ ! -d /tmp/fic ]; then
  tar -xJf .gpu/fi-cache.tar.xz -C /tmp && find /tmp/fic -type f -exec touch {} +  # newer than the sources
fi
nvidia-smi -L
step() { local limit=$1 name=$2; shift 2; echo "== $name ($(date +%T), limit ${limit}s)";
  timeout "$limit" "$@" > "$out/$name.log" 2>&1; echo "== $name rc=$? ($(date +%T))"; tail -5 "$out/$name.log"; }
step "${SWEEP_S:-240}" sweep python -m actors.run --sweep small --device gpu --worlds 2,4 --table summary
step "${COMM_S:-150}" gpu_comm python bench/gpu_comm.py --world 2 4 --out "$out/gpu_comm.json"
step "${MOE_S:-120}" moe_step python bench/moe_step.py --world 2 4 --tokens 64 8192 --out "$out/moe_step.json"
step "${PYTEST_S:-60}" pytest python -m pytest -q -p no:cacheprovider -m gpu tests/actors/test_gpu.py

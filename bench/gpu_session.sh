#!/usr/bin/env bash
# One GPU session (docs/PERF.md): run on the lent machine from the repo root, with .gpu (the bundle
# of shared/gpu/make-bundle.sh plus fi-cache.tar.xz, flashinfer's JIT build) and .whl (rich,
# pytest) carried. Writes logs and JSON to ${OUT:-gpu-out}. Each step has its own time limit.
# STEPS picks steps (default: all, in order): probe sweep2 sweep4 gpu_comm moe_step pytest
# .whl, once: echo /.whl/ >> .git/info/exclude; python3 -m pip download --no-deps --only-binary=:all:
#   --python-version 3.12 --implementation cp --platform manylinux2014_x86_64 -d .whl rich markdown-it-py
#   mdurl pygments pytest pluggy iniconfig packaging pytest-timeout
set -u
out=${OUT:-gpu-out}; mkdir -p "$out"
source .gpu/install.sh
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl 2>/dev/null
export FLASHINFER_WORKSPACE_BASE=/tmp/fic PYTHONPATH=$PWD:$PYTHONPATH
if [ -f .gpu/fi-cache.tar.xz ]; then
  # NOTE: flashinfer trusts only an AOT artifact without running ninja (which rebuilds a carried JIT
  # cache, ~7 minutes): install the .so built by an earlier session as the AOT module.
  mkdir -p /tmp/fi-carried && tar -xJf .gpu/fi-cache.tar.xz -C /tmp/fi-carried
  for so in $(find /tmp/fi-carried -name '*.so'); do
    name=$(basename "$so" .so); mkdir -p "/tmp/site/flashinfer/data/aot/$name"; cp "$so" "/tmp/site/flashinfer/data/aot/$name/"
  done
fi
nvidia-smi -L
ngpu=$(nvidia-smi -L | grep -c '^GPU')
worlds=2; [ "$ngpu" -ge 4 ] && worlds="2 4"   # steps for 4 GPUs are skipped on a 2-GPU machine
step() { local limit=$1 name=$2; shift 2; echo "== $name ($(date +%T), limit ${limit}s)";
  timeout "$limit" "$@" > "$out/$name.log" 2>&1; local rc=$?; echo "== $name rc=$rc ($(date +%T))";
  tail -"${TAIL:-6}" "$out/$name.log"; return $rc; }
want() { [[ " ${STEPS:-probe sweep2 sweep4 gpu_comm moe_step pytest} " == *" $1 "* ]]; }
# Without a carried build the probe compiles flashinfer first (~7 min): PROBE_S=540 STEPS=probe.
if want probe && ! step "${PROBE_S:-50}" probe python bench/fi_probe.py --world "${worlds##* }" --dtype bfloat16 float32 --stall $(( ${PROBE_S:-50} - 10 )); then
  export SUMONCE_FLASHINFER=0; echo "flashinfer's fused kernel failed its probe: the actors use the torch path"
fi
want sweep2 && step 100 sweep2 python -m sumonce.actors.run --sweep small --device gpu --worlds 2 --table summary --timeout 45
want sweep4 && [ "$ngpu" -ge 4 ] && step 100 sweep4 python -m sumonce.actors.run --sweep small --device gpu --worlds 4 --table summary --timeout 45
want gpu_comm && step 200 gpu_comm python bench/gpu_comm.py --world $worlds --stall 90 --out "$out/gpu_comm.json"
want moe_step && step 120 moe_step python bench/moe_step.py --world $worlds --tokens 64 8192 --out "$out/moe_step.json"
want pytest && step 60 pytest python -m pytest -q -p no:cacheprovider -m gpu tests/actors/test_gpu.py

# Keep a fresh flashinfer build for the next session: copy it into .gpu/ as fi-cache.tar.xz.
if [ ! -f .gpu/fi-cache.tar.xz ] && [ -n "$(find /tmp/fic -name '*.so' 2>/dev/null)" ]; then
  tar -C /tmp -cJf "$out/fi-cache.tar.xz" fic && echo "flashinfer build saved: $out/fi-cache.tar.xz"
fi

#!/usr/bin/env bash
# One GPU session (docs/PERF.md): run on the lent machine from the repo root, with .gpu (the bundle
# of shared/gpu/make-bundle.sh plus fi-cache.tar.xz, flashinfer's JIT build) carried, and .whl
# (rich, pytest) where the machine's image lacks them. Writes JSON to ${OUT:-gpu-out} and logs to
# $LOGS (default: the same folder; when it differs the logs are also packed into $OUT/logs.tar
# after each step, for a lender that returns few files). Each step has its own time limit.
# STEPS picks steps (default: all, in this order): probe gpu_comm moe_step sweep2 sweep4 nodes pytest forced
# (nodes: 2 simulated nodes x 2 GPUs, --nnodes 2, on a 4-GPU machine; docs/PERF.md "Across nodes")
# The fused step's table: gpu_comm calibrates one and writes it ($OUT/fused_table.json), moe_step
# is given that file, the sweeps and pytest calibrate in the actors and cache it (copied to
# $OUT/fused_cache.json).
# .whl, once: echo /.whl/ >> .git/info/exclude; python3 -m pip download --no-deps --only-binary=:all:
#   --python-version 3.12 --implementation cp --platform manylinux2014_x86_64 -d .whl rich markdown-it-py
#   mdurl pygments pytest pluggy iniconfig packaging pytest-timeout
set -u
out=${OUT:-gpu-out}; logs=${LOGS:-$out}; mkdir -p "$out" "$logs"
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
  timeout "$limit" "$@" > "$logs/$name.log" 2>&1; local rc=$?; echo "== $name rc=$rc ($(date +%T))";
  tail -"${TAIL:-6}" "$logs/$name.log"; [ "$logs" != "$out" ] && tar -cf "$out/logs.tar" -C "$logs" .; return $rc; }
want() { [[ " ${STEPS:-probe gpu_comm moe_step sweep2 sweep4 nodes pytest forced} " == *" $1 "* ]]; }
# Without a carried build the probe compiles flashinfer first (~7 min): PROBE_S=540 STEPS=probe.
if want probe && ! step "${PROBE_S:-50}" probe python bench/fi_probe.py --world "${worlds##* }" --dtype bfloat16 float32 --stall $(( ${PROBE_S:-50} - 10 )); then
  export SUMONCE_FLASHINFER=0; echo "flashinfer's fused kernel failed its probe: the actors use the torch path"
fi
given=(); [ -n "${GPU_COMM_TABLE:-}" ] && given=(--table "$GPU_COMM_TABLE")   # else it calibrates
want gpu_comm && step 240 gpu_comm python bench/gpu_comm.py --world $worlds --stall 120 --out "$out/gpu_comm.json" \
  --table-out "$out/fused_table.json" "${given[@]}"
table=(); [ -f "$out/fused_table.json" ] && table=(--table "$out/fused_table.json")
want moe_step && step 150 moe_step python bench/moe_step.py --world $worlds --tokens 64 8192 \
  --fused-tokens 64 512 2048 "${table[@]}" --out "$out/moe_step.json"
want sweep2 && step 100 sweep2 python -m sumonce.actors.run --sweep small --device gpu --worlds 2 --table summary --timeout 60
want sweep4 && [ "$ngpu" -ge 4 ] && step 100 sweep4 python -m sumonce.actors.run --sweep small --device gpu --worlds 4 --table summary --timeout 60
want nodes && [ "$ngpu" -ge 4 ] && step 300 nodes python -m sumonce.actors.run --sweep small --device gpu --nnodes 2 \
  --worlds 4 --simulate-nodes --table summary --timeout 60
cp ~/.cache/sumonce/fused/*.json "$out/fused_cache.json" 2>/dev/null  # the actors' calibrated table
want pytest && step 150 pytest python -m pytest -q -p no:cacheprovider -m gpu tests/actors/test_gpu.py
# Each variant the table may choose, forced through the sweeps by a table given as a file.
for v in twoshot unfused; do
  want forced && python bench/fused_force.py $v "$logs/force_$v.json" && for w in $worlds; do
    SUMONCE_FUSED_TABLE="$logs/force_$v.json" step 100 "forced_${v}_$w" python -m sumonce.actors.run --sweep small \
      --device gpu --worlds $w --table summary --timeout 60; done
done

# Keep a fresh flashinfer build for the next session: copy it into .gpu/ as fi-cache.tar.xz.
if [ ! -f .gpu/fi-cache.tar.xz ] && [ -n "$(find /tmp/fic -name '*.so' 2>/dev/null)" ]; then
  tar -C /tmp -cJf "$out/fi-cache.tar.xz" fic && echo "flashinfer build saved: $out/fi-cache.tar.xz"
fi

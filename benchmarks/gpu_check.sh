#!/usr/bin/env bash
# The GPU path, measured on one GPU (issue 19): under 8 minutes on one H200.
#   1. the machine's PyTorch (and any wheels carried in .whl/: the packages of settings.ini the machine lacks);
#   2. every model's paper preset, a few dozen steps at its paper input size, bf16 autocast + channels-last,
#      then again with torch.compile: loss finite and falling, images/s, share of the bf16 peak;
#   3. results in benchmarks/results/gpu.json and gpu_compile.json (copied to $OUT when set).
# Run from the repository root: bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} FORGELOC_ROOT=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
rc=0
timeout 240 $PY benchmarks/gpu_check.py --steps 40 --batch 16 --out benchmarks/results/gpu.json || rc=1
timeout 180 $PY benchmarks/gpu_check.py --steps 30 --batch 16 --compile --out benchmarks/results/gpu_compile.json || rc=1
[ -n "${OUT:-}" ] && cp benchmarks/results/gpu*.json "$OUT"/ 2>/dev/null
exit $rc

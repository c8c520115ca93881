#!/usr/bin/env bash
# The CUDA code path on a lent GPU, in under 8 minutes: the contract of every paradigm on the device under the
# trainer's autocast, then every paradigm trained 200 steps at the default shape with --dtype auto --compile.
# Writes gpu_check.json and gpu_check.md to $OUT (the device tool's folder) or else bench/results/.
#
# Installs nothing beyond the README's line. The device machines here have torch but no network and no fastcore: carry
# its wheel in .whl/ (see /work/.library/device/README.md); with the package installed (pip install -e .) nothing is needed.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-bench/results}
if ! python3 -c "import fastcore" 2>/dev/null; then
  ls .whl/*.whl >/dev/null 2>&1 || { echo "error: fastcore is missing and .whl/ holds no wheels to install it from"; exit 2; }
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 2
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "warning: no nvidia-smi"
timeout 470 python3 bench/gpu_check.py --out "$out" "$@" 2>&1 | tee "$out/gpu_check.log"

#!/usr/bin/env bash
# The interop run on the GPU machine, in one call: installs the carried wheels (.whl/), converts
# the tiny fixture with every recipe using the carried dsv4-quant (build/, .devlibs/), reads the
# artifacts with safetensors / compressed-tensors / transformers (artifact_check.py), and checks
# the packers against compressed-tensors (ct_check.py on build/interop-vectors).
# Device call: carry [".whl", "build", ".devlibs"]; command: bash tests/interop/run_device.sh $OUT/interop.log
# (BUILD=DIR: binaries and interop-vectors from DIR instead of build/)
set -uo pipefail
cd "$(dirname "$0")/../.."
log="${1:-/dev/null}"
B="${BUILD:-build}"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site || exit 1
export LD_LIBRARY_PATH="$PWD/.devlibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" PYTHONUNBUFFERED=1
{
  echo "# dsv4 interop run"
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null)"
  python3 -c 'import torch, safetensors, transformers, compressed_tensors as ct; print("torch", torch.__version__, "| safetensors", safetensors.__version__, "| transformers", transformers.__version__, "| compressed-tensors", ct.__version__)'
  echo "command: bash tests/interop/run_device.sh"
  echo
  echo "## dsv4-quant artifacts read by the real libraries"
  rm -rf /tmp/art && mkdir -p /tmp/art
  for r in w4a16 w4a16-rtn w4a8 w4a8-rtn nvfp4 nvfp4-gptq fp8 bf16; do
    "$B/bin/dsv4-quant" --quiet --recipe "recipes/$r.yaml" fixtures/dsv4-tiny "/tmp/art/$r" || echo "FAIL dsv4-quant $r"
  done
  python3 tests/interop/artifact_check.py /tmp/art/*
  echo
  echo "## packers vs compressed-tensors"
  python3 tests/interop/ct_check.py "$B/interop-vectors"
} 2>&1 | tee "$log"

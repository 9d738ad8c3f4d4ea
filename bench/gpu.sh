#!/usr/bin/env bash
# GPU run, on the lent device machine: the CUDA-vs-CPU kernel tests and the GPU benchmarks, with
# the date and the device at the top of the log. The binaries are built on the development
# machine (`make`, nvcc present) and carried with their few shared libraries (bench/devlibs.sh),
# because the device machine has no Debian packages and no network.
#   bench/gpu.sh [LOG]      (LOG defaults to stdout only)
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD="${BUILD:-build}"
export LD_LIBRARY_PATH="$PWD/.devlibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
log="${1:-/dev/null}"
{
  echo "# dsv4 GPU run"
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "device: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null)"
  echo "cpu threads: $(nproc)"
  echo "command: bench/gpu.sh"
  echo
  echo "## CUDA kernels vs their CPU references (random inputs; gptq_cuda: the calibration ops, both paths)"
  "$BUILD/tests/unit" cuda dequant_cpu
  echo
  echo "## CUDA ops vs CPU ops (kernels/cuda/ops_*.cu against kernels/cpu/ops_*.c, random inputs)"
  "$BUILD/tests/unit" ops_cuda
  echo
  echo "## GPTQ layer bench on the fallback paths (DSV4_NO_CUDA_LIBS=1: own SYRK kernel, gptq by the CPU op; 4 experts,"
  echo "## 32 x 512 tokens); the full-size layer (cuBLAS/cuSOLVER) is bench_gptq_layer under Benchmarks below"
  DSV4_NO_CUDA_LIBS=1 "$BUILD/bench/bench_gptq_layer" --experts 4 --samples 32
  echo
  echo "## dsv4-inspect --tensor: CUDA dequantization gives the CPU's statistics and checksum"
  for t in layers.1.attn.wq_b.weight layers.3.ffn.experts.7.w1.weight mtp.0.ffn.experts.15.w2.weight; do
    cpu=$("$BUILD/bin/dsv4-inspect" --json --device cpu --tensor "$t" fixtures/dsv4-tiny | grep -v '"device"')
    gpu=$("$BUILD/bin/dsv4-inspect" --json --device cuda --tensor "$t" fixtures/dsv4-tiny | grep -v '"device"')
    if [ -n "$cpu" ] && [ "$cpu" = "$gpu" ]; then echo "PASS inspect_cuda_equals_cpu $t"; else echo "FAIL inspect_cuda_equals_cpu $t"; fi
  done
  echo
  echo "## The GPTQ walk on CUDA: gptq.sh with CALIB_DEVICE=cuda, the full calibration twice (bench/gptq_cuda_checks.sh)"
  BUILD="$BUILD" bash bench/gptq_cuda_checks.sh
  for t in gptq_attn gptq_data gptq_nvfp4; do CALIB_DEVICE=cuda BUILD="$BUILD" bash tests/cli/$t.sh | grep -E '^FAIL' || echo "PASS $t.sh with CALIB_DEVICE=cuda"; done
  echo
  echo "## Full test suite on this machine"
  BUILD="$BUILD" bash tests/run.sh | grep -E '^(FAIL|SKIP)|passed, .* failed'
  echo
  echo "## Benchmarks"
  BUILD="$BUILD" bash bench/run.sh
} 2>&1 | tee "$log"

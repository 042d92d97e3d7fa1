#!/usr/bin/env bash
# Every check that needs a CUDA GPU, in one call of under 8 minutes on one GPU:
#
#   1. the trial tests marked `cuda` (none / 8bit / 4bit with CUDA bitsandbytes, grouped and
#      packed batches);
#   2. bench/throughput.py on the embedded SmolLM2-135M at cutoff 512 x micro-batch 8, the
#      harness's grouped and packed batching against padded;
#   3. the same on a config-built Llama of 1.1 B parameters (random weights: speed and memory
#      do not depend on them) at cutoff 1024 x 8, unquantized (bf16) and 4-bit, reporting real
#      tokens/s, MFU and peak memory.
#
# Without a GPU (or with --dry-run) it runs the same steps shrunk to a CPU-sized dry run, so the
# script is exercised by the test suite and does not rot: the cuda tests are collected (and
# skipped), the benchmark runs its --quick form on a tiny Llama.
#
# Usage: bench/gpu.sh [--dry-run]      PYTHON (default .venv/bin/python, else python3) runs it;
# every figure also lands in $OUT (default: a new temporary directory) as a .md file.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
dry=0
[ "${1:-}" = "--dry-run" ] && dry=1
if [ $dry = 0 ] && ! "$PY" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
    echo "no CUDA device here: running the CPU dry run instead"
    dry=1
fi

failed=0
check() {  # check NAME COMMAND...: run it, keep its output, carry on if it fails
    local name=$1
    shift
    echo "== $name: $*"
    if ! "$@" 2>&1 | tee "$OUT/$name.md"; then
        echo "!! $name failed"
        failed=1
    fi
}

harness_sides=harness-padded,harness-grouped,harness-packed
if [ $dry = 1 ]; then
    "$PY" bench/random_llama.py "$OUT/llama" --size tiny >/dev/null
    check cuda-tests "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/trial/test_cuda.py
    check throughput-llama "$PY" bench/throughput.py --quick --model "$OUT/llama" \
        --quantization none --sides "$harness_sides" --mfu
else
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.md"
    "$PY" bench/random_llama.py "$OUT/llama-1b" --size 1b
    check cuda-tests "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/trial/test_cuda.py
    check throughput-embedded "$PY" bench/throughput.py --quantization none --settings 512x8 \
        --examples 512 --warmup 4 --sides "$harness_sides" --mfu
    for quantization in none 4bit; do
        check "throughput-llama-$quantization" "$PY" bench/throughput.py --model "$OUT/llama-1b" \
            --quantization "$quantization" --settings 1024x8 --examples 256 --warmup 4 \
            --sides harness-grouped,harness-packed --mfu
    done
fi
echo "figures in $OUT"
exit $failed

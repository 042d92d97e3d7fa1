#!/usr/bin/env bash
# Every check that needs a CUDA GPU, in one call of under 8 minutes on one GPU:
#
#   1. the trial tests marked `cuda` (none / 8bit / 4bit with CUDA bitsandbytes, grouped and
#      packed batches);
#   2. bench/throughput.py on the embedded SmolLM2-135M at cutoff 512 x micro-batch 8, the
#      harness's grouped and packed batching against padded;
#   3. the same on a config-built Llama of 1.1 B parameters (random weights: speed and memory
#      do not depend on them) at cutoff 1024 x 8, unquantized (bf16) and 4-bit, reporting real
#      tokens/s, MFU and peak memory;
#   4. (part `memory`) the memory estimate against the CUDA allocator's peak over the matrix of
#      bench/memory_estimate.py;
#   5. (part `packing`) a real CUDA out-of-memory retried in half-size forward passes
#      (bench/oom_retry.py), and the demo space's trials per hour at 1, 2 and 4 trials per GPU
#      (bench/trials_per_gpu.py).
#
# Each part fits one device call of under 10 minutes: run `checks`, `memory` and `packing` as
# three calls (no part: all three in one).
#
# Without a GPU (or with --dry-run) it runs the same steps shrunk to a CPU-sized dry run, so the
# script is exercised by the test suite and does not rot: the cuda tests are collected (and
# skipped), the benchmark runs its --quick form on a tiny Llama.
#
# Usage: bench/gpu.sh [--dry-run] [checks|memory|packing]
#                                      PYTHON (default .venv/bin/python, else python3) runs it;
# every figure also lands in $OUT (default: a new temporary directory) as a .md file.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
dry=0
[ "${1:-}" = "--dry-run" ] && { dry=1; shift; }
part=${1:-all}
want() { [ "$part" = all ] || [ "$part" = "$1" ]; }
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
    if want checks; then
        check cuda-tests "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/trial/test_cuda.py
        check throughput-llama "$PY" bench/throughput.py --quick --model "$OUT/llama" \
            --quantization none --sides "$harness_sides" --mfu
    fi
    want memory && check memory-estimate "$PY" bench/memory_estimate.py --model "$OUT/llama"
    if want packing; then
        check oom-retry "$PY" bench/oom_retry.py --dry-run
        check trials-per-gpu "$PY" bench/trials_per_gpu.py --trials 1 --per-gpu 1
    fi
else
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.md"
    llama_1b() {  # the random 1B Llama, built once for the parts that use it
        [ -d "$OUT/llama-1b" ] || "$PY" bench/random_llama.py "$OUT/llama-1b" --size 1b
    }
    if want checks; then
        llama_1b
        check cuda-tests "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/trial/test_cuda.py
        check throughput-embedded "$PY" bench/throughput.py --quantization none \
            --settings 512x8 --examples 512 --warmup 4 --sides "$harness_sides" --mfu
        for quantization in none 4bit; do
            check "throughput-llama-$quantization" "$PY" bench/throughput.py \
                --model "$OUT/llama-1b" --quantization "$quantization" --settings 1024x8 \
                --examples 256 --warmup 4 --sides harness-grouped,harness-packed --mfu
        done
    fi
    want memory && check memory-estimate "$PY" bench/memory_estimate.py
    if want packing; then
        llama_1b
        check oom-retry "$PY" bench/oom_retry.py --model "$OUT/llama-1b"
        check trials-per-gpu "$PY" bench/trials_per_gpu.py --trials 8
    fi
fi
echo "figures in $OUT"
exit $failed

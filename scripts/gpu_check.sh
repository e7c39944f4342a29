#!/usr/bin/env bash
# One command for the first GPU: the GPU tests, every op on every backend, and the base model in fp16
# at batch 1 and 32 with CUDA graphs; everything goes into one report file. No network; ~5-8 minutes.
#
#   bash scripts/gpu_check.sh [REPORT]        (default: gpu_report.txt in the current directory)
#
# Run it from the repository root with the package installed (pip install -e '.[test,bench]').
# Every step runs under its own time limit and the script goes on when one fails, so one broken step
# still leaves the others' numbers in the report; the exit status is that of the first failed step.
set -u
REPORT="${1:-gpu_report.txt}"
PY="${PYTHON:-python}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
status=0

step() {  # step NAME SECONDS COMMAND...
    local name="$1" limit="$2"; shift 2
    local start=$SECONDS
    echo "=== $name: $*" | tee -a "$REPORT"
    timeout --signal=INT "$limit" "$@" >>"$REPORT" 2>&1
    local rc=$?
    echo "=== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$REPORT"
    [ "$rc" -ne 0 ] && [ "$status" -eq 0 ] && status=$rc
    return 0
}

: >"$REPORT"
{
    echo "ernie_m_fast GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1
    "$PY" -c "import torch, ernie_m_fast as e; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'build', e.build_info())"
} >>"$REPORT" 2>&1

step "pytest -m gpu" 180 "$PY" -m pytest -q -p no:cacheprovider -m gpu -rs tests/gpu
step "bench kernels" 120 "$PY" -m ernie_m_fast.cli bench kernels --device cuda --dtype bfloat16
step "bench model fp16 batch 1" 75 "$PY" -m ernie_m_fast.cli bench model --device cuda --dtype float16 \
    --size base --mix batch1-128 --cuda-graphs --compare ours-eager,transformers --rounds 50 --no-memory
step "bench model fp16 batch 32" 75 "$PY" -m ernie_m_fast.cli bench model --device cuda --dtype float16 \
    --size base --mix uniform32x128 --mix varlen16 --cuda-graphs --compare ours-eager,transformers --rounds 20 --no-memory

echo "report: $REPORT (exit $status)"
exit "$status"

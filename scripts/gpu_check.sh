#!/usr/bin/env bash
# GPU check (issue 8): one command that proves the real-size path on one GPU and records its figures.
#
# On the GPU machine (wheels carried in .whl/, made by scripts/gpu_wheels.sh; results to $OUT):
#   bash scripts/gpu_check.sh
# On any machine without a GPU (tiny shapes, CPU, DeepSpeed on CPU; proves the plumbing):
#   bash scripts/gpu_check.sh --dry-run --out /tmp/gpu_check_out
# Every option is passed to benchmarks/gpu/gpu_check.py (--help lists them: --steps, --budget-s, --timeouts,
# --sft-steps, --grpo-completion, ...). Results: OUT/gpu_check.json, OUT/gpu_check.txt, OUT/gpu_check_logs.tar.gz.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

DRY=0
for arg in "$@"; do
    case "$arg" in
        --dry-run|--dry_run) DRY=1 ;;
    esac
done

# Interpreter: $PYTHON if set; for a dry run the project venv when there is one; else python3 (on the GPU machine
# the python3 that holds CUDA torch).
if [[ -n "${PYTHON:-}" ]]; then
    PY="$PYTHON"
elif [[ $DRY -eq 1 && -x "$ROOT/.venv/bin/python" ]]; then
    PY="$ROOT/.venv/bin/python"
else
    PY="$(command -v python3)"
fi

# Nothing may touch the network (there is none on the GPU machine; a hub lookup would only waste minutes).
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=disabled
export HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
if [[ $DRY -eq 1 ]]; then
    export DS_ACCELERATOR=cpu
fi

echo "[gpu_check.sh] $PY ($("$PY" --version 2>&1))" >&2
exec "$PY" "$ROOT/benchmarks/gpu/gpu_check.py" "$@"

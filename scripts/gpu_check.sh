#!/usr/bin/env bash
# GPU check: the one command for the minutes a GPU machine is lent (benchmarks/README.md, "GPU check").
#
#   bash scripts/gpu_check.sh                  # GPU machine: wheels carried in .whl/ (scripts/gpu_wheels.sh); results to $OUT
#   bash scripts/gpu_check.sh --dry-run --out /tmp/gc   # any machine: CPU, tiny preset, proves the plumbing
#
# 1. installs the carried wheels ($GPU_CHECK_WHEELS, default .whl/: *.whl and deepspeed's sdist if no wheel was built)
#    into /tmp/site when there are any (not in a dry run);
# 2. builds the checkpoint once (Qwen2-VL-2B shape in bf16; --dry-run: the tiny preset) in $GPU_CHECK_WORK/model;
# 3. pytest -m gpu tests/gpu on it (JUnit XML: OUT/pytest_gpu.xml, output: OUT/pytest_gpu.log; --no-tests skips it);
# 4. benchmarks/gpu_check.py: tinyrs-sft train, tinyrs-grpo train, tinyrs-eval run a few steps each, figures in
#    OUT/gpu_check.json and OUT/gpu_check.txt, logs in OUT/logs/. Other options go to it (--stages, --budget-s).
# Exit status: 0 when the tests and every stage passed, 1 otherwise.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

DRY=()
OUT_DIR="${OUT:-/tmp/gpu_check_out}"
TESTS_TOO=1
PASS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dry-run|--dry_run) DRY=(--dry-run) ;;
        --no-tests) TESTS_TOO=0 ;;
        --out) OUT_DIR="$2"; shift ;;
        *) PASS+=("$1") ;;
    esac
    shift
done
WORK="${GPU_CHECK_WORK:-/tmp/gpu_check${DRY[*]:+_dry}}"
PYTEST_LIMIT_S="${GPU_CHECK_PYTEST_S:-150}"
mkdir -p "$OUT_DIR" "$WORK"

# Interpreter: $PYTHON, else the project venv for a dry run, else python3 (on the GPU machine the one with CUDA torch).
if [[ -n "${PYTHON:-}" ]]; then
    PY="$PYTHON"
elif [[ ${#DRY[@]} -gt 0 && -x "$ROOT/.venv/bin/python" ]]; then
    PY="$ROOT/.venv/bin/python"
else
    PY="$(command -v python3)"
fi

# Nothing may touch the network (there is none on the GPU machine; a hub lookup only wastes minutes).
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=disabled
export HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
if [[ ${#DRY[@]} -gt 0 ]]; then
    export DS_ACCELERATOR=cpu CUDA_VISIBLE_DEVICES=""
fi

# 1. Carried wheels (the GPU image lacks trl, datasets, deepspeed, ...; gpu_wheels.sh says which and why).
WHEELS="${GPU_CHECK_WHEELS:-.whl}"
SITE=""
if [[ ${#DRY[@]} -eq 0 ]] && compgen -G "$WHEELS/*.whl" >/dev/null; then
    PIP=("$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site)
    "${PIP[@]}" "$WHEELS"/*.whl || exit 1
    if compgen -G "$WHEELS/*.tar.gz" >/dev/null; then "${PIP[@]}" --no-build-isolation "$WHEELS"/*.tar.gz || exit 1; fi
    SITE="/tmp/site:"
fi
# The four projects of this repository, uninstalled there: their source folders.
export PYTHONPATH="${SITE}$ROOT/sft:$ROOT/grpo:$ROOT/eval:$ROOT/demo${PYTHONPATH:+:$PYTHONPATH}"
echo "[gpu_check.sh] $PY ($("$PY" --version 2>&1)), work $WORK, out $OUT_DIR" >&2

# 2. The checkpoint, shared by the tests and the figures.
"$PY" benchmarks/gpu_check.py "${DRY[@]}" --build-model "$WORK/model" || exit 1

# 3. The gpu-marked tests (they skip without CUDA), at most $GPU_CHECK_PYTEST_S seconds.
TESTS=0
if [[ $TESTS_TOO -eq 1 ]]; then
    GPU_CHECK_MODEL="$WORK/model" timeout "$PYTEST_LIMIT_S" "$PY" -m pytest -m gpu tests/gpu -q -p no:cacheprovider \
        --junitxml "$OUT_DIR/pytest_gpu.xml" 2>&1 | tee "$OUT_DIR/pytest_gpu.log"
    TESTS=${PIPESTATUS[0]}
fi

# 4. The three entry points and their figures.
"$PY" benchmarks/gpu_check.py "${DRY[@]}" --model "$WORK/model" --work-dir "$WORK" --out "$OUT_DIR" \
    --junit "$OUT_DIR/pytest_gpu.xml" ${PASS[@]+"${PASS[@]}"}
FIGURES=$?
[[ $TESTS -eq 0 && $FIGURES -eq 0 ]]

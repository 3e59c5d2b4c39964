#!/usr/bin/env bash
# Evaluate a checkpoint on all 12 benchmarks, with and without the reasoning template: the recipes
# eval/configs/tinyrs_instant.yaml and eval/configs/tinyrs_reasoning.yaml, with the settings below on top.
# Data: hf download aybora/scorers_datasets_eval --repo-type dataset --local-dir ../scorers_datasets_eval
#   MODEL_NAME_OR_PATH=aybora/Qwen2-VL-TinyRS-R1 bash scripts/eval.sh
#   MODEL_TYPE=hf bash scripts/eval.sh            (choose the backend; by default lmdeploy where `import lmdeploy`
#                                                  works and a CUDA GPU is visible, else hf: transformers, CPU or GPU)
#   DRY_RUN=1 bash scripts/eval.sh                (check arguments, model path, data and images; load no model)
# Extra arguments go to tinyrs-eval run (they override the recipes), e.g. --task cls_AID,rs_vg.
# A rerun resumes: finished predictions are kept (keyed on the settings and a fingerprint of the weights, so a model
# retrained into the same folder is evaluated afresh). Pass --force_inference true to discard them.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_ROOT=${DATA_ROOT:-../scorers_datasets_eval}
OUTPUT_DIR=${OUTPUT_DIR:-eval_out}
MODEL_NAME_OR_PATH=${MODEL_NAME_OR_PATH:-${MODEL_PATH:-aybora/Qwen2-VL-TinyRS-R1}}  # MODEL_PATH: the old name
NUM_PROCESSES=${NUM_PROCESSES:-1}
REASONING=()  # REASONING_CONFIG=file.json replaces the reasoning recipe's chat template
if [[ -n "${REASONING_CONFIG:-}" ]]; then REASONING=(--reasoning_config "$REASONING_CONFIG"); fi

if [[ -z "${MODEL_TYPE:-}" ]]; then
    if python -c 'import sys, lmdeploy, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        MODEL_TYPE=lmdeploy
        why="lmdeploy imports and a CUDA GPU is visible"
    else
        MODEL_TYPE=hf
        why="lmdeploy is not installed here or no CUDA GPU is visible"
    fi
    echo "eval.sh: MODEL_TYPE=$MODEL_TYPE ($why; set MODEL_TYPE to choose)" >&2
fi

COMMON=(
    --data_root "$DATA_ROOT"
    --model_type "$MODEL_TYPE"
    --model_name_or_path "$MODEL_NAME_OR_PATH"
    --task "${TASK:-all}"
)

run() {
    if [[ "${DRY_RUN:-0}" == "1" ]]; then
        python -m tinyrs_eval.run --dry_run true "$@"
    else
        accelerate launch --num_processes "$NUM_PROCESSES" --mixed_precision bf16 -m tinyrs_eval.run "$@"
    fi
}

# Instant answers (TinyRS), then reasoning answers with the <reasoning>/<answer> system prompt (TinyRS-CoT, -R1).
run --config "$REPO_ROOT/eval/configs/tinyrs_instant.yaml" "${COMMON[@]}" --output_dir "$OUTPUT_DIR/instant" "$@"
run --config "$REPO_ROOT/eval/configs/tinyrs_reasoning.yaml" "${COMMON[@]}" --output_dir "$OUTPUT_DIR/reasoning" \
    ${REASONING[@]+"${REASONING[@]}"} "$@"

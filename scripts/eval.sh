#!/usr/bin/env bash
# Evaluate a checkpoint on all 12 benchmarks, with and without the reasoning template (lmdeploy on one GPU).
# Data: huggingface-cli download aybora/scorers_datasets_eval --repo-type dataset --local-dir ../scorers_datasets_eval
#   MODEL_PATH=aybora/Qwen2-VL-TinyRS-R1 bash scripts/eval.sh
#   MODEL_TYPE=hf bash scripts/eval.sh            (transformers backend; CPU or GPU, no lmdeploy needed)
#   DRY_RUN=1 bash scripts/eval.sh                (check arguments, model path, data and images; load no model)
# A rerun resumes: finished predictions are kept (keyed on the settings and a fingerprint of the weights, so a model
# retrained into the same folder is evaluated afresh). Pass --force_inference true to discard them.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_ROOT=${DATA_ROOT:-../scorers_datasets_eval}
OUTPUT_DIR=${OUTPUT_DIR:-eval_out}
MODEL_TYPE=${MODEL_TYPE:-lmdeploy}
MODEL_PATH=${MODEL_PATH:-aybora/Qwen2-VL-TinyRS-R1}
REASONING_CONFIG=${REASONING_CONFIG:-$REPO_ROOT/eval/configs/qwen2_thinking_template.json}
NUM_PROCESSES=${NUM_PROCESSES:-1}

COMMON=(
    --data_root "$DATA_ROOT"
    --model_type "$MODEL_TYPE"
    --model_path "$MODEL_PATH"
    --prompt_style tinyrs
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
run "${COMMON[@]}" --output_dir "$OUTPUT_DIR/instant" "$@"
run "${COMMON[@]}" --output_dir "$OUTPUT_DIR/reasoning" --reasoning_config "$REASONING_CONFIG" "$@"

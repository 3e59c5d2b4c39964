#!/usr/bin/env bash
# Stage 2, instruction SFT: TinyRS-PRETRAIN -> TinyRS (4xH100, ZeRO-3 offload).
# Data: hf download aybora/VHM_dataset_sft --repo-type dataset --local-dir ../VHM_dataset_sft
STAGE_MODEL=${MODEL_NAME:-aybora/Qwen2-VL-TinyRS-PRETRAIN}
STAGE_DATA=${DATA_PATH:-../VHM_dataset_sft/list_sft_oversampled.json}
STAGE_IMAGES=${IMAGE_FOLDER:-../VHM_dataset_sft}
STAGE_NAME=sft
STAGE_OUTPUT=${OUTPUT_DIR:-output/qwen_vhm_sft_2b}
source "$(dirname "${BASH_SOURCE[0]}")/_sft_common.sh"

#!/usr/bin/env bash
# Stage 1, pretraining on VersaD captions: Qwen2-VL-2B-Instruct -> TinyRS-PRETRAIN (4xH100, ZeRO-3 offload).
# Data: hf download aybora/VHM_VersaD --repo-type dataset --local-dir ../VHM_VersaD
# Extra arguments are passed to the trainer (they override the recipe), e.g. --save_steps 500.
STAGE_MODEL=${MODEL_NAME:-Qwen/Qwen2-VL-2B-Instruct}
STAGE_DATA=${DATA_PATH:-../VHM_VersaD/list_pretrain_corrected.json}
STAGE_IMAGES=${IMAGE_FOLDER:-../VHM_VersaD}
STAGE_NAME=pretraining
STAGE_OUTPUT=${OUTPUT_DIR:-output/qwen_vhm_pretrain_2b}
source "$(dirname "${BASH_SOURCE[0]}")/_sft_common.sh"

#!/usr/bin/env bash
# Stage 1, pretraining on VersaD captions: Qwen/Qwen2-VL-2B-Instruct -> TinyRS-PRETRAIN (output/qwen_vhm_pretrain_2b).
# Data: hf download aybora/VHM_VersaD --repo-type dataset --local-dir ../VHM_VersaD
# Every setting is in the recipe sft/configs/pretrain.yaml; this script adds paths and the launcher
# (one node: deepspeed, 4 GPUs, ZeRO-3 without offload, as the recipe).
#   bash scripts/pretrain.sh             (from the repository root)
#   sbatch --nodes N scripts/pretrain.slurm  (several nodes)
#   DRY_RUN=1 bash scripts/pretrain.sh   (prints the command, then checks arguments, data and paths; no GPU needed)
# Paths: MODEL_NAME, DATA_PATH, IMAGE_FOLDER, OUTPUT_DIR, DEEPSPEED_CONFIG; layout: NUM_DEVICES (4), BATCH_PER_DEVICE.
# Extra arguments go to the trainer and override the recipe, e.g. --save_steps 500. More: scripts/_launch.sh.
STAGE=pretrain
source "$(dirname "${BASH_SOURCE[0]}")/_launch.sh"
launch_one_node "$@"

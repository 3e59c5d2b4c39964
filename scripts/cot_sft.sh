#!/usr/bin/env bash
# Stage 3, chain-of-thought SFT: TinyRS -> TinyRS-CoT (output/qwen_vhm_cot_sft_2b);
# MODEL_NAME=output/qwen_vhm_sft_2b chains yours.
# Data: hf download aybora/VHM_dataset_sft --repo-type dataset --local-dir ../VHM_dataset_sft
# Every setting is in the recipe sft/configs/cot_sft.yaml; this script adds paths and the launcher
# (one node: deepspeed, 4 GPUs, ZeRO-3 without offload, as the recipe).
#   bash scripts/cot_sft.sh             (from the repository root)
#   sbatch --nodes N scripts/cot_sft.slurm  (several nodes)
#   DRY_RUN=1 bash scripts/cot_sft.sh   (prints the command, then checks arguments, data and paths; no GPU needed)
# Paths: MODEL_NAME, DATA_PATH, IMAGE_FOLDER, OUTPUT_DIR, DEEPSPEED_CONFIG; layout: NUM_DEVICES (4), BATCH_PER_DEVICE.
# Extra arguments go to the trainer and override the recipe, e.g. --save_steps 500. More: scripts/_launch.sh.
STAGE=cot_sft
source "$(dirname "${BASH_SOURCE[0]}")/_launch.sh"
launch_one_node "$@"

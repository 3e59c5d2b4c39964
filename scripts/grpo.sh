#!/usr/bin/env bash
# Stage 4, GRPO: TinyRS-CoT -> TinyRS-R1 (checkpoints/$WANDB_RUN_NAME), one node (torchrun, 4 GPUs, ZeRO-3).
# Every setting is in the recipe grpo/configs/tinyrs_r1.yaml; this script adds paths and the launcher.
# First: export OPENAI_API_KEY=... (the judge of open-ended rows, about 10-15 USD per full run; without a key those rows
# are dropped and the rest trains) and `wandb login` (the recipe reports to wandb; --report_to none to skip it).
# Data: the hub id aybora/VHM_dataset_grpo, fetched at start-up as in the seed (DATASET_NAME: a save_to_disk folder or a
# .json file instead). Model: aybora/Qwen2-VL-TinyRS-CoT, or
#   hf download aybora/Qwen2-VL-TinyRS-CoT --local-dir ../Qwen2-VL-TinyRS-CoT   then MODEL_NAME=../Qwen2-VL-TinyRS-CoT
#   bash scripts/grpo.sh               (from the repository root)
#   sbatch --nodes N scripts/grpo.slurm (several nodes)
#   DRY_RUN=1 bash scripts/grpo.sh     (prints the command, then checks arguments and paths; no GPU needed)
# Paths: MODEL_NAME, DATASET_NAME, OUTPUT_DIR, DEEPSPEED_CONFIG, WANDB_RUN_NAME; MAX_PIXELS, MIN_PIXELS; GPUS_PER_NODE.
# Extra arguments go to the trainer and override the recipe, e.g. --save_steps 50. More: scripts/_launch.sh.
STAGE=grpo
source "$(dirname "${BASH_SOURCE[0]}")/_launch.sh"
launch_one_node "$@"

# Shared by pretrain.sh, sft.sh and cot_sft.sh: the paper's SFT recipe on one node with 4xH100 (or A100 80GB),
# DeepSpeed ZeRO-3 with CPU offload, global batch 128. Set STAGE_* variables, then source this file.
# DRY_RUN=1 checks the arguments, the data file with a sample of its images, the model folder or hub id, the DeepSpeed
# config and the output folder, prints the effective settings (learning rates per group, epochs, global batch, ZeRO
# stage) and exits without loading a model; it needs no GPU (run it on a login node).
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

NUM_DEVICES=${NUM_DEVICES:-4}
GLOBAL_BATCH_SIZE=${GLOBAL_BATCH_SIZE:-128}
BATCH_PER_DEVICE=${BATCH_PER_DEVICE:-16}
GRAD_ACCUM_STEPS=$((GLOBAL_BATCH_SIZE / (BATCH_PER_DEVICE * NUM_DEVICES)))
DEEPSPEED_CONFIG=${DEEPSPEED_CONFIG:-$REPO_ROOT/sft/configs/deepspeed/zero3_offload.json}
MASTER_PORT=${MASTER_PORT:-29400}

ARGS=(
    --deepspeed "$DEEPSPEED_CONFIG"
    --model_name_or_path "$STAGE_MODEL"
    --dataset_name "$STAGE_DATA"
    --image_folder "$STAGE_IMAGES"
    --training_stage "$STAGE_NAME"
    --remove_unused_columns False
    --freeze_vision_tower False
    --freeze_llm False
    --tune_merger True
    --bf16 True
    --fp16 False
    --disable_flash_attn2 False
    --output_dir "$STAGE_OUTPUT"
    --num_train_epochs 1
    --per_device_train_batch_size "$BATCH_PER_DEVICE"
    --gradient_accumulation_steps "$GRAD_ACCUM_STEPS"
    --image_min_pixels $((512 * 28 * 28))
    --image_max_pixels $((1280 * 28 * 28))
    --learning_rate 1e-5
    --merger_lr 1e-5
    --vision_lr 2e-6
    --weight_decay 0.1
    --warmup_ratio 0.03
    --lr_scheduler_type cosine
    --loss_normalization micro_batch
    --logging_steps 1
    --tf32 True
    --activation_checkpointing True
    --report_to tensorboard
    --save_strategy steps
    --save_steps 200
    --save_total_limit 5
    --dataloader_num_workers 4
)

if [[ "${DRY_RUN:-0}" == "1" ]]; then
    exec python -m tinyrs_sft.train --dry_run True --dry_run_world_size "$NUM_DEVICES" "${ARGS[@]}" "$@"
fi
exec deepspeed --num_gpus "$NUM_DEVICES" --master_port "$MASTER_PORT" --module tinyrs_sft.train "${ARGS[@]}" "$@"

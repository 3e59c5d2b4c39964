# Shared by every launch script; not run on its own. A stage script sets STAGE (pretrain, sft, cot_sft, grpo or eval),
# sources this file and calls one of:
#   launch_one_node "$@"   scripts/<stage>.sh     one node, the stage's usual launcher (deepspeed for the SFT stages,
#                                                 torchrun for GRPO, accelerate for evaluation)
#   launch_nodes "$@"      scripts/<stage>.slurm  one or more nodes: srun starts one torchrun per node, which meet at a
#                                                 c10d rendezvous on the first node (the seed README's GRPO command)
# The stage's YAML recipe holds every setting. The scripts add only paths (from the environment variables below), the
# launcher, and for the SFT stages the gradient accumulation that keeps the recipe's global batch (written for
# 4 GPUs: 16 per device x 2 accumulation x 4 = 128) when the number of processes differs. Extra arguments go to the
# entry point and override the recipe. `--nodes N` sets the node count (default: SLURM_NNODES, else 1).
#
# DRY_RUN=1 prints the resolved command of every node, then runs the entry point's own dry run (arguments, data, model
# folder or hub id, DeepSpeed config, output folder; no model is loaded, no GPU is needed) and exits with its status.
#
# Environment: MODEL_NAME, DATA_PATH, IMAGE_FOLDER, OUTPUT_DIR, DEEPSPEED_CONFIG (SFT stages); MODEL_NAME,
# DATASET_NAME, OUTPUT_DIR, DEEPSPEED_CONFIG, WANDB_RUN_NAME, MAX_PIXELS, MIN_PIXELS (GRPO); MODEL_NAME_OR_PATH,
# DATA_ROOT, OUTPUT_DIR, MODEL_TYPE, TASK, REASONING_CONFIG, NUM_PROCESSES (evaluation). Layout: GPUS_PER_NODE (or the
# seed's NUM_DEVICES; default SLURM_GPUS_ON_NODE, else 4), GLOBAL_BATCH_SIZE and BATCH_PER_DEVICE (SFT), MASTER_ADDR
# (default: the first host of SLURM_JOB_NODELIST), MASTER_PORT (29400 for deepspeed, else 29500), NODE_RANK (a
# multi-node run without SLURM: start the .slurm script on every node with its NODE_RANK and the same MASTER_ADDR).
# PYTHON: the interpreter of the dry run and of the eval backend probe (default: python on PATH).
set -euo pipefail

LAUNCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$LAUNCH_DIR/.." && pwd)"
PYTHON=${PYTHON:-python}
RECIPE_GPUS=4  # the SFT recipes' batch arithmetic is written for 4 GPUs (their header)
LAUNCH_NAME=$STAGE

launch_die() {  # one line on stderr, exit status 2 (a usage error, as the entry points)
    echo "$LAUNCH_NAME: $*" >&2
    exit 2
}

is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }

show() {  # a command as one line that can be pasted back into a shell
    printf '%q' "$1"
    shift
    printf ' %q' "$@"
    printf '\n'
}

# ---- stages -----------------------------------------------------------------------------------------------------
stage_setup() {  # MODULE, RECIPES and the stage's defaults
    case "$STAGE" in
        pretrain | sft | cot_sft) MODULE=tinyrs_sft.train RECIPES=("sft/configs/$STAGE.yaml") ;;
        grpo)
            MODULE=tinyrs_grpo.train RECIPES=(grpo/configs/tinyrs_r1.yaml)
            export WANDB_RUN_NAME=${WANDB_RUN_NAME:-Qwen-VL-2B-GRPO-$(date +%Y-%m-%d-%H-%M-%S)}
            ;;
        eval)
            MODULE=tinyrs_eval.run RECIPES=(eval/configs/tinyrs_instant.yaml eval/configs/tinyrs_reasoning.yaml)
            pick_eval_backend
            ;;
        *) launch_die "unknown stage '$STAGE' (pretrain, sft, cot_sft, grpo, eval)" ;;
    esac
}

pick_eval_backend() {  # MODEL_TYPE: lmdeploy where it imports and CUDA is visible, else hf (transformers, CPU or GPU)
    if [[ -n "${MODEL_TYPE:-}" ]]; then return; fi
    local why
    if "$PYTHON" -c 'import sys, lmdeploy, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        MODEL_TYPE=lmdeploy why="lmdeploy imports and a CUDA GPU is visible"
    else
        MODEL_TYPE=hf why="lmdeploy is not installed here or no CUDA GPU is visible"
    fi
    echo "$LAUNCH_NAME: MODEL_TYPE=$MODEL_TYPE ($why; set MODEL_TYPE to choose)" >&2
}

add_flag() {  # add_flag FLAG VALUE: appended to ARGS only when VALUE is set
    if [[ -n "$2" ]]; then ARGS+=("$1" "$2"); fi
}

recipe_value() {  # recipe_value FILE KEY: a top-level scalar of a recipe (comment stripped)
    awk -v key="$2" -F': *' '$1 == key { sub(/[[:space:]]*#.*/, "", $2); print $2; exit }' "$1"
}

stage_args() {  # stage_args RECIPE WORLD_SIZE -> ARGS (recipe, paths) and NOTE (what the layout means)
    local recipe="$REPO_ROOT/$1" world=$2
    ARGS=(--config "$recipe")
    NOTE=""
    case "$STAGE" in
        grpo)
            add_flag --deepspeed "${DEEPSPEED_CONFIG:-$REPO_ROOT/grpo/configs/deepspeed/zero3.json}"
            add_flag --output_dir "${OUTPUT_DIR:-checkpoints/$WANDB_RUN_NAME}"
            add_flag --run_name "$WANDB_RUN_NAME"
            add_flag --model_name_or_path "${MODEL_NAME:-}"
            add_flag --dataset_name "${DATASET_NAME:-}"
            add_flag --max_pixels "${MAX_PIXELS:-}"
            add_flag --min_pixels "${MIN_PIXELS:-}"
            local per_device generations
            per_device=$(recipe_value "$recipe" per_device_train_batch_size)
            generations=$(recipe_value "$recipe" num_generations)
            if is_count "$per_device" && is_count "$generations"; then
                NOTE="$((world * per_device)) completions per step = $((world * per_device / generations)) prompts x"
                NOTE+=" $generations generations ($per_device per process, the recipe's)"
            fi
            ;;
        eval)
            local mode
            mode=$(basename "$recipe" .yaml)
            mode=${mode#tinyrs_}
            ARGS+=(--model_type "$MODEL_TYPE")
            # One checkpoint, evaluated with both recipes (default: the seed README's TinyRS-R1; MODEL_PATH: old name).
            add_flag --model_name_or_path "${MODEL_NAME_OR_PATH:-${MODEL_PATH:-aybora/Qwen2-VL-TinyRS-R1}}"
            add_flag --data_root "${DATA_ROOT:-}"
            add_flag --output_dir "${OUTPUT_DIR:+$OUTPUT_DIR/$mode}"
            add_flag --task "${TASK:-}"
            if [[ "$mode" == reasoning ]]; then add_flag --reasoning_config "${REASONING_CONFIG:-}"; fi
            NOTE="$world processes, each evaluating its shard; rank 0 merges (several nodes: a shared output folder)"
            ;;
        *)
            add_flag --model_name_or_path "${MODEL_NAME:-}"
            add_flag --dataset_name "${DATA_PATH:-}"
            add_flag --image_folder "${IMAGE_FOLDER:-}"
            add_flag --output_dir "${OUTPUT_DIR:-}"
            add_flag --deepspeed "${DEEPSPEED_CONFIG:-}"
            sft_batch "$recipe" "$world"
            ;;
    esac
}

sft_batch() {  # sft_batch RECIPE WORLD_SIZE: keep the recipe's global batch on any number of processes
    local recipe=$1 world=$2 per_device accum global recipe_per_device recipe_accum
    recipe_per_device=$(recipe_value "$recipe" per_device_train_batch_size)
    recipe_accum=$(recipe_value "$recipe" gradient_accumulation_steps)
    is_count "$recipe_per_device" && is_count "$recipe_accum" \
        || launch_die "$recipe: per_device_train_batch_size and gradient_accumulation_steps must be positive integers"
    global=${GLOBAL_BATCH_SIZE:-$((recipe_per_device * recipe_accum * RECIPE_GPUS))}
    per_device=${BATCH_PER_DEVICE:-$recipe_per_device}
    is_count "$global" && is_count "$per_device" \
        || launch_die "GLOBAL_BATCH_SIZE and BATCH_PER_DEVICE must be positive integers"
    if ((global % (per_device * world) != 0)); then
        launch_die "a global batch of $global is not $per_device per device x $world processes x whole" \
            "accumulation steps; set GLOBAL_BATCH_SIZE or BATCH_PER_DEVICE"
    fi
    accum=$((global / (per_device * world)))
    if [[ -n "${BATCH_PER_DEVICE:-}" ]]; then ARGS+=(--per_device_train_batch_size "$per_device"); fi
    if ((accum != recipe_accum)); then ARGS+=(--gradient_accumulation_steps "$accum"); fi
    NOTE="global batch $global = $per_device per device x $accum accumulation x $world processes"
}

dry_run_check() {  # the entry point's own dry run with ARGS and the extra arguments
    local check=("$PYTHON" -m "$MODULE")
    case "$STAGE" in
        grpo | eval) check+=(--dry_run true) ;;
        *) check+=(--dry_run True --dry_run_world_size "$WORLD") ;;
    esac
    check+=("${ARGS[@]}" ${EXTRA[@]+"${EXTRA[@]}"})
    echo "# check (no model is loaded, no GPU is needed):"
    show "${check[@]}"
    "${check[@]}"
}

# ---- the --nodes flag -------------------------------------------------------------------------------------------
take_nodes_flag() {  # NODES_FLAG (empty when not given) and EXTRA (the other arguments)
    NODES_FLAG="" EXTRA=()
    while (($#)); do
        case "$1" in
            --nodes)
                (($# >= 2)) || launch_die "--nodes needs a number"
                NODES_FLAG=$2
                shift 2
                ;;
            --nodes=*) NODES_FLAG=${1#--nodes=} && shift ;;
            *) EXTRA+=("$1") && shift ;;
        esac
    done
    if [[ -n "$NODES_FLAG" ]] && ! is_count "$NODES_FLAG"; then
        launch_die "--nodes takes a positive number, got '$NODES_FLAG'"
    fi
}

# ---- one node -----------------------------------------------------------------------------------------------------
launch_one_node() {
    LAUNCH_NAME="$STAGE.sh"
    take_nodes_flag "$@"
    if [[ -n "$NODES_FLAG" && "$NODES_FLAG" != 1 ]]; then
        launch_die "runs on one node; for $NODES_FLAG nodes: sbatch --nodes $NODES_FLAG scripts/$STAGE.slurm"
    fi
    stage_setup
    local launcher recipe
    case "$STAGE" in
        eval)
            WORLD=${NUM_PROCESSES:-1}
            launcher=(accelerate launch --num_processes "$WORLD" --mixed_precision bf16 -m "$MODULE")
            ;;
        grpo)
            WORLD=${GPUS_PER_NODE:-${NUM_DEVICES:-4}}
            launcher=(torchrun --standalone --nproc_per_node "$WORLD" -m "$MODULE")
            ;;
        *)
            WORLD=${GPUS_PER_NODE:-${NUM_DEVICES:-4}}
            launcher=(deepspeed --num_gpus "$WORLD" --master_port "${MASTER_PORT:-29400}" --module "$MODULE")
            ;;
    esac
    is_count "$WORLD" || launch_die "the number of processes must be a positive number, got '$WORLD'"
    for recipe in "${RECIPES[@]}"; do
        stage_args "$recipe" "$WORLD"
        if [[ "${DRY_RUN:-0}" == 1 ]]; then
            echo "# $LAUNCH_NAME: 1 node, world size $WORLD; $NOTE"
            show "${launcher[@]}" "${ARGS[@]}" ${EXTRA[@]+"${EXTRA[@]}"}
            dry_run_check
        else
            "${launcher[@]}" "${ARGS[@]}" ${EXTRA[@]+"${EXTRA[@]}"}
        fi
    done
}

# ---- one or more nodes (SLURM) ----------------------------------------------------------------------------------
resolve_nodes() {  # NODES, HOSTS, MASTER_ADDR, MASTER_PORT, RDZV_ID, GPUS, WORLD
    local job_nodes=${SLURM_NNODES:-${SLURM_JOB_NUM_NODES:-}} list=${SLURM_JOB_NODELIST:-${SLURM_NODELIST:-}}
    if [[ -n "$NODES_FLAG" ]]; then
        if [[ -n "$job_nodes" && "$job_nodes" != "$NODES_FLAG" ]]; then
            launch_die "--nodes $NODES_FLAG, but this job has $job_nodes node(s) (SLURM_NNODES):" \
                "submit with sbatch --nodes $NODES_FLAG scripts/$STAGE.slurm"
        fi
        NODES=$NODES_FLAG
    else
        NODES=${job_nodes:-1}
    fi
    is_count "$NODES" || launch_die "SLURM_NNODES must be a positive number, got '$NODES'"
    HOSTS=()
    if [[ -n "$list" ]]; then
        if command -v scontrol >/dev/null 2>&1; then
            mapfile -t HOSTS < <(scontrol show hostnames "$list")
        elif [[ "$list" != *"["* ]]; then
            IFS=, read -r -a HOSTS <<<"$list"
        fi
        if ((${#HOSTS[@]} > 0 && ${#HOSTS[@]} < NODES)); then
            launch_die "$NODES nodes, but SLURM_JOB_NODELIST=$list names ${#HOSTS[@]}"
        fi
    fi
    MASTER_ADDR=${MASTER_ADDR:-${HOSTS[0]:-}}
    if [[ -z "$MASTER_ADDR" ]]; then
        if ((NODES > 1)) && [[ "${DRY_RUN:-0}" != 1 ]]; then
            launch_die "$NODES nodes outside a SLURM job: set MASTER_ADDR to the first node's address" \
                "(and NODE_RANK on each node)"
        fi
        MASTER_ADDR=$(hostname)
    fi
    if ((${#HOSTS[@]} == 0)); then HOSTS=("$MASTER_ADDR"); fi
    MASTER_PORT=${MASTER_PORT:-29500}
    RDZV_ID=${SLURM_JOB_ID:-tinyrs-$STAGE}
    GPUS=${GPUS_PER_NODE:-${NUM_DEVICES:-${SLURM_GPUS_ON_NODE:-4}}}
    is_count "$GPUS" || launch_die "GPUS_PER_NODE must be a positive number, got '$GPUS'"
    WORLD=$((NODES * GPUS))
}

launch_nodes() {
    LAUNCH_NAME="$STAGE.slurm"
    take_nodes_flag "$@"
    stage_setup
    resolve_nodes
    # Every node runs: torchrun --node_rank <its SLURM_NODEID> "${torchrun[@]}" -m MODULE ARGS EXTRA
    local torchrun=(--nnodes "$NODES" --nproc_per_node "$GPUS" --rdzv_backend c10d
        --rdzv_endpoint "$MASTER_ADDR:$MASTER_PORT" --rdzv_id "$RDZV_ID" -m "$MODULE")
    local srun=(srun --nodes "$NODES" --ntasks "$NODES" --ntasks-per-node 1 --kill-on-bad-exit=1)
    if [[ -n "${SLURM_CPUS_PER_TASK:-}" ]]; then srun+=(--cpus-per-task "$SLURM_CPUS_PER_TASK"); fi
    # shellcheck disable=SC2016  # expanded by each task, so every node gets its own rank
    local per_node='exec "$0" --node_rank "$SLURM_NODEID" "$@"'
    local recipe node
    for recipe in "${RECIPES[@]}"; do
        stage_args "$recipe" "$WORLD"
        if [[ "${DRY_RUN:-0}" == 1 ]]; then
            echo "# $LAUNCH_NAME: $NODES node(s) x $GPUS processes = world size $WORLD;" \
                "rendezvous $MASTER_ADDR:$MASTER_PORT, id $RDZV_ID; $NOTE"
            echo "# started by: ${srun[*]} bash -c '$per_node' torchrun ... (one task per node)"
            for ((node = 0; node < NODES; node++)); do
                echo "# node $node (${HOSTS[$node]:-host not known before the job starts}):"
                show torchrun --node_rank "$node" "${torchrun[@]}" "${ARGS[@]}" ${EXTRA[@]+"${EXTRA[@]}"}
            done
            dry_run_check
        elif [[ -n "${SLURM_JOB_ID:-}" ]] && command -v srun >/dev/null 2>&1; then
            "${srun[@]}" bash -c "$per_node" torchrun "${torchrun[@]}" "${ARGS[@]}" ${EXTRA[@]+"${EXTRA[@]}"}
        else
            torchrun --node_rank "${NODE_RANK:-0}" "${torchrun[@]}" "${ARGS[@]}" ${EXTRA[@]+"${EXTRA[@]}"}
        fi
    done
}

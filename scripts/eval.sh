#!/usr/bin/env bash
# Evaluate one checkpoint on all 12 benchmarks, with and without the reasoning template: the recipes
# eval/configs/tinyrs_instant.yaml, then eval/configs/tinyrs_reasoning.yaml (one node, accelerate launch).
# Data: hf download aybora/scorers_datasets_eval --repo-type dataset --local-dir ../scorers_datasets_eval
#   MODEL_NAME_OR_PATH=aybora/Qwen2-VL-TinyRS-R1 bash scripts/eval.sh     (the default; MODEL_PATH: the old name)
#   MODEL_TYPE=hf bash scripts/eval.sh   (the backend; by default lmdeploy where `import lmdeploy` works and a CUDA GPU
#                                         is visible, else hf: transformers, CPU or GPU)
#   DRY_RUN=1 bash scripts/eval.sh       (prints the commands, checks arguments, model path, data and images; no model)
#   several nodes: sbatch --nodes N scripts/eval.slurm
# Paths: MODEL_NAME_OR_PATH, DATA_ROOT, OUTPUT_DIR (+ /instant, /reasoning), REASONING_CONFIG (replaces the reasoning
# recipe's chat template); TASK (e.g. cls_AID,rs_vg); NUM_PROCESSES (1). Extra arguments go to tinyrs-eval run (they
# override the recipes). A rerun resumes: finished predictions are kept (keyed on the settings and a fingerprint of the
# weights, so a model retrained into the same folder is evaluated afresh); --force_inference true discards them.
STAGE=eval
source "$(dirname "${BASH_SOURCE[0]}")/_launch.sh"
launch_one_node "$@"

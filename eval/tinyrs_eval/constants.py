"""Text conventions shared by the prompts and the scorers.

# Keep in sync with docs/data-format.md
"""

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."

# Keep in sync with docs/data-format.md (exact string; tests compare it across packages).
REASONING_SYSTEM_PROMPT = (
    "A conversation between User and Assistant. The user asks a question about an image, and the Assistant "
    "answers it. The Assistant first thinks about the reasoning process in the mind and then provides the user "
    "with the answer. The reasoning process and answer are enclosed within <reasoning> </reasoning> and "
    "<answer> </answer> tags, respectively, i.e., <reasoning> reasoning process here </reasoning><answer> answer "
    "here </answer>"
)

# LHRS-Bench question types, ids as strings "1".."11" (names as in the original scorer).
LHRS_TYPE_NAMES = {
    "1": "identity",
    "2": "color",
    "3": "orientation",
    "4": "shape",
    "5": "quantity",
    "6": "area",
    "7": "distance",
    "8": "resolution",
    "9": "modality",
    "10": "location",
    "11": "reasoning",
}

TASK_TYPES = ("cls", "vqa", "bbox", "lhrsbench")
PROMPT_STYLES = ("tinyrs", "qwen2vl")

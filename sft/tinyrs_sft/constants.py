"""Text and token conventions shared (by copy, never by import) with tinyrs_grpo and tinyrs_eval."""

# Keep in sync with docs/data-format.md
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."

# Keep in sync with docs/data-format.md
REASONING_SYSTEM_PROMPT = (
    "A conversation between User and Assistant. The user asks a question about an image, and the Assistant answers "
    "it. The Assistant first thinks about the reasoning process in the mind and then provides the user with the "
    "answer. The reasoning process and answer are enclosed within <reasoning> </reasoning> and <answer> </answer> "
    "tags, respectively, i.e., <reasoning> reasoning process here </reasoning><answer> answer here </answer>"
)

IGNORE_INDEX = -100

# Placeholders in LLaVA-style records; the regex swallows one newline on each side, as the original did.
IMAGE_PLACEHOLDER = "<image>"
VIDEO_PLACEHOLDER = "<video>"
IMAGE_PLACEHOLDER_RE = r"\n?<image>\n?"
VIDEO_PLACEHOLDER_RE = r"\n?<video>\n?"

# Qwen2-VL special tokens (official chat template).
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
IMAGE_PAD = "<|image_pad|>"
VIDEO_PAD = "<|video_pad|>"

# Record roles -> chat roles.
ROLE_MAP = {"system": "system", "human": "user", "gpt": "assistant"}

# Model types this trainer knows how to train (read from the checkpoint's config.json, never from its path).
SUPPORTED_MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl")

# PIL's own default decompression-bomb threshold (Image.MAX_IMAGE_PIXELS); images above it are refused.
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485

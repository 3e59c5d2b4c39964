"""The demo data's words: prompts, task tags, land-cover and object vocabulary, question/answer/reasoning templates
and the benchmark table. Every text the generator writes is assembled from the constants here.

Shared text conventions (the prompts, tags and the benchmark table) must agree with docs/data-format.md.
"""

from __future__ import annotations


# ---------------------------------------------------------------------------------------------------------------
# Shared text conventions. Keep in sync with docs/data-format.md
# ---------------------------------------------------------------------------------------------------------------
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
REASONING_SYSTEM_PROMPT = (
    "A conversation between User and Assistant. The user asks a question about an image, and the Assistant answers "
    "it. The Assistant first thinks about the reasoning process in the mind and then provides the user with the "
    "answer. The reasoning process and answer are enclosed within <reasoning> </reasoning> and <answer> </answer> "
    "tags, respectively, i.e., <reasoning> reasoning process here </reasoning><answer> answer here </answer>"
)
CLS_TAG, VQA_TAG, VG_TAG = "{CLS}", "{VQA}", "{VG}"
TASK_TAGS = (CLS_TAG, VQA_TAG, VG_TAG)

# ---------------------------------------------------------------------------------------------------------------
# Scene vocabulary: one clearly distinct colour per land-cover class and per object kind.
# ---------------------------------------------------------------------------------------------------------------
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "water": (40, 90, 170),
    "forest": (30, 100, 45),
    "farmland": (150, 190, 70),
    "desert": (215, 185, 125),
    "urban": (128, 128, 128),
    "mountain": (115, 80, 55),
}
SCENE_CLASSES = tuple(BACKGROUNDS)
BACKGROUND_LOOK = {  # (colour words, texture words) used in reasoning
    "water": ("blue", "small ripples"),
    "forest": ("dark green", "dense tree crowns"),
    "farmland": ("light green", "parallel field strips"),
    "desert": ("sandy beige", "wind-blown dunes"),
    "urban": ("grey", "a regular street grid"),
    "mountain": ("brown", "rough ridges"),
}
BACKGROUND_PHRASE = {
    "water": "open water",
    "forest": "a dense forest",
    "farmland": "farmland",
    "desert": "a sandy desert",
    "urban": "an urban area",
    "mountain": "mountainous terrain",
}

OBJECT_COLOURS: dict[str, tuple[int, int, int]] = {
    "building": (215, 35, 35),
    "storage tank": (245, 245, 245),
    "plane": (250, 225, 20),
    "ship": (225, 50, 225),
    "road": (45, 45, 45),
}
OBJECT_KINDS = tuple(OBJECT_COLOURS)
COUNTABLE_KINDS = ("building", "storage tank", "plane", "ship")
COLOUR_NAMES = {"building": "red", "storage tank": "white", "plane": "yellow", "ship": "magenta", "road": "dark grey"}
SHAPES = {  # plural shape words used in reasoning
    "building": "red rectangles",
    "storage tank": "white circles",
    "plane": "yellow cross shapes",
    "ship": "magenta elongated shapes",
    "road": "dark straight strips",
}
SHAPE_SINGULAR = {
    "building": "red rectangle",
    "storage tank": "white circle",
    "plane": "yellow cross shape",
    "ship": "magenta elongated shape",
    "road": "dark straight strip",
}
PLURALS = {
    "building": "buildings",
    "storage tank": "storage tanks",
    "plane": "planes",
    "ship": "ships",
    "road": "roads",
}

# ---------------------------------------------------------------------------------------------------------------
# Question / answer / reasoning templates (eval questions = SFT questions without the task tag).
# ---------------------------------------------------------------------------------------------------------------
Q_CLS = "Classify the image into one of the following classes: {classes}. Answer with one word or phrase."
Q_PRESENCE = "Is there a {kind} in the image? Answer yes or no."
Q_COUNT = "How many {plural} are there in the image? Answer with a number."
Q_COMP = "Are there more {plural_a} than {plural_b} in the image? Answer yes or no."
Q_RURAL = "Is this a rural or an urban area? Answer with one word."
Q_VG = "the {kind}"
Q_CAPTION = "Describe the image."
Q_MULTI = "Do the two images show the same type of land cover? Answer yes or no."
Q_TEXT_ONLY = "In these aerial images, what colour is a {kind}? Answer with one word."
MC_SUFFIX = "Answer with the option letter."
Q_MC = {
    "identity": "What is the main land cover in this image?",
    "color": "What colour is the object in this image?",
    "quantity": "How many {plural} are in this image?",
    "location": "Where is the {kind} in this image?",
    "reasoning": "Which kind of object is more numerous in this image?",
}
# LHRS-Bench type ids: 1 identity, 2 color, 3 orientation, 4 shape, 5 quantity, 6 area, 7 distance, 8 resolution,
# 9 modality, 10 location, 11 reasoning.
MC_TYPES = {"identity": ["1"], "color": ["2"], "quantity": ["5"], "location": ["10"], "reasoning": ["5", "11"]}
QUADRANTS = ("top left", "top right", "bottom left", "bottom right")

CAPTION = "An aerial image of {place}{objects}."
R_CLS = "The background is mostly {colour} with {texture}, which is typical of {cls}."
# Presence reasoning names what to look for, not how many: a count is a harder skill than the yes/no it would justify.
R_PRESENT = "I look for {shapes}, which mark {plural}. I can see at least one."
R_ABSENT = "I look for {shapes}, which mark {plural}. I cannot see any."
R_COUNT = "I count the {shapes}, which mark {plural}: there are {n}."
R_COMP = "I count {count_a} and {count_b}. {na} is {relation} than {nb}."
R_URBAN = "I see {count_phrase} on a {colour} background. Many buildings mean an urban area."
R_RURAL = "I see {count_phrase} on a {colour} background. Few buildings mean a rural area."
# Grounding reasoning states the box first, then checks what it holds. The small model reads a box from the image
# only at the token distance SFT taught it (MRoPE with theta 10): a reasoning that puts 15-25 tokens before the box
# moved the read-out out of reach (CoT grounding 10-16% vs SFT 38-54%); one tag token before it keeps it (measured:
# 48% vs 38%).
R_VG = "{box} holds the {kind}, the large {shape}."
R_MULTI = "The first image is {cls_a} and the second image is {cls_b}."
R_MC = "{evidence} So the answer is option {letter}."
R_MC_EVIDENCE = {
    "identity": "The background is mostly {colour} with {texture}, which is {cls}.",
    "color": "The only object is a {kind}, drawn in {colour}.",
    "quantity": "I count {count_phrase}.",
    "location": "The {kind} lies in the {quadrant} part of the image.",
    "reasoning": "I count {count_a} and {count_b}.",
}

# The 12 benchmark files of the RSRM/ScoreRS layout: task key -> (file name, task type).
BENCHMARKS: dict[str, tuple[str, str]] = {
    "cls_aid": ("cls_AID.json", "cls"),
    "cls_METER_ML": ("cls_METER_ML.json", "cls"),
    "cls_NWPU_RESISC45": ("cls_NWPU_RESISC45.json", "cls"),
    "cls_SIRI": ("cls_SIRI_WHU.json", "cls"),
    "cls_WHU_RS19": ("cls_WHU_RS19.json", "cls"),
    "vqa_HR-comp": ("RSVQA_HR-comp_RSVQA.json", "vqa"),
    "vqa_HR-pre": ("RSVQA_HR-presence_RSVQA.json", "vqa"),
    "vqa_LR-comp": ("RSVQA_LR-comp_RSVQA.json", "vqa"),
    "vqa_LR-pre": ("RSVQA_LR-presence_RSVQA.json", "vqa"),
    "vqa_LR-rural": ("RSVQA_LR-rural_urban_RSVQA.json", "vqa"),
    "rs_vg": ("VG_DOIR_RSVG_test.json", "bbox"),
    "lhrs_bench": ("LHRS-Bench.json", "lhrsbench"),
}
# Candidate classes listed in each classification benchmark's question (the SFT data uses the same lists).
CLS_CANDIDATES: dict[str, tuple[str, ...]] = {
    "cls_aid": ("desert", "farmland", "forest", "mountain", "urban", "water"),
    "cls_METER_ML": ("desert", "farmland", "forest", "urban"),
    "cls_NWPU_RESISC45": ("water", "urban", "mountain", "forest", "farmland", "desert"),
    "cls_SIRI": ("farmland", "urban", "water"),
    "cls_WHU_RS19": ("desert", "forest", "mountain", "urban", "water"),
}
# The RSVQA-LR files share one image folder through the relative `image_path` rule.
LR_IMAGE_PATH = "RSVQA_LR/Images"

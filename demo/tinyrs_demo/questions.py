"""Question builders: each samples a scene (tinyrs_demo.scenes) and returns a `QA` in every form the writers need;
no pixels are drawn here. Also the record counts per output and scale (`SCALES`) and which builders feed which output.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Callable

from tinyrs_demo.scenes import CELL, Scene, format_box, make_scene, make_vg_scene, to_grid
from tinyrs_demo.vocabulary import (
    BACKGROUND_LOOK,
    BACKGROUND_PHRASE,
    CAPTION,
    CLS_CANDIDATES,
    CLS_TAG,
    COLOUR_NAMES,
    COUNTABLE_KINDS,
    MC_SUFFIX,
    MC_TYPES,
    OBJECT_KINDS,
    PLURALS,
    Q_CAPTION,
    Q_CLS,
    Q_COMP,
    Q_COUNT,
    Q_MC,
    Q_MULTI,
    Q_PRESENCE,
    Q_RURAL,
    Q_TEXT_ONLY,
    Q_VG,
    QUADRANTS,
    R_ABSENT,
    R_CLS,
    R_COMP,
    R_COUNT,
    R_MC,
    R_MC_EVIDENCE,
    R_MULTI,
    R_PRESENT,
    R_RURAL,
    R_URBAN,
    R_VG,
    SCENE_CLASSES,
    SHAPE_SINGULAR,
    SHAPES,
    VG_TAG,
    VQA_TAG,
)


# Sizes. Tune here: number of records (or rows) per output and scale.
SCALES: dict[str, dict[str, int]] = {
    "small": {
        "pretrain": 12,
        "sft_cls": 12,
        "sft_presence": 10,
        "sft_count": 6,
        "sft_comp": 8,
        "sft_rural": 6,
        "sft_vg": 10,
        "sft_mc": 6,
        "sft_multi_image": 2,
        "sft_text_only": 2,
        "cot_per_task": 3,
        "grpo_train": 16,
        "grpo_test": 8,
        "eval_per_benchmark": 10,
    },
    "full": {
        "pretrain": 600,
        # Classification and rural/urban are learnt first and from few records; presence and grounding get more.
        "sft_cls": 300,
        "sft_presence": 600,
        "sft_count": 250,
        "sft_comp": 450,
        "sft_rural": 120,
        "sft_vg": 800,
        "sft_mc": 200,
        "sft_multi_image": 20,
        "sft_text_only": 20,
        # CoT-SFT teaches every skill again behind a reasoning: grounding and presence are relearnt slowest there.
        "cot_per_task": 150,
        "cot_vg": 500,
        "cot_presence": 300,
        "grpo_train": 240,
        "grpo_test": 48,
        "eval_per_benchmark": 50,
    },
}

# Share of "no" presence questions asked about an empty scene (the others show objects of other kinds only): telling
# "some object" from "no object" needs no binding of the asked kind to its colour, which a tiny model learns slowly.
PRESENCE_EMPTY_NEGATIVES = 0.5


@dataclasses.dataclass
class QA:
    """One question about one or more scenes, in every form the writers need."""

    task: str  # cls | presence | count | comp | rural | vg | mc | caption | multi | text
    tag: str  # task tag prefixed in SFT/GRPO prompts ("" for multiple choice, captions)
    question: str  # without tag and without <image>
    answer: str  # SFT/GRPO answer (grounding: "[[x1, y1, x2, y2]]" on the 0-1000 grid)
    reasoning: str
    scenes: list[Scene]
    pixel_answer: str = ""  # grounding only: "[x1, y1, x2, y2]" in pixels (eval GT)
    types: list[str] | None = None  # LHRS type ids (multiple choice only)

    @property
    def prompt_text(self) -> str:
        return f"{self.tag} {self.question}" if self.tag else self.question


def _plural_phrase(n: int, kind: str) -> str:
    return f"{n} {kind if n == 1 else PLURALS[kind]}"


def cot_answer(qa: QA) -> str:
    """The assistant turn of a CoT-SFT record: the reasoning, then the answer, in the reasoning template's tags."""
    return f"<reasoning>{qa.reasoning}</reasoning><answer>{qa.answer}</answer>"


def human_text(qa: QA) -> str:
    """The user turn of a list record: one ``<image>`` line per scene, then the prompt."""
    return "<image>\n" * len(qa.scenes) + qa.prompt_text


# ---------------------------------------------------------------------------------------------------------------
# Question builders: each samples a scene and returns a QA (no pixels are drawn here).
# ---------------------------------------------------------------------------------------------------------------
Sizes = tuple[tuple[int, int], ...]


def _random_counts(rng: random.Random, max_kinds: int = 2, max_count: int = 3) -> dict[str, int]:
    kinds = rng.sample(COUNTABLE_KINDS, rng.randint(0, max_kinds))
    return {k: rng.randint(1, max_count) for k in kinds}


# Builders take `index`, the record's position among those of its builder: they cycle through variants (class lists,
# object kinds, multiple-choice subtypes) and alternate yes/no answers with it, so that every variant appears even in
# the small scale and binary answers are balanced.
def qa_cls(rng: random.Random, sizes: Sizes, index: int, candidates: tuple[str, ...] | None = None) -> QA:
    if candidates is None:
        lists = list(CLS_CANDIDATES.values())
        candidates = lists[index % len(lists)]
    bg = rng.choice(candidates)
    scene = make_scene(rng, rng.choice(sizes), bg, _random_counts(rng), road=rng.random() < 0.2)
    colour, texture = BACKGROUND_LOOK[bg]
    return QA(
        "cls",
        CLS_TAG,
        Q_CLS.format(classes=", ".join(candidates)),
        bg,
        R_CLS.format(colour=colour, texture=texture, cls=bg),
        [scene],
    )


def qa_presence(rng: random.Random, sizes: Sizes, index: int, kinds: tuple[str, ...] = OBJECT_KINDS) -> QA:
    kind = kinds[(index // 2) % len(kinds)]
    present = index % 2 == 0
    others = [k for k in COUNTABLE_KINDS if k != kind]
    if present:
        n_others = rng.randint(0, 1)
    else:  # an empty scene or one with distractors of other kinds only
        n_others = 0 if rng.random() < PRESENCE_EMPTY_NEGATIVES else rng.randint(1, 2)
    counts = {k: rng.randint(1, 2) for k in rng.sample(others, n_others)}
    if present and kind != "road":
        counts[kind] = rng.randint(1, 3)
    road = present if kind == "road" else n_others > 0 and rng.random() < 0.15
    scene = make_scene(rng, rng.choice(sizes), rng.choice(SCENE_CLASSES), counts, road=road)
    n = scene.count(kind)
    if n:
        reasoning = R_PRESENT.format(shapes=SHAPES[kind], plural=PLURALS[kind])
    else:
        reasoning = R_ABSENT.format(shapes=SHAPES[kind], plural=PLURALS[kind])
    return QA("presence", VQA_TAG, Q_PRESENCE.format(kind=kind), "yes" if n else "no", reasoning, [scene])


def qa_count(rng: random.Random, sizes: Sizes, index: int) -> QA:
    kind = COUNTABLE_KINDS[index % len(COUNTABLE_KINDS)]
    counts = {kind: rng.randint(1, 4)}
    for other in rng.sample([k for k in COUNTABLE_KINDS if k != kind], rng.randint(0, 1)):
        counts[other] = rng.randint(1, 2)
    scene = make_scene(rng, rng.choice(sizes), rng.choice(SCENE_CLASSES), counts)
    n = counts[kind]
    return QA(
        "count",
        VQA_TAG,
        Q_COUNT.format(plural=PLURALS[kind]),
        str(n),
        R_COUNT.format(shapes=SHAPES[kind], plural=PLURALS[kind], n=n),
        [scene],
    )


def _two_counts(rng: random.Random, low: int = 0, first_larger: bool | None = None) -> tuple[int, int]:
    """Two object counts in [low, 4] that differ by at least 2 (an obvious difference)."""
    pairs = [(a, b) for a in range(low, 5) for b in range(low, 5) if abs(a - b) >= 2]
    if first_larger is not None:
        pairs = [(a, b) for a, b in pairs if (a > b) == first_larger]
    return rng.choice(pairs)


def qa_comp(rng: random.Random, sizes: Sizes, index: int) -> QA:
    kind_a, kind_b = rng.sample(COUNTABLE_KINDS, 2)
    na, nb = _two_counts(rng, first_larger=index % 2 == 0)
    scene = make_scene(rng, rng.choice(sizes), rng.choice(SCENE_CLASSES), {kind_a: na, kind_b: nb})
    reasoning = R_COMP.format(
        count_a=_plural_phrase(na, kind_a),
        count_b=_plural_phrase(nb, kind_b),
        na=na,
        nb=nb,
        relation="more" if na > nb else "less",
    )
    question = Q_COMP.format(plural_a=PLURALS[kind_a], plural_b=PLURALS[kind_b])
    return QA("comp", VQA_TAG, question, "yes" if na > nb else "no", reasoning, [scene])


def qa_rural(rng: random.Random, sizes: Sizes, index: int) -> QA:
    urban = index % 2 == 0
    if urban:
        bg, counts = "urban", {"building": rng.randint(4, 7)}
    else:
        bg, counts = rng.choice(("farmland", "forest")), {"building": rng.randint(0, 1)}
    extra = rng.choice(("storage tank", "plane", "ship"))
    counts[extra] = rng.randint(0, 1)
    scene = make_scene(rng, rng.choice(sizes), bg, counts, road=urban or rng.random() < 0.3)
    n = counts["building"]
    phrase = _plural_phrase(n, "building") if n else "no buildings"
    template = R_URBAN if urban else R_RURAL
    reasoning = template.format(count_phrase=phrase, colour=BACKGROUND_LOOK[bg][0])
    return QA("rural", VQA_TAG, Q_RURAL, "urban" if urban else "rural", reasoning, [scene])


def qa_vg(rng: random.Random, sizes: Sizes, index: int) -> QA:
    kind = COUNTABLE_KINDS[index % len(COUNTABLE_KINDS)]
    scene = make_vg_scene(rng, rng.choice(sizes), rng.choice(SCENE_CLASSES), kind)
    box = scene.objects[0].box
    grid = "[" + format_box(to_grid(box, scene.width, scene.height)) + "]"
    reasoning = R_VG.format(box=grid, kind=kind, shape=SHAPE_SINGULAR[kind])
    return QA("vg", VG_TAG, Q_VG.format(kind=kind), grid, reasoning, [scene], pixel_answer=format_box(box))


def _options(rng: random.Random, correct: str, pool: list[str], n: int, shuffle: bool = True) -> tuple[str, str]:
    wrong = rng.sample([p for p in pool if p != correct], n - 1)
    options = [correct, *wrong]
    if shuffle:
        rng.shuffle(options)
    else:
        options.sort(key=pool.index)
    letters = "ABCD"
    text = "\n".join(f"{letters[i]}. {o}" for i, o in enumerate(options))
    return text, letters[options.index(correct)]


def qa_mc(rng: random.Random, sizes: Sizes, index: int) -> QA:
    """LHRS-Bench style multiple choice (no task tag); the answer is the option letter."""
    subtype = list(Q_MC)[index % len(Q_MC)]
    size = rng.choice(sizes)
    bg = rng.choice(SCENE_CLASSES)
    if subtype == "identity":
        scene = make_scene(rng, size, bg, _random_counts(rng))
        question = Q_MC[subtype]
        options, letter = _options(rng, bg, list(SCENE_CLASSES), 4)
        colour, texture = BACKGROUND_LOOK[bg]
        evidence = R_MC_EVIDENCE[subtype].format(colour=colour, texture=texture, cls=bg)
    elif subtype == "color":
        kind = rng.choice(COUNTABLE_KINDS)
        scene = make_scene(rng, size, bg, {kind: rng.randint(1, 2)})
        question = Q_MC[subtype]
        options, letter = _options(rng, COLOUR_NAMES[kind], [COLOUR_NAMES[k] for k in COUNTABLE_KINDS], 4)
        evidence = R_MC_EVIDENCE[subtype].format(kind=kind, colour=COLOUR_NAMES[kind])
    elif subtype == "quantity":
        kind = rng.choice(COUNTABLE_KINDS)
        n = rng.randint(1, 4)
        scene = make_scene(rng, size, bg, {kind: n})
        question = Q_MC[subtype].format(plural=PLURALS[kind])
        options, letter = _options(rng, str(n), ["1", "2", "3", "4"], 4, shuffle=False)
        evidence = R_MC_EVIDENCE[subtype].format(count_phrase=_plural_phrase(n, kind))
    elif subtype == "location":
        kind = rng.choice(COUNTABLE_KINDS)
        quadrant = rng.choice(QUADRANTS)
        cols, rows = size[0] // CELL, size[1] // CELL
        row_range = range(0, rows // 2) if quadrant.startswith("top") else range(rows - rows // 2, rows)
        col_range = range(0, cols // 2) if quadrant.endswith("left") else range(cols - cols // 2, cols)
        cells = [(c * CELL, r * CELL) for r in row_range for c in col_range]
        scene = make_scene(rng, size, bg, {kind: 1}, cells=cells)
        question = Q_MC[subtype].format(kind=kind)
        options, letter = _options(rng, quadrant, list(QUADRANTS), 4)
        evidence = R_MC_EVIDENCE[subtype].format(kind=kind, quadrant=quadrant)
    else:  # reasoning
        kind_a, kind_b = rng.sample(COUNTABLE_KINDS, 2)
        na, nb = _two_counts(rng, low=1)  # both kinds visible
        scene = make_scene(rng, size, bg, {kind_a: na, kind_b: nb})
        question = Q_MC[subtype]
        more = PLURALS[kind_a] if na > nb else PLURALS[kind_b]
        options, letter = _options(rng, more, [PLURALS[kind_a], PLURALS[kind_b]], 2)
        evidence = R_MC_EVIDENCE[subtype].format(
            count_a=_plural_phrase(na, kind_a), count_b=_plural_phrase(nb, kind_b)
        )
    text = f"{question}\n{options}\n{MC_SUFFIX}"
    reasoning = R_MC.format(evidence=evidence, letter=letter)
    return QA("mc", "", text, letter, reasoning, [scene], types=list(MC_TYPES[subtype]))


def caption_of(scene: Scene) -> str:
    parts = [_plural_phrase(scene.count(k), k) for k in COUNTABLE_KINDS if scene.count(k)]
    if scene.count("road"):
        parts.append("a road")
    if not parts:
        objects = " with no visible objects"
    elif len(parts) == 1:
        objects = f" with {parts[0]}"
    else:
        objects = f" with {', '.join(parts[:-1])} and {parts[-1]}"
    return CAPTION.format(place=BACKGROUND_PHRASE[scene.background], objects=objects)


def qa_caption(rng: random.Random, sizes: Sizes, index: int) -> QA:
    bg = SCENE_CLASSES[index % len(SCENE_CLASSES)]
    scene = make_scene(rng, rng.choice(sizes), bg, _random_counts(rng), road=rng.random() < 0.3)
    caption = caption_of(scene)
    return QA("caption", "", Q_CAPTION, caption, caption, [scene])


def qa_multi(rng: random.Random, sizes: Sizes, index: int) -> QA:
    a = rng.choice(SCENE_CLASSES)
    b = a if index % 2 == 0 else rng.choice([c for c in SCENE_CLASSES if c != a])
    scenes = [make_scene(rng, rng.choice(sizes), bg, _random_counts(rng, 1, 2)) for bg in (a, b)]
    reasoning = R_MULTI.format(cls_a=a, cls_b=b)
    return QA("multi", VQA_TAG, Q_MULTI, "yes" if a == b else "no", reasoning, scenes)


def qa_text(rng: random.Random, sizes: Sizes, index: int) -> QA:
    kind = COUNTABLE_KINDS[index % len(COUNTABLE_KINDS)]
    answer = COLOUR_NAMES[kind]
    return QA("text", VQA_TAG, Q_TEXT_ONLY.format(kind=kind), answer, f"A {kind} is drawn in {answer}.", [])


Builder = Callable[[random.Random, Sizes, int], QA]
SFT_BUILDERS: dict[str, Builder] = {
    "sft_cls": qa_cls,
    "sft_presence": qa_presence,
    "sft_count": qa_count,
    "sft_comp": qa_comp,
    "sft_rural": qa_rural,
    "sft_vg": qa_vg,
    "sft_mc": qa_mc,
    "sft_multi_image": qa_multi,
    "sft_text_only": qa_text,
}
COT_BUILDERS: tuple[Builder, ...] = (qa_cls, qa_presence, qa_count, qa_comp, qa_rural, qa_vg, qa_mc)


def eval_builder(key: str) -> Builder:
    """The question builder of one benchmark (task key of BENCHMARKS)."""
    if key in CLS_CANDIDATES:
        return functools.partial(qa_cls, candidates=CLS_CANDIDATES[key])
    return {
        "vqa_HR-comp": qa_comp,
        "vqa_LR-comp": qa_comp,
        "vqa_HR-pre": functools.partial(qa_presence, kinds=COUNTABLE_KINDS),
        "vqa_LR-pre": qa_presence,
        "vqa_LR-rural": qa_rural,
        "rs_vg": qa_vg,
        "lhrs_bench": qa_mc,
    }[key]


def cot_count(counts: dict[str, int], builder: Builder) -> int:
    """CoT-SFT records of one task: its own `cot_<task>` count if the scale has one, else `cot_per_task`."""
    return counts.get("cot_" + builder.__name__.removeprefix("qa_"), counts["cot_per_task"])

"""The tokenizer corpus: representative texts of every template the demo data can contain.

The tiny-model builder (tinyrs_demo.tokenizer) trains its byte-level BPE on these, so every word of the data is a
few tokens at most. tests/test_demo_generated_data.py checks that the corpus covers every word the data holds.
"""

from __future__ import annotations

import random

from tinyrs_demo.questions import COT_BUILDERS, cot_answer, human_text, qa_caption, qa_multi, qa_text
from tinyrs_demo.scenes import TEST_SIZES
from tinyrs_demo.vocabulary import (
    BACKGROUND_LOOK,
    BACKGROUND_PHRASE,
    CLS_CANDIDATES,
    COLOUR_NAMES,
    COUNTABLE_KINDS,
    DEFAULT_SYSTEM_PROMPT,
    MC_SUFFIX,
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
    R_MC_EVIDENCE,
    R_PRESENT,
    REASONING_SYSTEM_PROMPT,
    SCENE_CLASSES,
    SHAPE_SINGULAR,
    SHAPES,
    TASK_TAGS,
)


def corpus_texts() -> list[str]:
    """Representative texts of every template the generator can emit, for training the tiny BPE tokenizer."""
    texts = [DEFAULT_SYSTEM_PROMPT, REASONING_SYSTEM_PROMPT, *TASK_TAGS, MC_SUFFIX, "<reasoning>", "</reasoning>"]
    texts += ["<answer>", "</answer>", "yes", "no", "rural", "urban", *SCENE_CLASSES, *QUADRANTS]
    for kind in OBJECT_KINDS:
        texts += [
            Q_PRESENCE.format(kind=kind),
            R_PRESENT.format(shapes=SHAPES[kind], plural=PLURALS[kind]),
            R_ABSENT.format(shapes=SHAPES[kind], plural=PLURALS[kind]),
            Q_TEXT_ONLY.format(kind=kind),
            f"A {kind} is drawn in {COLOUR_NAMES[kind]}.",
            Q_VG.format(kind=kind),
            SHAPE_SINGULAR[kind],
        ]
    for kind in COUNTABLE_KINDS:
        texts += [Q_COUNT.format(plural=PLURALS[kind]), Q_MC["quantity"].format(plural=PLURALS[kind])]
        texts += [Q_MC["location"].format(kind=kind), R_MC_EVIDENCE["color"].format(kind=kind, colour="red")]
        for other in COUNTABLE_KINDS:
            if other != kind:
                texts.append(Q_COMP.format(plural_a=PLURALS[kind], plural_b=PLURALS[other]))
    for candidates in CLS_CANDIDATES.values():
        texts.append(Q_CLS.format(classes=", ".join(candidates)))
    for bg in SCENE_CLASSES:
        colour, texture = BACKGROUND_LOOK[bg]
        texts += [R_CLS.format(colour=colour, texture=texture, cls=bg), BACKGROUND_PHRASE[bg]]
    texts += [Q_RURAL, Q_CAPTION, Q_MULTI, *Q_MC.values()]
    # Filled examples of every builder (questions, answers, reasoning, captions, boxes), as they appear in the data.
    rng = random.Random("tinyrs-demo:corpus")
    builders = [*COT_BUILDERS, qa_caption, qa_multi, qa_text]
    for i in range(40 * len(builders)):
        qa = builders[i % len(builders)](rng, TEST_SIZES, i // len(builders))
        texts += [human_text(qa), qa.answer, cot_answer(qa)]
        if qa.pixel_answer:
            texts.append(qa.pixel_answer)
    return texts

"""Contract between the three packages: the same fixture files and text conventions, read by each package's code.

The packages never import each other; they agree through docs/data-format.md. This test is where that agreement is
checked: one set of fixtures through all three readers, and the deliberately copied helpers (system prompt, answer
extraction, normalisation, box IoU) against one table of golden cases.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


def test_reasoning_system_prompt_is_one_string_everywhere():
    from tinyrs_demo import vocabulary as demo_vocabulary
    from tinyrs_eval import constants as eval_constants
    from tinyrs_grpo import text as grpo_text
    from tinyrs_sft import constants as sft_constants

    prompt = sft_constants.REASONING_SYSTEM_PROMPT
    assert prompt == grpo_text.REASONING_SYSTEM_PROMPT == eval_constants.REASONING_SYSTEM_PROMPT
    assert prompt == demo_vocabulary.REASONING_SYSTEM_PROMPT
    assert "<reasoning> reasoning process here </reasoning><answer> answer here </answer>" in prompt
    # The spec carries it verbatim, as does the shipped lmdeploy reasoning template.
    assert prompt in (REPO / "docs" / "data-format.md").read_text(encoding="utf-8")
    assert prompt in (REPO / "eval" / "configs" / "qwen2_thinking_template.json").read_text(encoding="utf-8")


def test_sft_reader_accepts_every_fixture_record():
    from tinyrs_sft.check_data import scan_records
    from tinyrs_sft.records import MediaPolicy, RecordSource

    for name in ("llava_list.json", "llava_list.jsonl"):
        source = RecordSource(FIXTURES / name)
        report = scan_records(source, MediaPolicy(image_folder=FIXTURES / "images"), verify_images=True)
        assert report.errors == [], report.errors
        assert report.total == len(report.good) == 4


def test_grpo_reader_accepts_the_fixture_rows():
    from tinyrs_grpo.data import load_grpo_dataset, normalize_row

    train = load_grpo_dataset(str(FIXTURES / "grpo_rows.jsonl"))["train"]
    assert len(train) == 4
    rows = [normalize_row(row, has_prompt="prompt" in train.column_names) for row in train]
    assert [row["solution"][0] for row in rows] == ["1", "2", "0", "1"]
    for row in rows:
        system, user = row["prompt"]
        assert system["role"] == "system" and user["role"] == "user"
        assert any(part.get("type") == "image" for part in user["content"])
        tag = row["problem"].split(" ", 1)[0]
        assert tag in ("{CLS}", "{VQA}", "{VG}") or row["solution"][0] == "0"


def test_eval_reader_accepts_the_fixture_root():
    from tinyrs_eval.benchmarks import BENCHMARKS, load_benchmark

    files = {p.name for p in (FIXTURES / "eval_root").glob("*.json")}
    loaded = {b.key: load_benchmark(FIXTURES / "eval_root", b) for b in BENCHMARKS.values() if b.file in files}
    assert set(loaded) == {"cls_aid", "vqa_LR-pre", "rs_vg", "lhrs_bench"}
    for key, samples in loaded.items():
        assert samples, key
        for sample in samples:
            assert sample.image_path.is_file(), sample.image_path


def test_sft_layout_matches_what_eval_and_grpo_send(tiny_model_dir):
    """The user turn SFT trains on equals the one evaluation (tinyrs style) and GRPO (built prompt) render."""
    from transformers import AutoProcessor

    from tinyrs_eval.prompts import build_query
    from tinyrs_grpo.data import build_prompt

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    question = "Is there a ship in the image? Answer yes or no."
    sft_human = "<image>\n{VQA} " + question  # the LLaVA record's human turn
    sft_text = re.sub(r"\n?<image>\n?", "", sft_human)
    eval_text = build_query("vqa", "<image>\n" + question, "tinyrs")
    assert eval_text == sft_text
    grpo_prompt = build_prompt(sft_text)
    rendered = processor.apply_chat_template(grpo_prompt, add_generation_prompt=True)
    assert "<|vision_start|><|image_pad|><|vision_end|>" + sft_text + "<|im_end|>" in rendered


# Golden cases for the helpers each package keeps its own copy of (docs/data-format.md 1.5-1.7).
EXTRACT_CASES = [
    ("<reasoning>r</reasoning><answer> Forest </answer>", "Forest"),  # answer block
    ("<answer>a</answer> then <answer>b</answer>", "b"),  # the last complete block wins
    ("<reasoning>r</reasoning> water", "water"),  # no block: text after </reasoning>
    ("  urban  ", "urban"),  # plain output
    ("<answer>unclosed", "<answer>unclosed"),  # an unclosed block is not an answer block
]
NORMALIZE_CASES = [("  Dense  Residential. ", "dense residential"), ("Yes...", "yes"), ("3.5", "3.5"), ("", "")]
IOU_CASES = [
    ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
    ((0, 0, 10, 10), (5, 0, 15, 10), 50 / 150),
    ((0, 0, 10, 10), (20, 20, 30, 30), 0.0),
    ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),  # touching edges: no overlap, no +1 pixel convention
]


@pytest.mark.parametrize(("text", "expected"), EXTRACT_CASES)
def test_answer_extraction_agrees(text, expected):
    from tinyrs_eval.metrics import extract_answer as eval_extract
    from tinyrs_grpo.text import extract_answer as grpo_extract

    assert grpo_extract(text) == eval_extract(text) == expected


@pytest.mark.parametrize(("text", "expected"), NORMALIZE_CASES)
def test_answer_normalisation_agrees(text, expected):
    from tinyrs_eval.metrics import normalize_answer as eval_normalize
    from tinyrs_grpo.text import normalize_answer as grpo_normalize

    assert grpo_normalize(text) == eval_normalize(text) == expected


@pytest.mark.parametrize(("a", "b", "expected"), IOU_CASES)
def test_box_iou_agrees(a, b, expected):
    from tinyrs_eval.metrics import box_iou as eval_iou
    from tinyrs_grpo.text import box_iou as grpo_iou

    assert grpo_iou(a, b) == pytest.approx(expected)
    assert eval_iou(a, b) == pytest.approx(expected)


def _demo_counts(scale: str) -> dict[str, int]:
    """The record counts the demo generator writes at ``scale``, from its SCALES table."""
    from tinyrs_demo.questions import COT_BUILDERS, SCALES, SFT_BUILDERS, cot_count

    counts = SCALES[scale]
    return {
        "SFT": sum(counts[key] for key in SFT_BUILDERS),
        "CoT-SFT": sum(cot_count(counts, b) for b in COT_BUILDERS),
        "pretraining": counts["pretrain"],
        "GRPO": (counts["grpo_train"], counts["grpo_test"]),
        "per benchmark": counts["eval_per_benchmark"],
    }


def _stated_counts(scale: str) -> dict[str, int]:
    """The counts docs/data-format.md section 5 states for ``scale``."""
    text = " ".join((REPO / "docs" / "data-format.md").read_text(encoding="utf-8").split())
    match = re.search(rf"`{scale}` \([a-z]+\) has (.*?) records per benchmark", text)
    assert match, f"docs/data-format.md no longer states the {scale} demo counts in the expected sentence"
    part = match.group(1)

    def number(pattern: str) -> int:
        found = re.search(pattern, part)
        assert found, (pattern, part)
        return int(found.group(1).replace(",", ""))

    grpo = re.search(r"GRPO ([\d,]+)/([\d,]+) rows", part)
    assert grpo, part
    return {
        "SFT": number(r"([\d,]+) SFT"),
        "CoT-SFT": number(r"([\d,]+) CoT-SFT"),
        "pretraining": number(r"([\d,]+) pretraining"),
        "GRPO": (int(grpo.group(1).replace(",", "")), int(grpo.group(2).replace(",", ""))),
        "per benchmark": number(r"and ([\d,]+)$"),
    }


@pytest.mark.parametrize("scale", ["small", "full"])
def test_docs_state_the_demo_counts_the_generator_writes(scale):
    assert _stated_counts(scale) == _demo_counts(scale)


def test_demo_count_formula_matches_the_written_small_data(demo_data_dir):
    """The formula above is what the generator really writes (checked on the small data the suite builds anyway)."""
    import json

    expected = _demo_counts("small")
    written = {name: len(json.loads((demo_data_dir / f"{file}.json").read_text())) for name, file in
               (("SFT", "sft"), ("CoT-SFT", "cot_sft"), ("pretraining", "pretrain"))}  # fmt: skip
    assert written == {k: expected[k] for k in written}
    assert len(json.loads((demo_data_dir / "eval" / "cls_AID.json").read_text())) == expected["per benchmark"]

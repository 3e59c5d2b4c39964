"""``tinyrs-eval infer`` and the pieces the chat shares with it: prompts as the benchmarks build them (also over
several turns, checked against the checkpoint's own chat template), reasoning/answer split, boxes, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from helpers import single_torch_thread
from tinyrs_eval import boxes, infer, interactive
from tinyrs_eval.constants import REASONING_SYSTEM_PROMPT
from tinyrs_eval.prompts import DEFAULT_TEMPLATE, build_query, load_template


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("infer-images")
    Image.new("RGB", (120, 80), (20, 90, 20)).save(folder / "a.png")
    Image.new("RGB", (60, 60), (200, 190, 120)).save(folder / "b.jpg")
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    with single_torch_thread():
        yield interactive.ChatModel(str(tiny_model_dir), max_new_tokens=10, device="cpu")


def test_json_for_one_image_and_for_a_folder(tiny_model_dir, images, capsys, one_thread):
    args = ["--model_name_or_path", str(tiny_model_dir), "--max_new_tokens", "6", "--device", "cpu"]
    assert (
        infer.main([*args, "--image", str(images / "a.png"), "--task", "vg", "--question", "<image>\nthe field"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"image", "size", "task", "query", "answer", "reasoning", "boxes", "raw", "malformed", "error"}
    assert out["size"] == [80, 120] and out["query"] == "{VG} the field" and out["error"] is None
    assert isinstance(out["raw"], str) and isinstance(out["boxes"], list)
    assert infer.main([*args, "--image", str(images), "--task", "cls", "--question", "What?", "--reasoning"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [Path(x["image"]).name for x in lines] == ["a.png", "b.jpg"] and lines[1]["size"] == [60, 60]
    assert all(x["query"] == "{CLS} What?" for x in lines)


def test_one_line_errors(tiny_model_dir, images, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    base = ["--question", "q", "--image", str(images / "a.png")]
    assert infer.main(["--model_name_or_path", "someone/not-downloaded", *base]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "someone/not-downloaded" in err and "hf download someone/not-downloaded" in err
    assert infer.main(["--model_name_or_path", str(tmp_path / "nope"), *base]) == 1
    assert "model folder not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert infer.main(["--model_name_or_path", str(tmp_path / "empty"), *base]) == 1
    assert "not a checkpoint folder (no config.json)" in capsys.readouterr().err
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    assert infer.main(["--model_name_or_path", str(tiny_model_dir), "--question", "q", "--image", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: image unreadable") and "Traceback" not in err
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("x")
    assert (
        infer.main(
            ["--model_name_or_path", str(tiny_model_dir), "--question", "q", "--image", str(tmp_path / "texts")]
        )
        == 1
    )
    assert "no image files" in capsys.readouterr().err
    # in a folder, an unreadable image is one record with its error; the others are answered
    assert infer.main(["--model_name_or_path", str(tiny_model_dir), "--question", "q", "--image", str(tmp_path),
                       "--max_new_tokens", "2"]) == 0  # fmt: skip
    (rec,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert rec["error"].startswith("image unreadable") and rec["answer"] == "" and rec["size"] is None


def test_prompts_match_the_benchmarks():
    question = "<image>\nIs there a road?"
    query = interactive.make_query("vqa", question)
    assert query == build_query("vqa", question, "tinyrs") == "{VQA} Is there a road?"
    assert interactive.render_conversation(DEFAULT_TEMPLATE, [], query) == DEFAULT_TEMPLATE.render(query)
    shipped = load_template(REPO / "eval" / "configs" / "qwen2_thinking_template.json")
    assert interactive.REASONING_TEMPLATE == shipped and shipped.meta_instruction == REASONING_SYSTEM_PROMPT
    assert interactive.make_query("free", "  describe it ") == "describe it"
    assert interactive.make_query("vg", "the tank", "qwen2vl").endswith("the tank <|object_ref_end|>")


def test_multi_turn_prompt_is_the_checkpoints_chat_template(model):
    history = [interactive.Turn("{VQA} Is there a road?", "yes")]
    ours = model.prompt(history, "{VQA} Is it rural?", reasoning=False)
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "You are a helpful assistant."}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "{VQA} Is there a road?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "yes"}]},
        {"role": "user", "content": [{"type": "text", "text": "{VQA} Is it rural?"}]},
    ]
    official = model.backend.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert ours == official


def test_stream_ends_with_the_generated_text(model, images):
    image = Image.open(images / "a.png").convert("RGB")
    prompt = model.prompt([], "{CLS} What is it?", reasoning=True)
    pieces = list(model.stream(image, prompt))
    assert pieces and pieces[-1] == model.generate(image, prompt)  # greedy: same text, token by token
    assert all(b.startswith(a) for a, b in zip(pieces, pieces[1:]))


def test_split_and_parse_output():
    assert interactive.split_output("<reasoning>look") == ("look", "")  # streaming: answer not begun
    assert interactive.split_output("<reasoning>look</reasoning><answer>for") == ("look", "for")
    assert interactive.split_output("<reasoning>a</reasoning><answer>[[0, 0, 500, 1000]]</answer>") == (
        "a", "[[0, 0, 500, 1000]]")  # fmt: skip
    out = interactive.parse_output("<answer>[[0, 0, 500, 1000]] [[900, 0, 1100, 100]]</answer>", (80, 120), "vg")
    assert out["answer"] == "[[0, 0, 500, 1000]] [[900, 0, 1100, 100]]" and out["reasoning"] == ""
    assert out["boxes"] == [
        {"grid": [0.0, 0.0, 500.0, 1000.0], "pixels": [0.0, 0.0, 60.0, 80.0], "outside": False},
        {"grid": [900.0, 0.0, 1100.0, 100.0], "pixels": [108.0, 0.0, 132.0, 8.0], "outside": True},
    ]
    assert interactive.parse_output("yes", (80, 120), "vqa")["boxes"] == []
    assert interactive.parse_output("<reasoning>cut", (80, 120), "vqa")["malformed"] is True


def test_draw_boxes_marks_a_box_past_the_edge():
    image = Image.new("RGB", (100, 50), (0, 0, 0))
    inside = boxes.draw_boxes(image, [[10, 10, 40, 40]])
    assert inside.size == (100, 50) and inside.getpixel((10, 25)) == boxes.PRED_COLOUR
    past = boxes.draw_boxes(image, [[80, 10, 150, 40]])
    assert past.size == (150, 50)  # enlarged to show the whole box, not clipped
    assert past.getpixel((149, 25)) == boxes.OUTSIDE_COLOUR and past.getpixel((120, 45)) != (0, 0, 0)
    thumb = boxes.draw_boxes(image, [[80, 10, 150, 40]], [[0, 0, 20, 20]], max_side=75)
    assert max(thumb.size) == 75 and thumb.getpixel((0, 5)) == boxes.GT_COLOUR

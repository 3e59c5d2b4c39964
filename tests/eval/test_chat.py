"""``tinyrs-eval chat`` driven as a browser would, through gradio_client: the app is started once for the module
on a free port with the tiny model; some tests swap in a scripted model to get known text (a box, a reasoning)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from helpers import free_port, single_torch_thread


gradio_client = pytest.importorskip("gradio_client")

from tinyrs_eval import chat  # noqa: E402
from tinyrs_eval.prompts import IMAGE_PLACEHOLDER  # noqa: E402


class ScriptedModel:
    """Streams a fixed text in a few pieces, building prompts with the real model; records the prompts."""

    def __init__(self, real, text: str, fail: bool = False):
        self.real, self.text, self.fail = real, text, fail
        self.prompt_style = real.prompt_style
        self.backend = real.backend
        self.prompts: list[str] = []

    def prompt(self, history, query, reasoning):
        return self.real.prompt(history, query, reasoning)

    def stream(self, image, prompt):
        self.prompts.append(prompt)
        if self.fail:
            raise RuntimeError("CUDA out of memory (scripted)")
        step = max(1, len(self.text) // 4)
        for end in range(step, len(self.text), step):
            yield self.text[:end]
        yield self.text


@pytest.fixture(scope="module")
def app(tiny_model_dir, tmp_path_factory):
    with single_torch_thread():
        slot = chat.ModelSlot(max_new_tokens=12, device="cpu")
        assert "ready" in slot.load(str(tiny_model_dir))
        port = free_port()
        demo = chat.build_app(slot, [])
        chat.launch(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
        client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False)
        yield {"slot": slot, "client": client, "real": slot.model, "url": f"http://127.0.0.1:{port}/"}
        demo.close()


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("chat-img") / "scene.png"
    Image.new("RGB", (200, 100), (30, 110, 40)).save(path)
    return path


@pytest.fixture
def scripted(app):
    """Install a scripted model for one test; the real one comes back afterwards."""

    def install(text: str, fail: bool = False) -> ScriptedModel:
        app["slot"].model = ScriptedModel(app["real"], text, fail)
        return app["slot"].model

    yield install
    app["slot"].model, app["slot"].error = app["real"], None


def _ask(client, image, task, reasoning, question, chat_value=()):
    job = client.submit(gradio_client.handle_file(str(image)), task, reasoning, question, list(chat_value),
                        api_name="/ask")  # fmt: skip
    final = job.result(timeout=120)
    return final, job.outputs()


def test_real_model_streams_an_answer(app, scene):
    client = app["client"]
    loaded = client.predict(gradio_client.handle_file(str(scene)), api_name="/load_image")
    assert "200×100 pixels" in loaded[1] and "ready" in loaded[1]
    final, outputs = _ask(client, scene, "vqa", False, "Is there a road?")
    conversation, reasoning, answer, _, raw, status, question = final
    assert len(outputs) >= 3  # streamed: several partial updates before the final one
    assert status.startswith("Done") and question == ""
    assert conversation[0]["role"] == "user" and conversation[0]["content"][0]["text"] == "{VQA} Is there a road?"
    assert raw and answer == raw.strip()  # no tags from an untrained model: the whole output is the answer
    partial = [o[4] for o in outputs if o[4]]
    assert all(raw.startswith(p) for p in partial) and len(set(partial)) >= 2


def test_grounding_draws_the_box(app, scene, scripted):
    scripted("[[250, 250, 750, 750]]")
    final, _ = _ask(app["client"], scene, "vg", False, "the field")
    conversation, _, answer, boxes_path, raw, status, _ = final
    assert answer == "[[250, 250, 750, 750]]" and raw == answer
    assert "[250, 250, 750, 750]" in status and "past the image edge" not in status
    drawn = Image.open(boxes_path).convert("RGB")
    assert drawn.size == (200, 100)
    red = (230, 30, 30)
    # 0-1000 grid to pixels: x 50..150, y 25..75 on a 200x100 image; the outline is red, the inside is not
    assert max(abs(a - b) for a, b in zip(drawn.getpixel((50, 50)), red)) < 40
    assert max(abs(a - b) for a, b in zip(drawn.getpixel((100, 25)), red)) < 40
    assert drawn.getpixel((100, 50)) == (30, 110, 40)


def test_box_past_the_edge_is_shown_not_clipped(app, scene, scripted):
    scripted("[[800, 500, 1200, 900]]")
    final, _ = _ask(app["client"], scene, "vg", False, "the tank")
    assert "1 past the image edge" in final[5]
    assert Image.open(final[3]).size[0] > 200  # the canvas grew to show the whole box


def test_reasoning_shown_apart_from_the_answer(app, scene, scripted):
    model = scripted("<reasoning>green texture, no roads</reasoning><answer>forest</answer>")
    final, outputs = _ask(app["client"], scene, "cls", True, "What is it?")
    conversation, reasoning, answer, boxes_path, raw, status, _ = final
    assert reasoning == "green texture, no roads" and answer == "forest" and boxes_path is None
    assert "<reasoning>" in raw
    thought = [m for m in conversation if (m.get("metadata") or {}).get("title") == "Reasoning"]
    assert len(thought) == 1 and conversation[-1]["content"][0]["text"] == "forest"
    assert any(o[1] and not o[2] for o in outputs)  # reasoning streamed before any answer
    assert "<answer> </answer> tags" in model.prompts[-1]  # the reasoning system prompt was used


def test_follow_up_keeps_image_and_history(app, scene, scripted):
    model = scripted("yes")
    client = app["client"]
    client.predict(gradio_client.handle_file(str(scene)), api_name="/load_image")  # new image: new conversation
    first, _ = _ask(client, scene, "vqa", False, "Is there a road?")
    second, _ = _ask(client, scene, "vqa", False, "Is it rural?", first[0])
    prompt = model.prompts[-1]
    assert (
        prompt.count(IMAGE_PLACEHOLDER) == 1
        and "{VQA} Is there a road?" in prompt
        and prompt.endswith("{VQA} Is it rural?<|im_end|>\n<|im_start|>assistant\n")
    )
    assert [m["role"] for m in second[0]] == ["user", "assistant", "user", "assistant"]


def test_errors_are_one_line_in_the_page(app, scene, scripted, tmp_path):
    client = app["client"]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    status = client.predict(gradio_client.handle_file(str(bad)), api_name="/load_image")[1]
    assert status.startswith("**Error:** cannot read the image bad.png") and "Traceback" not in status
    assert str(tmp_path) not in status
    final, _ = _ask(client, bad, "vqa", False, "q")
    assert final[5].startswith("**Error:** cannot read the image bad.png")
    status = client.predict(str(tmp_path / "missing-ckpt"), api_name="/load_model")
    assert "the model failed to load: model folder not found" in status and "Still using" in status
    final, _ = _ask(client, scene, "vqa", False, "still there?")  # the previous model still answers
    assert final[5].startswith("Done")
    scripted("", fail=True)
    final, _ = _ask(client, scene, "vqa", False, "q")
    assert final[5] == "**Error:** generation failed: RuntimeError: CUDA out of memory (scripted)"


def test_defaults_and_examples(tmp_path):
    args = chat.build_parser().parse_args(["--model_name_or_path", "x"])
    assert (args.server_name, args.server_port, args.share, args.reasoning) == ("127.0.0.1", 7860, False, False)
    images = tmp_path / "VG_DOIR_RSVG_test"
    images.mkdir()
    Image.new("RGB", (8, 8)).save(images / "a.png")
    record = {"image": "a.png", "conversations": [{"value": "<image>\nthe tank"}, {"value": "[1, 1, 4, 4]"}]}
    (tmp_path / "VG_DOIR_RSVG_test.json").write_text(json.dumps([record]))
    assert chat.example_rows(tmp_path) == [[str(images / "a.png"), "vg", "the tank"]]
    for name in ("cls_AID", "cls_SIRI_WHU"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / name / "c.png")
        cls = {"image": "c.png", "conversations": [{"value": "Classify"}, {"value": "forest"}]}
        (tmp_path / f"{name}.json").write_text(json.dumps([cls]))
    rows = chat.example_rows(tmp_path, limit=2)  # every task type before a second benchmark of one type
    assert [r[1] for r in rows] == ["cls", "vg"] and rows[0][0].endswith("cls_AID/c.png")
    assert chat.example_rows(None) == []


def test_demo_dir_picks_the_latest_stage(tmp_path):
    with pytest.raises(chat.EvalError, match="run `make demo` first"):
        chat.demo_checkpoint(tmp_path)
    for stage in ("base", "sft", "cot_sft"):
        (tmp_path / stage).mkdir()
        (tmp_path / stage / "config.json").write_text("{}")
    (tmp_path / "grpo").mkdir()  # a GRPO stage that never finished: no checkpoint
    assert chat.demo_checkpoint(tmp_path) == (tmp_path / "cot_sft", True)
    (tmp_path / "cot_sft" / "config.json").unlink()
    assert chat.demo_checkpoint(tmp_path) == (tmp_path / "sft", False)

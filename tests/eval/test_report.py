"""The HTML report on hand-made runs (no model): failure browser for every task type, mean row, differences,
LHRS-Bench per type and grounding per size tables, labels, learning curves, and the display fixes."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from tinyrs_eval import report
from tinyrs_eval.report import curves, figures, runs, text


def _image(path: Path, size=(100, 80), colour=(30, 120, 30)) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return str(path)


def _write_run(folder: Path, name: str, preds: dict[str, list[str]], images: Path, strict: dict[str, float]) -> Path:
    """A run folder like `tinyrs-eval run` writes: results.json and one JSONL per benchmark (2 records each)."""
    run_dir = folder / name
    run_dir.mkdir(parents=True)
    img = _image(images / "scene.png")
    specs = {
        "cls_aid": ("cls", "<image>\nClassify the image.", "forest"),
        "vqa_LR-pre": ("vqa", "Is there a road?<image>", "yes"),
        "rs_vg": ("bbox", "<image>\nthe tank", "[10, 10, 50, 40]"),
        "lhrs_bench": ("lhrsbench", "What colour is the roof?", "red"),
    }
    benchmarks = {}
    for key, (task, question, answer) in specs.items():
        lines = []
        for i, pred in enumerate(preds[key]):
            rec = {"index": i, "image": img, "size": [80, 100], "question": question, "query": question,
                   "answer": answer, "pred": pred, "error": None, "type": ["2", "5"]}  # fmt: skip
            from tinyrs_eval import metrics

            rec["extracted_answer"] = metrics.extract_answer(pred)
            rec["malformed"] = metrics.is_malformed(pred)
            rec["score"] = {m: metrics.sample_score(task, rec, m) for m in metrics.MODES}
            lines.append(json.dumps(rec))
        (run_dir / f"{key}.jsonl").write_text("\n".join(lines) + "\n")
        metric = "precision@0.5" if task == "bbox" else "accuracy"
        block = {metric: strict[key], "n": 2}
        if task == "bbox":
            block.update({"precision@0.5_S": None, "precision@0.5_M": strict[key], "precision@0.5_L": None})
        if task == "lhrsbench":
            block.update({"accuracy_color": strict[key], "accuracy_quantity": 0.25})
        benchmarks[key] = {"task_type": task, "n_samples": 2, "strict": block, "legacy": dict(block),
                           "malformed": 1, "errors": 0, "predictions": f"{name}/{key}.jsonl"}  # fmt: skip
    results = {"run_name": f"{name}-1a2b3c4d", "config": {"model_path": f"ckpt/{name}", "model_type": "hf",
               "prompt_style": "tinyrs", "reasoning_config": None, "max_new_tokens": 8},
               "world_size": 1, "timings": {"total_s": 1.0}, "benchmarks": benchmarks}  # fmt: skip
    (run_dir / "results.json").write_text(json.dumps(results))
    return run_dir


PREDS_A = {
    "cls_aid": ["forest", "desert \ufffd\ufffd bytes"],
    "vqa_LR-pre": ["[[1, 2, 3, 4]]", "<reasoning>hmm"],  # boxes for a yes/no question; a cut-off output
    "rs_vg": ["[[100, 125, 500, 500]]", "[[900, 900, 1400, 1300]]"],  # a hit; a box far past the image edge
    "lhrs_bench": ["blue", "red"],
}
PREDS_B = {"cls_aid": ["forest", "forest"], "vqa_LR-pre": ["yes", "no"], "rs_vg": ["[[100, 125, 500, 500]]"] * 2,
           "lhrs_bench": ["red", "red"]}  # fmt: skip


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("report-runs")
    a = _write_run(base, "sft", PREDS_A, base / "img", {"cls_aid": 0.5, "vqa_LR-pre": 0.0, "rs_vg": 0.5,
                                                         "lhrs_bench": 0.5})  # fmt: skip
    b = _write_run(base, "grpo", PREDS_B, base / "img", {"cls_aid": 1.0, "vqa_LR-pre": 0.5, "rs_vg": 1.0,
                                                          "lhrs_bench": 1.0})  # fmt: skip
    return a, b


@pytest.fixture(scope="module")
def page(two_runs, tmp_path_factory):
    a, b = two_runs
    out = tmp_path_factory.mktemp("report-out") / "report.html"
    assert report.main([str(a), str(b), "--output", str(out), "--label", f"SFT stage={a}"]) == 0
    return out.read_text(encoding="utf-8")


def _section(html: str, title: str) -> str:
    start = html.index(f">{title}</h2>")
    end = html.find("<h2", start)
    return html[start : end if end > 0 else None]


def test_failure_browser_covers_every_task_type(page):
    failures = _section(page, "Failures")
    for key, task in (("cls_aid", "cls"), ("vqa_LR-pre", "vqa"), ("rs_vg", "bbox"), ("lhrs_bench", "lhrsbench")):
        assert f'data-bench="{key}" data-task={task}' in failures, key
    # the wrong answers of run A are there (raw and extracted), the right ones are not
    assert "[[1, 2, 3, 4]]" in failures and "wrong of 2" in failures
    assert failures.count("class=card") == (1 + 2 + 1 + 1) + 1  # A: cls 1, vqa 2, vg 1, lhrs 1; B: vqa 1
    assert "<span class='flag mal'>malformed</span>" in failures  # "<reasoning>hmm" is cut short
    assert "data:image/jpeg;base64," in failures
    assert "<script>" in failures and "src='http" not in page and 'src="http' not in page


def test_display_fixes(page):
    failures = _section(page, "Failures")
    assert "&lt;image&gt;" not in failures and "<image>" not in failures  # placeholder removed from captions
    assert "\ufffd" not in page and "[?×2]" in failures  # undecodable bytes marked, not shown as �
    assert failures.count("box past image edge") == 1  # the [[900, 900, 1400, 1300]] box, flagged
    assert "overflow-wrap:anywhere" in page and ".scroll{max-width:100%;overflow-x:auto}" in page


def test_mean_row_deltas_and_tables(page):
    scores = _section(page, "Scores")
    mean_row = re.search(r"<tr class=mean>(.*?)</tr>", scores).group(1)
    assert "<td>37.50</td>" in mean_row and "<td>87.50</td>" in mean_row  # (50+0+50+50)/4, (100+50+100+100)/4
    deltas = _section(page, "Differences between consecutive runs")
    assert "grpo-1a2b3c4d − SFT stage" in deltas and "<td class=up>+50.00</td>" in deltas
    assert re.search(r"<tr class=mean><td>mean</td><td class=up>\+50.00</td>", deltas)
    lhrs = _section(page, "LHRS-Bench by question type")
    assert "<td>color</td><td>50.00 / 50.00</td><td>100.00 / 100.00</td>" in lhrs and "quantity" in lhrs
    sizes = _section(page, "Grounding by box size")
    assert "<td>M</td><td>50.00 / 50.00</td><td>100.00 / 100.00</td>" in sizes and "<td>S</td>" in sizes


def test_labels(page, two_runs, tmp_path):
    assert "<b>SFT stage</b>" in page and "sft-1a2b3c4d" in page  # the label shown, the run name kept in the list
    a, _ = two_runs
    assert report.main([str(a), "--label", f"x={tmp_path}", "--output", str(tmp_path / "r.html")]) == 2
    assert report.main([str(a), "--label", "no-equals", "--output", str(tmp_path / "r.html")]) == 2
    loaded = [runs.load_run(a), runs.load_run(a)]
    runs.apply_labels(loaded, [])
    assert [r["_label"] for r in loaded] == ["sft-1a2b3c4d", "sft-1a2b3c4d (2)"]


def _bar_pixels(png_b64: str, rgb=(31, 119, 180)) -> int:
    import numpy as np

    im = np.asarray(Image.open(io.BytesIO(base64.b64decode(png_b64))).convert("RGB")).astype(int)
    return int((np.abs(im - np.array(rgb)).max(axis=-1) < 8).sum())


def test_zero_score_bars_are_visible():
    def run(value):
        return {"_label": "r", "benchmarks": {"cls_aid": {"task_type": "cls", "strict": {"accuracy": value}}}}

    zero, missing = figures.metrics_figure([run(0.0)], "strict"), figures.metrics_figure([run(None)], "strict")
    assert _bar_pixels(zero) > _bar_pixels(missing) + 20  # the zero bar is drawn (the legend swatch is in both)


def test_text_helpers():
    assert text.clean_question("<image>\nWhat is it?") == "What is it?"
    assert text.show("a<b>\ufffd\ufffd\x01") == (
        "a&lt;b&gt;<span class=bad title='2 undecodable byte sequence(s)'>[?×2]</span>"
        "<span class=bad title='control character'>[U+0001]</span>"
    )
    assert text.show("abcdef", 3).startswith("abc<span class=more>")


def _fake_training(folder: Path) -> dict[str, Path]:
    sft = folder / "sft"
    sft.mkdir()
    log = [{"loss": 2.0 - 0.1 * s, "step": s, "learning_rate": 1e-5} for s in range(1, 6)]
    (sft / "trainer_state.json").write_text(json.dumps({"log_history": [*log, {"train_loss": 1.7, "step": 5}]}))
    grpo = folder / "grpo"
    grpo.mkdir()
    lines = [
        {"step": s, "loss": 0.0, "rewards/accuracy_reward/mean": 0.1 * s, "rewards/format_reward/mean": 0.5,
         "reward": 0.5 + 0.1 * s, "kl": 0.01 * s, "completions/mean_length": 40 - s}
        for s in (1, 2, 3)
    ]  # fmt: skip
    (grpo / "train_log.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    ckpt_only = folder / "cot_sft"
    (ckpt_only / "checkpoint-2").mkdir(parents=True)
    (ckpt_only / "checkpoint-10").mkdir()
    (ckpt_only / "checkpoint-2" / "trainer_state.json").write_text(json.dumps({"log_history": [log[0]]}))
    (ckpt_only / "checkpoint-10" / "trainer_state.json").write_text(json.dumps({"log_history": log[:4]}))
    empty = folder / "base"
    empty.mkdir()
    return {"sft": sft, "grpo": grpo, "cot_sft": ckpt_only, "base": empty}


def test_learning_curves(two_runs, tmp_path):
    folders = _fake_training(tmp_path)
    a, b = two_runs
    out = tmp_path / "r.html"
    args = [str(a), str(b), "--output", str(out)] + [f"--train={k}={v}" for k, v in folders.items()]
    assert report.main(args) == 0
    section = _section(out.read_text(), "Learning curves")
    blocks = dict(re.findall(r'<div class=curve data-stage="([^"]+)">(.*?)</div>(?=<div class=curve|$)', section))
    assert set(blocks) == {"sft", "grpo", "cot_sft", "base"}

    def series(block: str) -> dict[str, int]:
        return {name: int(n) for name, n in re.findall(r"<td class=series>([^<]+)</td><td>(\d+)</td>", block)}

    assert series(blocks["sft"]) == {"loss": 5}
    assert series(blocks["grpo"]) == {"loss": 3, "accuracy_reward": 3, "format_reward": 3, "reward (total)": 3,
                                      "kl": 3, "completions/mean_length": 3}  # fmt: skip
    assert series(blocks["cot_sft"]) == {"loss": 4}  # the newest checkpoint's state, not checkpoint-2's
    assert "checkpoint-10" in blocks["cot_sft"] and "no trainer_state.json or train_log.jsonl" in blocks["base"]
    assert "data:image/png;base64," in blocks["grpo"]
    assert report.main([str(a), "--output", str(out), "--train", f"x={tmp_path / 'missing'}"]) == 2


def test_no_training_folder_is_explained(page):
    section = _section(page, "Learning curves")
    assert "id=no-curves" in section and "--train STAGE=OUTPUT_DIR" in section
    assert curves.collect_series([]) == {}

"""Benchmarks registry, record validation, image paths, prompts, chat templates, CLI parsing and run names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinyrs_eval.benchmarks import BENCHMARKS, load_benchmark, parse_record, parse_tasks, preflight, resolve_image_path
from tinyrs_eval.config import RunConfig, make_run_name, parse_run_args, str2bool
from tinyrs_eval.constants import DEFAULT_SYSTEM_PROMPT, REASONING_SYSTEM_PROMPT
from tinyrs_eval.errors import BenchmarkError, ConfigError
from tinyrs_eval.prompts import ChatTemplate, build_query, load_template


EVAL_CONFIGS = Path(__file__).resolve().parents[2] / "eval" / "configs"

ORIGINAL_KEYS = {
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


def test_registry_matches_the_original():
    assert {k: (b.file, b.task_type) for k, b in BENCHMARKS.items()} == ORIGINAL_KEYS
    assert list(BENCHMARKS) == list(ORIGINAL_KEYS)


def test_parse_tasks():
    assert [b.key for b in parse_tasks("all")] == list(ORIGINAL_KEYS)
    assert [b.key for b in parse_tasks("rs_vg")] == ["rs_vg"]
    assert [b.key for b in parse_tasks("rs_vg, cls_aid,rs_vg")] == ["rs_vg", "cls_aid"]
    with pytest.raises(BenchmarkError, match="unknown --task cls_AIDX; choose 'all' or from: cls_aid .cls_AID."):
        parse_tasks("cls_AIDX")
    with pytest.raises(BenchmarkError):
        parse_tasks(" , ")


@pytest.mark.parametrize(
    ("value", "keys"),
    [
        ("cls_AID", ["cls_aid"]),  # the file stem (it used to be refused: only the key cls_aid worked)
        ("CLS_aid", ["cls_aid"]),  # any case
        ("cls_meter_ml", ["cls_METER_ML"]),  # keys themselves mix cases
        ("VG_DOIR_RSVG_test,LHRS-Bench.json", ["rs_vg", "lhrs_bench"]),  # stems, also with .json
        ("RSVQA_LR-presence_RSVQA, vqa_lr-pre", ["vqa_LR-pre"]),  # stem and key of one benchmark: once
        ("cls_siri_whu,cls_SIRI", ["cls_SIRI"]),
        ("ALL", list(ORIGINAL_KEYS)),
    ],
)
def test_task_accepts_keys_and_file_stems_in_any_case(value, keys):
    assert [b.key for b in parse_tasks(value)] == keys


def test_image_path_resolution(tmp_path):
    json_path = tmp_path / "cls_AID.json"
    assert resolve_image_path({"image": "a.png"}, json_path) == tmp_path / "cls_AID" / "a.png"
    assert resolve_image_path({"image": "a.png", "image_path": "RSVQA_LR/Images"}, json_path) == (
        tmp_path / "RSVQA_LR" / "Images" / "a.png"
    )
    assert resolve_image_path({"image": "a.png", "image_path": "/abs/dir"}, json_path) == Path("/abs/dir/a.png")


def _rec(**kw):
    rec = {
        "image": "a.png",
        "conversations": [{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "A"}],
    }
    rec.update(kw)
    return rec


@pytest.mark.parametrize(
    ("record", "task_type", "message"),
    [
        ("not a dict", "cls", "expected a JSON object"),
        (_rec(image=None), "cls", "'image' must be a non-empty string"),
        (_rec(conversations=[{"from": "human", "value": "q"}]), "cls", "'conversations'"),
        (_rec(conversations=[{"from": "human"}, {"from": "gpt", "value": "A"}]), "cls", r"conversations\[0\]"),
        (_rec(size=[0, 10]), "cls", "'size'"),
        (_rec(size="800x800"), "cls", "'size'"),
        (_rec(), "lhrsbench", "'type'"),
        (_rec(type=["12"]), "lhrsbench", "'type'"),
        (_rec(), "bbox", "grounding answer"),
        (_rec(id="x7", image=""), "cls", r"record 3 \(id x7\)"),
    ],
)
def test_malformed_record_names_file_and_index(record, task_type, message, tmp_path):
    path = tmp_path / "f.json"
    with pytest.raises(BenchmarkError, match=message) as info:
        parse_record(record, 3, path, task_type)
    assert f"{path} record 3" in str(info.value)


def test_record_fields(tmp_path):
    s = parse_record(_rec(size=[84, 112], type="5", id=9), 0, tmp_path / "LHRS-Bench.json", "lhrsbench")
    assert (s.size, s.types, s.sample_id, s.answer) == ((84, 112), ("5",), "9", "A")


def test_load_benchmark_limit_and_bad_json(tmp_path):
    bench = BENCHMARKS["cls_aid"]
    (tmp_path / "cls_AID.json").write_text(json.dumps([_rec(), _rec(), _rec()]))
    assert len(load_benchmark(tmp_path, bench, limit=2)) == 2
    (tmp_path / "cls_AID.json").write_text("{not json")
    with pytest.raises(BenchmarkError, match="cannot read benchmark JSON"):
        load_benchmark(tmp_path, bench)
    (tmp_path / "cls_AID.json").write_text(json.dumps({"records": []}))
    with pytest.raises(BenchmarkError, match="expected a JSON list"):
        load_benchmark(tmp_path, bench)


def test_preflight_reports_every_missing_file_and_folder(data_copy):
    (data_copy / "cls_AID.json").unlink()
    import shutil

    shutil.rmtree(data_copy / "VG_DOIR_RSVG_test")
    with pytest.raises(BenchmarkError) as info:
        preflight(data_copy, parse_tasks("all"))
    msg = str(info.value)
    assert "benchmark file not found for task cls_aid" in msg and "cls_AID.json" in msg
    assert "image folder not found for task rs_vg" in msg and "VG_DOIR_RSVG_test" in msg
    assert "\n" not in msg
    loaded = preflight(data_copy, parse_tasks("cls_METER_ML,lhrs_bench"), limit=2)
    assert {k: len(v) for k, v in loaded.items()} == {"cls_METER_ML": 2, "lhrs_bench": 2}


# -- prompts ----------------------------------------------------------------------------------------------------
QUERY_SNAPSHOT = {
    ("tinyrs", "cls"): "{CLS} Classify the scene.",
    ("tinyrs", "vqa"): "{VQA} Is there a road?",
    ("tinyrs", "bbox"): "{VG} the red car",
    ("tinyrs", "lhrsbench"): "What colour? A. red B. blue",
    ("qwen2vl", "cls"): "Classify the scene.",
    ("qwen2vl", "vqa"): "Is there a road?",
    ("qwen2vl", "bbox"): "Output the bounding box of the following object in the image. <|object_ref_start|> the red "
    "car <|object_ref_end|>",
    ("qwen2vl", "lhrsbench"): "What colour? A. red B. blue",
}
QUESTIONS = {
    "cls": "<image>\nClassify the scene.",
    "vqa": "<image>\nIs there a road?",
    "bbox": "<image>\nthe red car",
    "lhrsbench": "<image>\nWhat colour? A. red B. blue",
}


@pytest.mark.parametrize(("style", "task_type"), list(QUERY_SNAPSHOT))
def test_query_snapshot(style, task_type):
    # Byte for byte the original's query text (convt_qa + removal of "<image>\n"), stray spaces included.
    assert build_query(task_type, QUESTIONS[task_type], style) == QUERY_SNAPSHOT[(style, task_type)]


def test_query_other_image_tag_placements():
    assert build_query("cls", "Classify <image> this", "tinyrs") == "{CLS} Classify  this"
    assert build_query("cls", "Classify this\n<image>", "tinyrs") == "{CLS} Classify this"
    with pytest.raises(ValueError, match="prompt_style"):
        build_query("cls", "q", "vhm")


def test_shipped_templates():
    thinking = load_template(EVAL_CONFIGS / "qwen2_thinking_template.json")
    assert thinking.meta_instruction == REASONING_SYSTEM_PROMPT
    assert thinking.stop_words == ("<|im_end|>",)
    assert load_template(EVAL_CONFIGS / "qwen2_chat_template.json") == load_template(None)
    assert load_template(None).meta_instruction == DEFAULT_SYSTEM_PROMPT
    original = load_template(EVAL_CONFIGS / "qwen2_thinking_template_original.json")
    assert "<reasoning>" in original.meta_instruction and original.meta_instruction != REASONING_SYSTEM_PROMPT


def test_template_render_and_errors(tmp_path):
    t = ChatTemplate(meta_instruction="SYS")
    assert t.render("hi") == (
        "<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>hi"
        "<|im_end|>\n<|im_start|>assistant\n"
    )
    assert ChatTemplate(meta_instruction=None).render("hi", with_image=False).startswith("<|im_start|>user\nhi")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"meta_instructions": "typo"}))
    with pytest.raises(ConfigError, match="unknown chat template keys"):
        load_template(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_template(tmp_path / "missing.json")
    # lmdeploy's optional keys are accepted; null keeps the default
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"model_name": "x", "capability": "chat", "meta_instruction": "S", "eoh": None}))
    assert load_template(ok) == ChatTemplate(meta_instruction="S")


def test_template_matches_the_checkpoint_chat_template(tiny_model_dir):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    user = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "{VQA} q "}]}]
    system = [{"role": "system", "content": [{"type": "text", "text": REASONING_SYSTEM_PROMPT}]}]
    render = processor.apply_chat_template
    assert render(user, add_generation_prompt=True, tokenize=False) == load_template(None).render("{VQA} q ")
    thinking = load_template(EVAL_CONFIGS / "qwen2_thinking_template.json")
    assert render(system + user, add_generation_prompt=True, tokenize=False) == thinking.render("{VQA} q ")


# -- CLI ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "value"), [("true", True), ("False", False), ("1", True), ("0", False)])
def test_str2bool(text, value):
    assert str2bool(text) is value


def test_bool_flags_parse_properly():
    base = ["--model_name_or_path", "m"]
    cfg = parse_run_args([*base, "--do_sample", "false", "--force_inference", "False", "--use_cache", "0"])
    assert (cfg.do_sample, cfg.force_inference, cfg.use_cache) == (False, False, False)
    cfg = parse_run_args([*base, "--do_sample", "1", "--force_inference"])
    assert (cfg.do_sample, cfg.force_inference) == (True, True)
    with pytest.raises(SystemExit):
        parse_run_args([*base, "--do_sample", "maybe"])


def test_original_flags_are_accepted():
    cfg = parse_run_args(
        "--data_root d --output_dir o --model_type lmdeploy --model_path aybora/Qwen2-VL-TinyRS-R1 "
        "--force_inference true --task all --reasoning_config r.json --batch_size 4 --max_new_tokens 64 "
        "--temperature 0.7 --top_p 0.9 --do_sample true --limit 5 --dtype bfloat16".split()
    )
    assert (cfg.data_root, cfg.output_dir, cfg.model_type, cfg.task, cfg.limit) == ("d", "o", "lmdeploy", "all", 5)
    assert (cfg.batch_size, cfg.max_new_tokens, cfg.temperature, cfg.top_p, cfg.dtype) == (4, 64, 0.7, 0.9, "bfloat16")
    assert cfg.prompt_style == "tinyrs"


def test_run_name_separates_settings(tmp_path):
    def name(*extra, template=None):
        cfg = parse_run_args(["--model_name_or_path", str(tmp_path / "run1" / "checkpoint-100"), *extra])
        return make_run_name(cfg, template or load_template(None))

    base = name()
    assert base.startswith("run1_checkpoint-100-") and len(base.split("-")[-1]) == 8
    assert name() == base
    assert name("--batch_size", "1") == base  # batch size does not change the cache key
    assert name("--limit", "3") == base
    thinking = load_template(EVAL_CONFIGS / "qwen2_thinking_template.json")
    variants = {
        name("--prompt_style", "qwen2vl"),
        name(template=thinking),
        name("--max_new_tokens", "8"),
        name("--do_sample", "true"),
        name("--model_type", "lmdeploy"),
    }
    assert base not in variants and len(variants) == 5
    other = make_run_name(parse_run_args(["--model_name_or_path", str(tmp_path / "b" / "run1" / "checkpoint-100")]),
                          load_template(None))  # fmt: skip
    assert other != base  # same last two path parts, different checkpoint
    assert make_run_name(parse_run_args(["--model_name_or_path", "m", "--run_name", "mine"]), thinking) == "mine"
    with pytest.raises(SystemExit):  # refused while parsing (usage error, exit status 2)
        parse_run_args(["--model_name_or_path", "m", "--run_name", "a/b"])
    with pytest.raises(ConfigError):
        make_run_name(RunConfig(model_name_or_path="m", run_name="a/b"), thinking)


def test_cli_dispatch(capsys):
    from tinyrs_eval import cli

    with pytest.raises(SystemExit) as info:
        cli.main(["run", "--help"])
    assert info.value.code == 0 and "--prompt_style" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        cli.main(["report", "--help"])
    assert info.value.code == 0 and "RUN_DIR" in capsys.readouterr().out
    assert cli.main([]) == 2
    with pytest.raises(SystemExit):
        cli.main(["serve"])


def test_dry_run_loads_no_model(tiny_model_dir, eval_data_root, tmp_path, capsys):
    from tinyrs_eval import run

    out = tmp_path / "out"
    args = ["--data_root", str(eval_data_root), "--output_dir", str(out), "--dry_run", "true", "--log_level",
            "WARNING"]  # fmt: skip
    assert run.cli(["--model_name_or_path", str(tiny_model_dir), *args]) == 0
    report = capsys.readouterr().out
    assert (
        f"model_name_or_path: {tiny_model_dir}" in report and "run_name (cache key): " in report
    )  # effective settings
    assert "images of rs_vg: 10 present" in report and "all present" in report
    assert not out.exists()
    # a model folder that does not exist is a problem, not "all present" (the old dry run checked nothing)
    assert run.cli(["--model_name_or_path", str(tmp_path / "no-model"), *args]) == 1
    captured = capsys.readouterr()
    assert "neither an existing folder nor a hub id" in captured.err and "PROBLEM" in captured.out
    assert not out.exists()

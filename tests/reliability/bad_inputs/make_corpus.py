"""Write the bad-input corpus (deterministic, a few KiB): broken data files and media for the three stages.

    python tests/reliability/bad_inputs/make_corpus.py            # rewrites the files next to this script

Layout (every path in cases.json is relative to this folder):
    media/            images shared by the SFT and build-data cases (the --image_folder)
    sft/*.json[l]     LLaVA-style data files          -> tinyrs-sft check-data, tinyrs-sft train
    grpo/*.json[l]    GRPO JSON datasets (+ grpo/media) -> tinyrs-grpo check-data, tinyrs-grpo train
    build/*.json      LLaVA files for build-data       -> tinyrs-grpo build-data
    eval/<case>/      one data_root per case            -> tinyrs-eval run
    eval_images/      one data_root whose samples have broken images (counted as error samples, exit 0)
    cases.json        the case table: id, stage, entry points, flags, the expected problem text
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import zlib
from pathlib import Path

from PIL import Image


HERE = Path(__file__).resolve().parent
OK_TURNS = [{"from": "human", "value": "<image>\n{CLS} What is this?"}, {"from": "gpt", "value": "forest"}]
LONG = "x" * 100_000  # a 100k-character string


# ---------------------------------------------------------------------------------------------------------------
# media
# ---------------------------------------------------------------------------------------------------------------
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A ~100-byte PNG whose header claims ``width`` x ``height`` pixels (10 gigapixels by default)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def noisy_png(size: tuple[int, int]) -> bytes:
    """A PNG that does not compress to nothing (so cutting it in half really truncates pixel data)."""
    width, height = size
    pixels = bytes((x * 37 + y * 91 + (x * y) % 251) % 256 for y in range(height) for x in range(width * 3))
    buffer = io.BytesIO()
    Image.frombytes("RGB", size, pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def write_media(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    good = noisy_png((56, 56))
    (folder / "ok.png").write_bytes(good)
    big = noisy_png((112, 112))
    (folder / "truncated.png").write_bytes(big[: len(big) // 2])
    (folder / "zero.png").write_bytes(b"")
    (folder / "text.png").write_text("this is not an image\n")
    (folder / "bomb.png").write_bytes(bomb_png())
    (folder / "tall.png").write_bytes(noisy_png((2, 600)))  # aspect ratio 300 > 200


# ---------------------------------------------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------------------------------------------
def sft_rec(i: int = 0, image: object = "ok.png", turns: object = None, **extra: object) -> dict:
    rec: dict = {"id": f"s{i}", "conversations": OK_TURNS if turns is None else turns}
    if image is not None:
        rec["image"] = image
    rec.update(extra)
    return rec


def grpo_rec(solution: object = ("1", "forest", "", ""), image: object = "media/ok.png", **extra: object) -> dict:
    rec: dict = {
        "problem": "{CLS} What is this?",
        "solution": list(solution) if isinstance(solution, tuple) else solution,
    }
    if image is not None:
        rec["image"] = image
    rec.update(extra)
    return rec


def eval_rec(**over: object) -> dict:
    rec: dict = {
        "image": "ok.png",
        "conversations": [{"from": "human", "value": "<image>\nWhat is this?"}, {"from": "gpt", "value": "forest"}],
    }
    rec.update(over)
    return rec


SFT_ENTRIES = ["sft-check", "sft-train"]
GRPO_ENTRIES = ["grpo-check", "grpo-train"]


def build_cases() -> list[dict]:
    """Each case: id, stage, entries, data (file or data_root), content, flags, record, expect, what."""
    cases: list[dict] = []

    def sft(cid: str, what: str, content: object, expect: str, record: str | None = "record 1", **kw: object) -> None:
        if isinstance(content, list):  # one good record first, then the bad one
            content = [sft_rec(0), *content]
        elif isinstance(content, tuple):  # every record as given
            content = list(content)
        cases.append(dict(id=cid, stage="sft", entries=kw.pop("entries", SFT_ENTRIES), what=what,
                          data=f"sft/{cid}{kw.pop('suffix', '.json')}", content=content, record=record,
                          expect=expect, flags=kw.pop("flags", [])))  # fmt: skip

    sft("sft_invalid_json", "invalid JSON (cut short)", '[{"id": "s0", "conversations": [', "not valid JSON", None)
    sft("sft_top_level_object", "wrong top-level type (object)", {"id": "s0"}, "expected a JSON list", None)
    sft("sft_top_level_string", "wrong top-level type (string)", '"records"', "expected a JSON list", None)
    sft("sft_zero_byte_file", "zero-byte data file", "", "not valid JSON", None)
    sft("sft_empty_list", "empty record list", (), "no records", None)
    sft("sft_record_not_object", "record is a number", [7], "expected an object")
    sft("sft_missing_conversations", "missing 'conversations'", [{"id": "s1", "image": "ok.png"}], "'conversations'")
    sft("sft_conversations_not_list", "'conversations' is a string", [sft_rec(1, turns="hi")], "'conversations'")
    sft("sft_empty_conversations", "empty conversation", [sft_rec(1, turns=[])], "'conversations' must be a non-empty")
    sft("sft_odd_conversation", "human turn without answer", [sft_rec(1, turns=OK_TURNS[:1])], "human/gpt pairs")
    sft("sft_unknown_role", "unknown role 'bot'", [sft_rec(1, turns=[OK_TURNS[0], {"from": "bot", "value": "x"}])],
        "'from' must be one of")  # fmt: skip
    sft("sft_value_not_string", "turn value is a number", [sft_rec(1, turns=[OK_TURNS[0], {"from": "gpt", "value": 5}])],  # noqa: E501
        "'value' must be a string")  # fmt: skip
    sft("sft_not_alternating", "two human turns in a row", [sft_rec(1, turns=[OK_TURNS[0], OK_TURNS[0]])],
        "must alternate")  # fmt: skip
    sft("sft_system_not_first", "system turn in the middle",
        [sft_rec(1, turns=[OK_TURNS[0], {"from": "system", "value": "s"}, OK_TURNS[1]])], "system turn")  # fmt: skip
    sft("sft_empty_answer", "empty assistant answer",
        [sft_rec(1, turns=[OK_TURNS[0], {"from": "gpt", "value": "  "}])], "empty assistant answer")  # fmt: skip
    sft("sft_placeholder_no_image", "<image> placeholder but no image", [sft_rec(1, image=None)],
        "1 <image> placeholder(s) but 0 image(s)")  # fmt: skip
    sft("sft_image_no_placeholder", "image but no placeholder",
        [sft_rec(1, turns=[{"from": "human", "value": "What?"}, OK_TURNS[1]])], "0 <image> placeholder(s)")  # fmt: skip  # noqa: E501
    sft("sft_two_placeholders_one_image", "two placeholders, one image",
        [sft_rec(1, turns=[{"from": "human", "value": "<image><image>Q"}, OK_TURNS[1]])], "2 <image> placeholder(s)")  # fmt: skip  # noqa: E501
    sft("sft_image_wrong_type", "'image' is a number", [sft_rec(1, image=5)], "'image' must be a string")
    sft("sft_missing_image", "image file missing", [sft_rec(1, image="nope.png")], "image not found")
    sft("sft_zero_byte_image", "zero-byte image", [sft_rec(1, image="zero.png")], "unreadable image")
    sft("sft_truncated_image", "truncated PNG (found from its missing IEND chunk, no decode)",
        [sft_rec(1, image="truncated.png")], "file cut short")  # fmt: skip
    sft("sft_text_as_png", "text file named .png", [sft_rec(1, image="text.png")], "unreadable image")
    sft(
        "sft_decompression_bomb",
        "tiny PNG claiming 100000x100000",
        [sft_rec(1, image="bomb.png")],
        "decompression bomb",
    )
    sft("sft_absurd_aspect_ratio", "2x600 image (ratio 300)", [sft_rec(1, image="tall.png")], "aspect ratio")
    sft("sft_absolute_path", "absolute image path", [sft_rec(1, image="/etc/hostname")], "outside --image_folder")
    sft("sft_dotdot_path", "'..' escape from the image folder", [sft_rec(1, image="../sft/x.png")],
        "outside --image_folder")  # fmt: skip
    sft("sft_url_image", "remote URL as image", [sft_rec(1, image="http://example.com/a.png")], "remote media")
    sft("sft_long_image_name", "100k-character image name", [sft_rec(1, image=LONG + ".png")], "image path unusable")
    sft("sft_non_utf8", "Latin-1 bytes in a JSON file", b'[{"id": "s0", "conversations": [{"from": "human", '
        b'"value": "caf\xe9"}]}]', "not UTF-8", None)  # fmt: skip
    sft("sft_jsonl_bad_line", "JSONL with a broken line", "JSONL", "not valid JSON", "record 1", suffix=".jsonl")

    def grpo(cid: str, what: str, content: object, expect: str, record: str | None = "row 1", **kw: object) -> None:
        if isinstance(content, list):  # one good row first, then the bad one
            content = [grpo_rec(), *content]
        elif isinstance(content, tuple):  # every row as given
            content = list(content)
        cases.append(dict(id=cid, stage="grpo", entries=kw.pop("entries", GRPO_ENTRIES), what=what,
                          data=f"grpo/{cid}{kw.pop('suffix', '.json')}", content=content, record=record,
                          expect=expect, flags=kw.pop("flags", [])))  # fmt: skip

    grpo("grpo_invalid_json", "invalid JSON", '[{"problem": ', "invalid JSON", None)
    grpo("grpo_top_level_object", "wrong top-level type", {"problem": "p"}, "expected a JSON list", None)
    grpo("grpo_record_not_object", "record is a string", ["row"], "expected an object", "record 1")
    ok_image = {"image": "media/ok.png"}
    grpo("grpo_missing_solution", "no 'solution' column", ({"problem": "p", **ok_image}, {"problem": "q", **ok_image}),
         "missing column", None)  # fmt: skip
    grpo("grpo_solution_not_list", "'solution' is a string in every row",
         (grpo_rec(solution="yes"), grpo_rec(solution="no")), "malformed solution", "row 0")  # fmt: skip
    grpo("grpo_solution_too_short", "solution with one field", [grpo_rec(solution=("1",))], "malformed solution")
    grpo("grpo_unknown_answer_type", "answer type 7", [grpo_rec(solution=("7", "x", "", ""))], "unknown answer_type")
    grpo("grpo_box_letters", "box with letters", [grpo_rec(solution=("2", "[a, b, c, d]", "", ""))],
         "without a valid [x1, y1, x2, y2] box")  # fmt: skip
    grpo("grpo_box_three_numbers", "box with three numbers", [grpo_rec(solution=("2", "[1, 2, 3]", "", ""))],
         "without a valid [x1, y1, x2, y2] box")  # fmt: skip
    grpo("grpo_box_inverted", "box with x2 < x1", [grpo_rec(solution=("2", "[400, 400, 100, 100]", "", ""))],
         "without a valid [x1, y1, x2, y2] box")  # fmt: skip
    grpo("grpo_empty_exact_answer", "exact answer empty", [grpo_rec(solution=("1", "", "", ""))], "empty answer")
    grpo("grpo_empty_problem", "empty problem", [grpo_rec(problem="  ")], "empty problem")
    grpo("grpo_problem_not_string", "problem is a number in every row", (grpo_rec(problem=5), grpo_rec(problem=6)),
         "'problem' must be a string", "row 0")  # fmt: skip
    grpo("grpo_problem_mixed_types", "problem is a number in one row", [grpo_rec(problem=5)], "'problem' is a int",
         "record 1")  # fmt: skip
    grpo("grpo_missing_image", "image file missing", [grpo_rec(image="media/nope.png")], "undecodable image")
    grpo("grpo_zero_byte_image", "zero-byte image", [grpo_rec(image="media/zero.png")], "undecodable image")
    grpo("grpo_truncated_image", "truncated PNG", [grpo_rec(image="media/truncated.png")], "undecodable image")
    grpo("grpo_text_as_png", "text file named .png", [grpo_rec(image="media/text.png")], "undecodable image")
    grpo("grpo_decompression_bomb", "tiny PNG claiming 100000x100000", [grpo_rec(image="media/bomb.png")],
         "DecompressionBomb")  # fmt: skip
    grpo("grpo_absurd_aspect_ratio", "2x600 image", [grpo_rec(image="media/tall.png")], "aspect ratio")
    grpo("grpo_dotdot_image", "'..' escape from the dataset folder", [grpo_rec(image="../media/ok.png")],
         "points outside", "record 1")  # fmt: skip
    grpo("grpo_absolute_image", "absolute image path", [grpo_rec(image="/etc/hostname")], "points outside", "record 1")
    grpo("grpo_bad_base64", "no image path and invalid base64 copy",
         [grpo_rec(image=None, solution=("1", "x", "", "%%%not base64%%%"))], "not valid base64", "record 1")  # fmt: skip  # noqa: E501
    grpo("grpo_bad_prompt", "'prompt' is a string", [grpo_rec(prompt="hello")], "'prompt' must be", "record 1")
    grpo("grpo_refused_column", "a 'messages' column", (grpo_rec(messages="x"), grpo_rec(messages="y")), "are refused",
         None)  # fmt: skip
    grpo("grpo_non_utf8", "Latin-1 bytes", b'[{"problem": "caf\xe9"}]', "not UTF-8", None)
    grpo("grpo_long_image_name", "100k-character image name", [grpo_rec(image="media/" + LONG + ".png")],
         "undecodable image")  # fmt: skip
    grpo("grpo_jsonl_bad_line", "JSONL with a broken line", "JSONL", "invalid JSON", "line 2", suffix=".jsonl")

    def build(cid: str, what: str, records: list, expect: str, record: str = "record 1") -> None:
        cases.append(dict(id=cid, stage="grpo", entries=["grpo-build"], what=what, data=f"build/{cid}.json",
                          content=[sft_rec(0), *records], record=record, expect=expect, flags=[]))  # fmt: skip

    build("build_two_images", "record with two images", [sft_rec(1, image=["ok.png", "ok.png"])], "2 images")
    build("build_no_answer", "human turn without gpt turn", [sft_rec(1, turns=OK_TURNS[:1])], "needs a human turn")
    build("build_dotdot_image", "'..' escape from --image_folder", [sft_rec(1, image="../build/x.png")],
          "points outside --image_folder")  # fmt: skip
    build("build_unknown_answer_type", "explicit answer_type 9", [sft_rec(1, answer_type="9")], "unknown answer_type")

    def ev(cid: str, what: str, content: object, expect: str, record: str | None = "record 1", file: str = "cls_AID.json",  # noqa: E501
           task: str = "cls_aid") -> None:  # fmt: skip
        if isinstance(content, list):  # one good record of the benchmark's kind first
            good = {"rs_vg": eval_rec(conversations=[{"from": "human", "value": "the tank"},
                                                     {"from": "gpt", "value": "[1, 2, 30, 40]"}]),
                    "lhrs_bench": eval_rec(type=["1"])}.get(task, eval_rec())  # fmt: skip
            content = [good, *content]
        cases.append(dict(id=cid, stage="eval", entries=["eval-run"], what=what, data=f"eval/{cid}/{file}",
                          content=content, record=record, expect=expect, flags=["--task", task]))  # fmt: skip

    ev("eval_invalid_json", "invalid JSON", '[{"image": ', "cannot read benchmark JSON", None)
    ev("eval_top_level_object", "wrong top-level type", {"image": "ok.png"}, "expected a JSON list", None)
    ev("eval_record_not_object", "record is a list", [["ok.png"]], "expected a JSON object")
    ev("eval_missing_image_field", "no 'image'", [{"conversations": eval_rec()["conversations"]}], "'image' must be")
    ev("eval_image_path_not_string", "'image_path' is a number", [eval_rec(image_path=3)], "'image_path' must be")
    ev("eval_one_turn", "conversation without answer", [eval_rec(conversations=eval_rec()["conversations"][:1])],
       "'conversations' must be a list")  # fmt: skip
    ev("eval_value_not_string", "question value is null",
       [eval_rec(conversations=[{"from": "human", "value": None}, {"from": "gpt", "value": "x"}])], "no string 'value'")  # fmt: skip  # noqa: E501
    ev("eval_bad_size", "size [0, -1]", [eval_rec(size=[0, -1])], "'size' must be [height, width]")
    ev("eval_bbox_letters", "grounding answer with letters",
       [eval_rec(conversations=[{"from": "human", "value": "the tank"}, {"from": "gpt", "value": "[a, b, c, d]"}])],
       "is not a list of [x1, y1, x2, y2] boxes", file="VG_DOIR_RSVG_test.json", task="rs_vg")  # fmt: skip
    ev("eval_bbox_three_numbers", "grounding answer with three numbers",
       [eval_rec(conversations=[{"from": "human", "value": "the tank"}, {"from": "gpt", "value": "[1, 2, 3]"}])],
       "is not a list of [x1, y1, x2, y2] boxes", file="VG_DOIR_RSVG_test.json", task="rs_vg")  # fmt: skip
    ev("eval_lhrs_unknown_type", "LHRS type 12", [eval_rec(type=["12"])], "'type' must be a list of LHRS-Bench",
       file="LHRS-Bench.json", task="lhrs_bench")  # fmt: skip
    ev("eval_non_utf8", "Latin-1 bytes", b'[{"image": "caf\xe9.png"}]', "cannot read benchmark JSON", None)
    ev("eval_missing_image_folder", "image folder missing", [eval_rec(image_path="no_such_folder")],
       "image folder not found", None)  # fmt: skip
    cases[-1]["names"] = "no_such_folder"  # a data_root problem: the message names the missing folder and the task
    return cases


EVAL_IMAGE_CASES = {  # file name in eval_images/cls_AID/ -> expected error text of that sample
    "missing.png": "image not found",
    "zero.png": "image unreadable",
    "truncated.png": "image unreadable",
    "text.png": "image unreadable",
    "bomb.png": "image too large",
    "tall.png": "aspect ratio",
}


def write_case(case: dict) -> None:
    path = HERE / case["data"]
    path.parent.mkdir(parents=True, exist_ok=True)
    content = case.pop("content")
    if content == "JSONL":
        good = grpo_rec() if case["stage"] == "grpo" else sft_rec(0)
        path.write_text(json.dumps(good) + "\n" + '{"id": "s1", "conversations": [\n')
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content))
    if case["stage"] == "eval":
        folder = path.parent / Path(case["data"]).stem
        folder.mkdir(exist_ok=True)
        (folder / "ok.png").write_bytes((HERE / "media" / "ok.png").read_bytes())


def main() -> None:
    for sub in ("media", "sft", "grpo", "build", "eval", "eval_images"):
        shutil.rmtree(HERE / sub, ignore_errors=True)
    write_media(HERE / "media")
    shutil.copytree(HERE / "media", HERE / "grpo" / "media")
    cases = build_cases()
    for case in cases:
        write_case(case)
    # eval samples with broken images: one good sample first, then one per kind of broken image
    root = HERE / "eval_images"
    (root / "cls_AID").mkdir(parents=True)
    shutil.copy(HERE / "media" / "ok.png", root / "cls_AID" / "ok.png")
    records = [eval_rec()]
    for name in EVAL_IMAGE_CASES:
        if name != "missing.png":
            shutil.copy(HERE / "media" / name, root / "cls_AID" / name)
        records.append(eval_rec(image=name))
    (root / "cls_AID.json").write_text(json.dumps(records))
    (root / "expected_errors.json").write_text(json.dumps(EVAL_IMAGE_CASES, indent=1) + "\n")
    (HERE / "cases.json").write_text(json.dumps(cases, indent=1) + "\n")


if __name__ == "__main__":
    main()

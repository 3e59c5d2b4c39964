"""Code that the packages cannot share (they never import each other) is copied; the copies must stay identical."""

from __future__ import annotations

from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]

COPIES = {
    "imagecheck.py": [
        "sft/tinyrs_sft/imagecheck.py",
        "grpo/tinyrs_grpo/imagecheck.py",
        "eval/tinyrs_eval/imagecheck.py",
    ],
    "cliargs.py": [
        "sft/tinyrs_sft/cliargs.py",
        "grpo/tinyrs_grpo/cliargs.py",
        "eval/tinyrs_eval/cliargs.py",
    ],
}


def body(path: Path) -> str:
    """The file without its leading header comment (lines starting with '#' before the first other line)."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = 0
    while start < len(lines) and lines[start].startswith("#"):
        start += 1
    return "".join(lines[start:])


def test_body_strips_only_the_header(tmp_path):
    one, two = tmp_path / "one.py", tmp_path / "two.py"
    one.write_text("# copy A\nx = 1\n# kept\n")
    two.write_text("# copy B\n# second header line\nx = 1\n# kept\n")
    assert body(one) == body(two) == "x = 1\n# kept\n"
    two.write_text("# copy B\nx = 2\n# kept\n")
    assert body(one) != body(two)


@pytest.mark.parametrize("name", sorted(COPIES))
def test_copies_are_identical_below_the_header(name):
    paths = [ROOT / p for p in COPIES[name]]
    bodies = {str(p.relative_to(ROOT)): body(p) for p in paths}
    reference = bodies[COPIES[name][0]]
    assert reference.strip(), f"{COPIES[name][0]} is empty"
    differing = [p for p, text in bodies.items() if text != reference]
    assert not differing, f"{differing} differ from {COPIES[name][0]}: copy it over again"


def test_imagecheck_uses_no_package_imports():
    text = body(ROOT / COPIES["imagecheck.py"][0])
    for package in ("tinyrs_sft", "tinyrs_grpo", "tinyrs_eval", "PIL", "numpy", "torch"):
        assert f"import {package}" not in text and f"from {package}" not in text

"""Every package reads a boolean flag with the same words: those of TRL's parser (transformers' string_to_bool)."""

from __future__ import annotations

import argparse

import pytest
from transformers.hf_argparser import string_to_bool

from tinyrs_eval.cliargs import str2bool as eval_bool
from tinyrs_grpo.cliargs import str2bool as grpo_bool
from tinyrs_sft.cliargs import str2bool as sft_bool


WORDS = ["true", "True", "TRUE", "t", "T", "yes", "Y", "1", "false", "False", "f", "no", "N", "0", "on", "off", "2"]


def _reference(word: str) -> bool | None:
    try:
        return string_to_bool(word)
    except (argparse.ArgumentTypeError, ValueError):
        return None


def _ours(parse, word: str) -> bool | None:
    try:
        return parse(word)
    except (argparse.ArgumentTypeError, ValueError):
        return None


@pytest.mark.parametrize("parse", [sft_bool, eval_bool, grpo_bool], ids=["sft", "eval", "grpo"])
def test_boolean_words_match_trl(parse):
    assert {w: _ours(parse, w) for w in WORDS} == {w: _reference(w) for w in WORDS}

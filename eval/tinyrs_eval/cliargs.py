# Copied verbatim into tinyrs_sft/cliargs.py and tinyrs_eval/cliargs.py (the packages never import each other);
# tests/test_copies.py keeps the copies identical below this header.
"""Command-line conventions shared by the TinyRS console scripts.

- Booleans take ``true/false/1/0/yes/no`` in any case (a bare flag means true).
- The seed README's flag names stay accepted as aliases of TRL's names (``--model_id`` -> ``--model_name_or_path``);
  an alias is rewritten to its canonical name and logged once, on the first process.
- Unknown flags and abbreviations are refused, with the nearest known flag suggested.
- Exit status 2 for a usage error (the command line or a recipe), 1 for bad data or a runtime failure.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any


EXIT_USAGE = 2
EXIT_FAILURE = 1

# The words TRL's parser (transformers' string_to_bool) takes, so that every flag of every package reads alike.
TRUE_WORDS = frozenset({"true", "t", "1", "yes", "y"})
FALSE_WORDS = frozenset({"false", "f", "0", "no", "n"})


class UsageError(ValueError):
    """A bad command line or recipe: reported in one line, exit status 2."""


def str2bool(value: str | bool) -> bool:
    """Parse true/false/1/0/yes/no (any case)."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false/1/0/yes/no), got {value!r}")


BOOL_FLAG: dict[str, Any] = {"type": str2bool, "nargs": "?", "const": True, "metavar": "BOOL"}
"""``add_argument(..., **BOOL_FLAG)``: ``--flag``, ``--flag true``, ``--flag False``, ``--flag 0`` all work."""


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean --x?)`` for the closest known flag, or an empty string."""
    close = difflib.get_close_matches(name, sorted(set(known)), n=1, cutoff=0.6)
    if not close:
        prefixed = sorted(k for k in set(known) if k.startswith(name) and len(name) > 2)
        close = prefixed[:1]
    return f" (did you mean {close[0]}?)" if close else ""


def unknown_flags_message(extras: list[str], known: Iterable[str]) -> str:
    """One line for the arguments no parser took, with a suggestion per unknown flag."""
    known = list(known)
    flags = [e.split("=", 1)[0] for e in extras if e.startswith("-")]
    if not flags:
        return f"unexpected arguments: {' '.join(extras)}"
    return "unknown arguments: " + ", ".join(f"{flag}{did_you_mean(flag, known)}" for flag in flags)


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") in ("", "0")


def rewrite_aliases(argv: list[str], aliases: Mapping[str, str], logger: logging.Logger) -> list[str]:
    """Replace alias flags (``--model_id X``, ``--model_id=X``) by their canonical name, logging each alias once.

    Raises:
        UsageError: an alias and its canonical flag are both given.
    """
    out: list[str] = []
    used: dict[str, str] = {}
    for token in argv:
        flag, eq, value = token.partition("=")
        if token.startswith("--") and flag in aliases:
            used.setdefault(flag, aliases[flag])
            token = aliases[flag] + eq + value
        out.append(token)
    given = {t.partition("=")[0] for t in argv if t.startswith("--")}
    for alias, canonical in used.items():
        if canonical in given:
            raise UsageError(f"{alias} and {canonical} are the same option (the first is an alias): give one")
        log_alias(alias, canonical, logger)
    return out


def canonical_keys(mapping: Mapping[str, Any], aliases: Mapping[str, str], source: str, logger: logging.Logger):
    """The keys of a recipe with alias keys (``model_id``) renamed to their canonical name (``model_name_or_path``).

    Raises:
        UsageError: a key and its alias are both present.
    """
    plain = {a.lstrip("-"): c.lstrip("-") for a, c in aliases.items()}
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = plain.get(key, key)
        if name != key:
            if name in mapping:
                raise UsageError(f"{source}: {key} and {name} are the same setting (the first is an alias): give one")
            log_alias(key, name, logger, source)
        out[name] = value
    return out


def log_alias(alias: str, canonical: str, logger: logging.Logger, source: str | None = None) -> None:
    if _is_main_process():
        where = f"{source}: " if source else ""
        logger.warning("%s%s is an alias of %s", where, alias, canonical)


class StrictArgumentParser(argparse.ArgumentParser):
    """``argparse`` without abbreviations; unknown flags are refused with the nearest known flag suggested."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def known_flags(self) -> list[str]:
        return [s for action in self._actions for s in action.option_strings if s.startswith("--")]

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(unknown_flags_message(extras, self.known_flags()))
        return ns

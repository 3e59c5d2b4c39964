"""Command-line flags read the same way by every ``tinyrs-grpo`` subcommand.

- Booleans: ``--flag`` alone, or ``--flag VALUE`` with VALUE one of yes/no, true/false, t/f, y/n, 1/0 in any case:
  exactly what TRL's parser (``transformers.HfArgumentParser``) accepts for ``train``, so ``check-data`` and
  ``build-data`` take the same words.
- No abbreviations: ``--verify`` is not ``--verify_images`` (argparse would accept a unique prefix by default, and a
  prefix that is unique today can become ambiguous when a flag is added).
- An unknown flag (or a recipe key) is refused in one line with the closest known name: ``unknown flag
  --learning_rat (did you mean --learning_rate?)``; exit 2.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterable, Sequence
from typing import Any

from trl import TrlParser

from tinyrs_grpo import __version__


TRUE_WORDS = ("yes", "true", "t", "y", "1")
FALSE_WORDS = ("no", "false", "f", "n", "0")


class FlagError(ValueError):
    """A command line that cannot be parsed (exit 2, one line)."""


def parse_bool(value: str | bool) -> bool:
    """A boolean flag value, read as TRL reads it (yes/no, true/false, t/f, y/n, 1/0; any case).

    Raises:
        argparse.ArgumentTypeError: for any other word.
    """
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false, yes/no, 1/0, t/f, y/n), got {value!r}")


def suggestion(name: str, known: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the known name that ``name`` most likely meant, or ``""``."""
    known = sorted(set(known))
    starts = [k for k in known if k.startswith(name)]  # what argparse would have taken as an abbreviation
    if len(starts) == 1:
        matches = starts
    else:
        matches = difflib.get_close_matches(name, known, n=1, cutoff=0.6) or starts[:3]
    return f" (did you mean {' or '.join(matches)}?)" if matches else ""


def unknown_flags_message(rest: Sequence[str], known: Iterable[str]) -> str:
    """One line naming the first thing argparse could not use: an unknown flag (with a hint) or a stray value."""
    known = list(known)
    for item in rest:
        if item.startswith("-") and not _is_number(item):
            flag = item.split("=", 1)[0]
            return f"unknown flag {flag}{suggestion(flag, known)}"
    return f"unexpected value {rest[0]!r} (a flag before it takes fewer values)"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    # argparse keeps its actions in ``_actions``; TRL's own TrlParser reads it the same way.
    return [flag for action in parser._actions for flag in action.option_strings]


class FlagParser(argparse.ArgumentParser):
    """argparse for ``check-data`` / ``build-data``: no abbreviations, one-line errors with a hint, ``--version``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_abbrev=False, **kwargs)
        self.add_argument("--version", action="version", version=f"tinyrs-grpo {__version__}")

    def add_bool(self, flag: str, help: str) -> None:  # noqa: A002 - argparse's own keyword
        """A boolean flag: ``--flag`` alone is true, ``--flag VALUE`` takes the words of ``parse_bool``."""
        self.add_argument(flag, type=parse_bool, nargs="?", const=True, default=False, metavar="BOOL", help=help)

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        parsed, rest = self.parse_known_args(args, namespace)
        if rest:
            self.error(unknown_flags_message(rest, option_strings(self)))
        return parsed

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class GRPOParser(TrlParser):
    """TRL's parser for ``tinyrs-grpo train`` with the rules above: errors raise ``FlagError`` (one line, exit 2)."""

    def __init__(self, dataclass_types: Any, prog: str = "tinyrs-grpo train") -> None:
        super().__init__(dataclass_types, prog=prog, allow_abbrev=False)

    def parse(self, args: Sequence[str]) -> tuple[Any, ...]:
        """``parse_args_and_config`` (``--config recipe.yaml``, flags win), refusing unknown flags and recipe keys."""
        args = list(args)
        if args and args[-1] == "--config":
            raise FlagError("--config needs a recipe file (--config grpo/configs/tinyrs_r1.yaml)")
        *parsed, config_rest, args_rest = self.parse_args_and_config(
            args=args, return_remaining_strings=True, separate_remaining_strings=True
        )
        if config_rest:
            config = args[args.index("--config") + 1]
            key = config_rest[0].removeprefix("--")
            keys = [action.dest for action in self._actions]
            raise FlagError(f"{config}: unknown key {key!r}{suggestion(key, keys)}")
        if args_rest:
            raise FlagError(unknown_flags_message(args_rest, [*option_strings(self), "--config"]))
        return tuple(parsed)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise FlagError(message)

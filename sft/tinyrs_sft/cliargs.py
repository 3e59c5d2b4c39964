# One of three identical copies: tinyrs_sft/cliargs.py, tinyrs_grpo/cliargs.py, tinyrs_eval/cliargs.py (the packages
# never import each other); tests/test_copies.py keeps them identical below this header.
"""Command-line conventions shared by the TinyRS console scripts (``tinyrs-sft``, ``tinyrs-grpo``, ``tinyrs-eval``).

- Booleans take the words of TRL's parser (transformers' ``string_to_bool``) in any case; a bare flag means true.
- The seed README's flag names stay accepted as aliases of TRL's names (``--model_id`` -> ``--model_name_or_path``);
  an alias is rewritten to its canonical name and logged once, on the first process.
- Unknown flags and abbreviations are refused in one line, with the nearest known flag suggested.
- Exit status: 0 done, ``EXIT_FAILURE`` (1) bad data or a runtime failure, ``EXIT_USAGE`` (2) a usage error (the
  command line or a recipe). Entry functions return 0 or 1; a usage error leaves through ``SystemExit(2)`` as
  argparse's own errors do.
- ``dispatch`` is the console script: ``PROG COMMAND [options]``, each command a ``module:function`` taking argv.
- ``setup_logging`` is the one logging set-up of every entry point.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


EXIT_USAGE = 2
EXIT_FAILURE = 1

# The words TRL's parser (transformers' string_to_bool) takes, so that every flag of every package reads alike.
TRUE_WORDS = frozenset({"true", "t", "1", "yes", "y"})
FALSE_WORDS = frozenset({"false", "f", "0", "no", "n"})


class UsageError(ValueError):
    """A bad command line or recipe: reported in one line, exit status 2."""


def str2bool(value: str | bool) -> bool:
    """Parse a boolean flag value as TRL does (true/false, yes/no, t/f, y/n, 1/0; any case).

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


BOOL_FLAG: dict[str, Any] = {"type": str2bool, "nargs": "?", "const": True, "metavar": "BOOL"}
"""``add_argument(..., **BOOL_FLAG)``: ``--flag``, ``--flag true``, ``--flag False``, ``--flag 0`` all work."""


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the known name that ``name`` most likely meant, or an empty string.

    A unique prefix wins (what argparse would have taken as an abbreviation), then the closest spelling.
    """
    known = sorted(set(known))
    starts = [k for k in known if k.startswith(name) and len(name) > 2]
    if len(starts) == 1:
        close = starts
    else:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6) or starts[:3]
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def unknown_flags_message(extras: Sequence[str], known: Iterable[str]) -> str:
    """One line for the arguments no parser took, with a suggestion per unknown flag."""
    known = list(known)
    flags = [e.split("=", 1)[0] for e in extras if e.startswith("-") and not _is_number(e)]
    if not flags:
        return f"unexpected arguments: {' '.join(extras)} (a flag before them takes fewer values)"
    return "unknown arguments: " + ", ".join(f"{flag}{did_you_mean(flag, known)}" for flag in flags)


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """Every ``--flag`` a parser knows (argparse keeps its actions in ``_actions``; TRL's parser reads it too)."""
    return [s for action in parser._actions for s in action.option_strings if s.startswith("--")]


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


def canonical_keys(
    mapping: Mapping[str, Any], aliases: Mapping[str, str], source: str, logger: logging.Logger
) -> dict[str, Any]:
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
    """``argparse`` without abbreviations; errors are one line (exit 2), unknown flags get the nearest known one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def known_flags(self) -> list[str]:
        return option_strings(self)

    def add_bool(self, flag: str, help: str, default: bool = False) -> None:  # noqa: A002 - argparse's keyword
        """A boolean flag: ``--flag`` alone is true, ``--flag VALUE`` takes the words of ``str2bool``."""
        self.add_argument(flag, default=default, help=help, **BOOL_FLAG)

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(unknown_flags_message(extras, self.known_flags()))
        return ns

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ---- the console script ----------------------------------------------------------------------------------------
def command_parser(
    prog: str, description: str, commands: Mapping[str, tuple[str, str]], version: str
) -> StrictArgumentParser:
    """The top parser of a console script: ``--version``, ``--help`` listing ``commands`` (name -> (target, help))."""
    parser = StrictArgumentParser(
        prog=prog,
        usage=f"{prog} [--version] COMMAND [options]",
        description=f"{description} '{prog} COMMAND --help' lists the options of a command.",
        epilog="commands:\n"
        + "\n".join(f"  {name:<12} {text}" for name, (_, text) in commands.items())
        + "\n\nexit status: 0 done, 1 bad data or a runtime failure, 2 a usage error (the command line or a recipe)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{prog} {version}")
    parser.add_argument("command", nargs="?", metavar="COMMAND", help="one of: " + ", ".join(commands))
    return parser


def dispatch(parser: argparse.ArgumentParser, commands: Mapping[str, tuple[str, str]], argv: Any = None) -> int:
    """Run ``PROG COMMAND [options]``: the command's ``module:function`` (``main`` if none) is called with the rest.

    No arguments: the help on stderr, exit 2. ``--help`` / ``--version``: printed, exit 0 (argparse's SystemExit).
    An unknown command: one line with the closest command, exit 2.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    command = parser.parse_args(argv[:1]).command
    if command not in commands:
        parser.error(f"unknown command {command!r}{did_you_mean(command, commands)}; commands: {', '.join(commands)}")
    module, _, function = commands[command][0].partition(":")
    return getattr(importlib.import_module(module), function or "main")(argv[1:])


# ---- logging -----------------------------------------------------------------------------------------------------
class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (test runners swap it)."""

    @property
    def stream(self) -> Any:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def setup_logging(
    level: int | str = logging.INFO, *, main_process: bool = True, log_file: str | Path | None = None
) -> None:
    """One stderr handler on the root logger (added once per process), plus ``log_file`` when given.

    ``level`` is the root level; on a process other than the first only warnings reach stderr. Calling again changes
    the level and replaces the log file.
    """
    rank = os.environ.get("RANK", "0") or "0"
    formatter = logging.Formatter(f"%(asctime)s [rank {rank}] %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    root.setLevel(level)
    if not any(getattr(h, "_tinyrs", False) and not isinstance(h, logging.FileHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(formatter)
        handler._tinyrs = True  # type: ignore[attr-defined]
        if not main_process:
            handler.setLevel(logging.WARNING)
        root.addHandler(handler)
    if log_file is not None:
        for old in [h for h in root.handlers if isinstance(h, logging.FileHandler) and getattr(h, "_tinyrs", False)]:
            root.removeHandler(old)
            old.close()
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setFormatter(formatter)
        file_handler._tinyrs = True  # type: ignore[attr-defined]
        root.addHandler(file_handler)

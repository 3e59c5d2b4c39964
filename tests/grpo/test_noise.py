"""Known-noise warnings are filtered once at start-up, precisely: other warnings still show."""

from __future__ import annotations

import warnings

import pytest

from tinyrs_grpo import noise


NEAR_MISSES = [
    ("`torch.distributed.all_reduce_coalesced` will be deprecated", FutureWarning),  # another deprecation
    ("`gradient_checkpointing_kwargs` is deprecated and will be removed in v6", FutureWarning),  # a flag the user set
    (noise.KNOWN_NOISE[0][0], UserWarning),  # the same text in another category
]


def emit_all() -> list[str]:
    """Raise every known-noise warning (as torch words them) plus the near misses; the messages that got through."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        noise.silence_known_noise()  # inside the block: the filters are restored on leaving
        for message, category, _ in noise.KNOWN_NOISE:
            warnings.warn(message + ". Please use the new name instead.", category, stacklevel=1)
        for message, category in NEAR_MISSES:
            warnings.warn(message, category, stacklevel=1)
    return [str(w.message) for w in caught]


def test_known_noise_is_silenced_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.warnoptions", [])
    assert emit_all() == [message for message, _ in NEAR_MISSES]


def test_filters_are_installed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.warnoptions", [])
    with warnings.catch_warnings():
        assert noise.silence_known_noise() is True
        n_filters = len(warnings.filters)
        assert noise.silence_known_noise() is True
        assert len(warnings.filters) == n_filters  # a second call adds nothing


def test_python_w_option_keeps_every_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: without the filter (python -W given) every warning shows, so the test above can fail."""
    monkeypatch.setattr("sys.warnoptions", ["default"])
    assert len(emit_all()) == len(noise.KNOWN_NOISE) + len(NEAR_MISSES)

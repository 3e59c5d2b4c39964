"""The reliability suite runs torch on one thread in every test (helpers: tests/helpers; the fake judge server:
the ``openai_server`` fixture of tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread_for_every_test(one_thread: None) -> None:
    """The tiny model is latency-bound; one thread is much faster on the shared 2-core machine."""

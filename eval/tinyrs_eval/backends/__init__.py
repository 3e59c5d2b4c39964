"""Inference backends behind one small interface: ``generate(requests) -> list[str]``.

Heavy or optional packages are imported only when their backend is chosen (lmdeploy, vllm). There is no fallback
from one backend to another: an unavailable backend is an error that names the way out.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any, Protocol

from PIL import Image

from tinyrs_eval.errors import BackendUnavailable


@dataclass
class Request:
    """One generation request: ``prompt`` is the full rendered chat prompt (template applied, image placeholder
    included); ``query`` the user text alone (for engines that apply the template themselves)."""

    prompt: str
    query: str
    image: Image.Image


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 1024
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    beam_size: int = 1
    seed: int = 0
    use_cache: bool = True


class Backend(Protocol):
    name: str

    def generate(self, requests: list[Request]) -> list[str]:
        """Raw decoded outputs (special tokens skipped), one per request, in order."""
        ...

    def close(self) -> None: ...


_BACKENDS = {
    "hf": "tinyrs_eval.backends.hf:HFBackend",
    "lmdeploy": "tinyrs_eval.backends.lmdeploy_backend:LmdeployBackend",
    "vllm": "tinyrs_eval.backends.vllm_backend:VllmBackend",
}


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def check_available(name: str, require_cuda: bool = True) -> None:
    """Raise BackendUnavailable (one line, naming ``--model_type hf``) when ``name`` cannot run on this machine.

    ``require_cuda=False`` (the dry run, which may run on a machine without a GPU) checks only the package.
    """
    if name not in _BACKENDS:
        raise BackendUnavailable(f"unknown --model_type {name!r}; choose from {', '.join(_BACKENDS)}")
    if name == "hf":
        return
    package = {"lmdeploy": "lmdeploy", "vllm": "vllm"}[name]
    if importlib.util.find_spec(package) is None:
        hint = "eval/environment-lmdeploy.yaml" if name == "lmdeploy" else "pip install vllm"
        raise BackendUnavailable(
            f"--model_type {name} needs the '{package}' package, which is not installed ({hint}); "
            "use --model_type hf to run with transformers instead"
        )
    if require_cuda and not _cuda_available():
        raise BackendUnavailable(
            f"--model_type {name} needs a CUDA GPU and none is visible; use --model_type hf to run on CPU"
        )


def create_backend(name: str, **kwargs: Any) -> Backend:
    check_available(name)
    module_name, cls_name = _BACKENDS[name].split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls(**kwargs)

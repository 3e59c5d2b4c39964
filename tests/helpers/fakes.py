"""Stand-ins for inference backends: a generate() backend and the lmdeploy package (no GPU needed)."""

from __future__ import annotations

import importlib.machinery
import json
import types
from typing import Any


class FakeBackend:
    """Answers from a function of the request; records what it was asked."""

    name = "fake"

    def __init__(self, answer=lambda req: "yes"):
        self.answer = answer
        self.calls: list[list[Any]] = []

    def generate(self, requests):
        self.calls.append(list(requests))
        return [self.answer(r) for r in requests]

    def close(self):
        pass


class FakeLmdeploy:
    """A stand-in for the lmdeploy package that records how it is called (no GPU needed)."""

    def __init__(self, answer=lambda text: "yes"):
        self.answer = answer
        self.pipeline_calls: list[tuple[tuple, dict]] = []
        self.infer_calls: list[tuple[Any, dict]] = []
        self.templates: list[dict] = []
        self.module = self._build()

    def _build(self) -> types.ModuleType:
        fake = self
        mod = types.ModuleType("lmdeploy")
        mod.__spec__ = importlib.machinery.ModuleSpec("lmdeploy", None)

        class _Config:
            def __init__(self, **kwargs):
                self.kwargs = kwargs

            def __repr__(self):
                return f"{type(self).__name__}({self.kwargs})"

        class PytorchEngineConfig(_Config):
            pass

        class TurbomindEngineConfig(_Config):
            pass

        class GenerationConfig(_Config):
            pass

        class ChatTemplateConfig(_Config):
            @classmethod
            def from_json(cls, file_or_string):
                with open(file_or_string, encoding="utf-8") as f:
                    data = json.load(f)
                fake.templates.append(data)
                return cls(**data)

        class Response:
            def __init__(self, text):
                self.text = text

        class Pipeline:
            def __call__(self, prompts, **kwargs):
                fake.infer_calls.append((prompts, kwargs))
                return [Response(fake.answer(text)) for text, _image in prompts]

            def close(self):
                pass

        def pipeline(*args, **kwargs):
            fake.pipeline_calls.append((args, kwargs))
            return Pipeline()

        mod.PytorchEngineConfig = PytorchEngineConfig
        mod.TurbomindEngineConfig = TurbomindEngineConfig
        mod.GenerationConfig = GenerationConfig
        mod.ChatTemplateConfig = ChatTemplateConfig
        mod.pipeline = pipeline
        return mod

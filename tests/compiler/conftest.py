"""Shared fixtures: ONNX exports of the netlib models, made once per session on demand
(export is the slow part: ~0.05 s legacy, ~2 s with the new exporter)."""

from __future__ import annotations

import pytest
import torch

from . import netlib

#: The new exporter is slow, so it runs on a subset that still covers every op kind.
DYNAMO_MODELS = ("conv7s2p3", "depthwise", "bn_sigmoid_avg", "residual", "inception",
                 "classifier_softmax")
EXPORTS = [(name, exporter) for exporter in ("legacy", "opset9") for name in netlib.MODELS] + \
    [(name, "dynamo") for name in DYNAMO_MODELS]


class Exports:
    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.paths: dict[tuple[str, str], str] = {}

    def __getitem__(self, key: tuple[str, str]) -> str:
        if key not in self.paths:
            self.paths[key] = netlib.export(key[0], self.directory, key[1])
        return self.paths[key]


@pytest.fixture(scope="session")
def exports(tmp_path_factory) -> Exports:
    torch.set_num_threads(1)
    return Exports(str(tmp_path_factory.mktemp("onnx")))

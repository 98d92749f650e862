"""Train LeNet-5 on a packaged dataset and export it to ONNX (CPU, about a minute).

    python -m models.train --dataset mnist --variant relu-max --out build/lenet5_mnist

writes OUT.onnx (PyTorch's torch.export-based exporter, weights inline, dynamic batch), OUT.pt (state dict) and
OUT.json (float test accuracy, epochs, seed). Deterministic: fixed seed, one thread.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .datasets import DATASETS, load_dataset
from .lenet5 import VARIANTS, LeNet5

__all__ = ["train", "accuracy", "main"]

SEED = 1998
EPOCHS = {"mnist": 30, "fashion": 4}


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(torch.from_numpy(x[i:i + 500])) for i in range(0, len(x), 500)])
    return float((logits.argmax(1).numpy() == y).mean())


def train(dataset: str, variant: str, *, epochs: int | None = None) -> tuple[LeNet5, dict]:
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    data = load_dataset(dataset)
    model = LeNet5(variant=variant)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    rng = np.random.default_rng(SEED)
    epochs = EPOCHS[dataset] if epochs is None else epochs
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = rng.permutation(len(data.train_x))
        for i in range(0, len(order), 64):
            batch = order[i:i + 64]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(torch.from_numpy(data.train_x[batch])),
                                               torch.from_numpy(data.train_y[batch]))
            loss.backward()
            opt.step()
    info = {"dataset": dataset, "variant": variant, "epochs": epochs, "seed": SEED,
            "train_images": len(data.train_x), "test_images": len(data.test_x),
            "float_test_accuracy": accuracy(model, data.test_x, data.test_y),
            "train_seconds": round(time.perf_counter() - start, 1)}
    return model, info


def export_onnx(model: nn.Module, path: Path) -> None:
    model.eval()
    torch.onnx.export(model, (torch.zeros(1, 1, 32, 32),), str(path), dynamo=True,
                      external_data=False, input_names=["image"], output_names=["logits"],
                      dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=DATASETS, default="mnist")
    parser.add_argument("--variant", choices=VARIANTS, default="relu-max")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", required=True, help="output path without extension")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model, info = train(args.dataset, args.variant, epochs=args.epochs)
    torch.save(model.state_dict(), out.with_suffix(".pt"))
    export_onnx(model, out.with_suffix(".onnx"))
    out.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"{args.dataset} {args.variant}: float test accuracy {info['float_test_accuracy']:.4f} "
          f"after {info['epochs']} epochs ({info['train_seconds']} s) -> {out}.onnx")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

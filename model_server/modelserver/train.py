"""Train the reference digits classifiers and write the experiment artifacts.

    python -m modelserver.train --out DIR [--seed N] [--slow-latency-ms MS]
        [--skew-classes 0,1] [--skew-logit-bias B]

writes DIR/1.0.0 (baseline, deliberately weak), DIR/2.0.0 (better), and three
variants of 2.0.0 for the rollout scenarios: DIR/slow (added latency), DIR/skewed
(outputs biased toward some classes) and DIR/corrupt (weights that do not match the
card's checksum). scikit-learn's bundled `load_digits` is the data: no download.
Same seed, same bytes: training runs on one thread with deterministic algorithms.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from modelserver.artifact import CARD_FILE, ModelCard, sha256_file, write_artifact
from modelserver.faults import FaultInjector, parse_faults

NAME = "digits"
LABELS = tuple(str(d) for d in range(10))
INPUT_SHAPE = (8, 8)  # an 8x8 image; rows of 64 values are accepted too
INPUT_RANGE = (0.0, 16.0)
DESCRIPTION = (
    "Handwritten digit classifier (0-9) on 8x8 grey-level images, values 0..16 in "
    "row-major order as in scikit-learn's load_digits; the model scales inputs itself. "
    "A reference model for modeldeploy's rollout experiments, not for production use."
)


class DigitsNet(torch.nn.Module):
    """A one-hidden-layer MLP; the feature encoding (scaling 0..16 to 0..1) is part of
    the TorchScript graph, so it ships with the weights and cannot drift."""

    def __init__(self, hidden: int, classes: int = len(LABELS)) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(int(np.prod(INPUT_SHAPE)), hidden)
        self.out = torch.nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1) / 16.0
        return self.out(torch.relu(self.hidden(x)))


@dataclass(frozen=True)
class Recipe:
    version: str
    hidden: int
    epochs: int
    lr: float
    optimizer: str = "adam"  # or "sgd"
    batch: int = 32


# 1.0.0 is held back on purpose (two epochs at a low learning rate: ~0.88 accuracy)
# so that 2.0.0 (~0.97) is a visible improvement in an A/B test, while both predict
# nearly uniform class distributions: a healthy upgrade must pass the output check.
BASELINE = Recipe(version="1.0.0", hidden=32, epochs=2, lr=0.003)
BETTER = Recipe(version="2.0.0", hidden=64, epochs=30, lr=0.01)


def load_data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    digits = load_digits()
    X = digits.data.astype(np.float32)
    y = digits.target.astype(np.int64)
    return train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)


def fit(recipe: Recipe, X: np.ndarray, y: np.ndarray, seed: int) -> torch.jit.ScriptModule:
    torch.manual_seed(seed)
    model = DigitsNet(recipe.hidden)
    optimizers = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}
    optimizer = optimizers[recipe.optimizer](model.parameters(), lr=recipe.lr)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    order = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(recipe.epochs):
        for idx in torch.randperm(len(Xt), generator=order).split(recipe.batch):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(Xt[idx]), yt[idx])
            loss.backward()
            optimizer.step()
    model.eval()
    return torch.jit.script(model)


def predict(module: torch.jit.ScriptModule, X: np.ndarray, skew: FaultInjector | None = None) -> np.ndarray:
    with torch.inference_mode():
        logits = module(torch.from_numpy(X))
        if skew is not None:
            logits = skew.skew(logits)
        return logits.argmax(dim=1).numpy()


def class_distribution(predictions: np.ndarray) -> np.ndarray:
    counts = np.bincount(predictions, minlength=len(LABELS)).astype(float)
    return counts / counts.sum()


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """JS divergence in nats (natural log); scipy's `jensenshannon` is its square root."""
    m = (p + q) / 2

    def kl(a: np.ndarray, b: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log(a[mask] / b[mask])))

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def artifact_size(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.iterdir() if f.is_file())


def train_version(recipe: Recipe, out: Path, seed: int) -> tuple[ModelCard, torch.jit.ScriptModule, float]:
    X_train, X_test, y_train, y_test = load_data(seed)
    started = time.monotonic()
    module = fit(recipe, X_train, y_train, seed)
    seconds = time.monotonic() - started
    test_acc = float((predict(module, X_test) == y_test).mean())
    train_acc = float((predict(module, X_train) == y_train).mean())
    card = ModelCard(
        name=NAME,
        version=recipe.version,
        labels=LABELS,
        input_shape=INPUT_SHAPE,
        input_range=INPUT_RANGE,
        sha256="0" * 64,  # replaced by write_artifact
        description=DESCRIPTION,
        training={
            "dataset": "sklearn.datasets.load_digits (1797 images, 10 classes)",
            "split": {"train": len(y_train), "test": len(y_test), "stratified": True, "seed": seed},
            "architecture": f"MLP 64-{recipe.hidden}-10, ReLU; inputs scaled by 1/16 inside the graph",
            "optimizer": f"{recipe.optimizer} lr={recipe.lr}",
            "epochs": recipe.epochs,
            "batch_size": recipe.batch,
            "train_accuracy": round(train_acc, 4),
            "test_accuracy": round(test_acc, 4),
            "train_seconds": round(seconds, 2),
            "software": {
                "torch": torch.__version__,
                "scikit-learn": sklearn.__version__,
                "python": platform.python_version(),
            },
        },
    )
    card = write_artifact(out / recipe.version, module, card)
    return card, module, test_acc


def write_variant(source: Path, target: Path, version: str, faults: dict, note: str) -> ModelCard:
    """A copy of `source` with another version, fault settings and description."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    card = json.loads((target / CARD_FILE).read_text())
    card.update(version=version, faults=faults, description=f"{note} {card['description']}")
    (target / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    return card


def corrupt_weights(directory: Path, weights: str) -> None:
    """Flip bytes in the middle of the weights: the card's checksum no longer matches,
    as after a truncated upload or bit rot."""
    path = directory / weights
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, min(middle + 16, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelserver.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the artifacts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slow-latency-ms", type=float, default=300.0, help="added latency of the slow variant")
    parser.add_argument("--skew-classes", default="0,1", help="classes the skewed variant favours")
    parser.add_argument("--skew-logit-bias", type=float, default=20.0,
                        help="logit bias of the skewed variant (trained logits span ~20, so 20 moves most predictions)")
    args = parser.parse_args(argv)

    # One thread and deterministic kernels: the same seed gives byte-identical weights.
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out: Path = args.out
    _, X_test, _, y_test = load_data(args.seed)
    rows: list[tuple[str, ...]] = []

    base_card, base_module, base_acc = train_version(BASELINE, out, args.seed)
    better_card, better_module, better_acc = train_version(BETTER, out, args.seed)
    base_dist = class_distribution(predict(base_module, X_test))
    better_dist = class_distribution(predict(better_module, X_test))

    def row(name: str, version: str, acc: float | None, dist: np.ndarray | None, faults: str) -> None:
        js1 = f"{jensen_shannon(base_dist, dist):.3f}" if dist is not None else "n/a"
        js2 = f"{jensen_shannon(better_dist, dist):.3f}" if dist is not None else "n/a"
        accuracy = f"{acc:.4f}" if acc is not None else "n/a"
        rows.append((name, version, accuracy, str(artifact_size(out / name)), js1, js2, faults))

    row("1.0.0", "1.0.0", base_acc, base_dist, "")
    row("2.0.0", "2.0.0", better_acc, better_dist, "")

    source = out / BETTER.version
    write_variant(
        source, out / "slow", "2.0.0-slow", {"latency_ms": args.slow_latency_ms},
        f"VARIANT slow: 2.0.0 weights with {args.slow_latency_ms:g} ms added to every prediction.",
    )  # fmt: skip
    row("slow", "2.0.0-slow", better_acc, better_dist, f"latency_ms={args.slow_latency_ms:g}")

    classes = [c.strip() for c in args.skew_classes.split(",") if c.strip()]
    skew = {"skew_classes": classes, "skew_logit_bias": args.skew_logit_bias}
    injector = FaultInjector(parse_faults(skew), LABELS)
    write_variant(
        source, out / "skewed", "2.0.0-skewed", skew,
        f"VARIANT skewed: 2.0.0 weights, logits of classes {classes} raised by {args.skew_logit_bias:g}.",
    )  # fmt: skip
    skewed_pred = predict(better_module, X_test, injector)
    row("skewed", "2.0.0-skewed", float((skewed_pred == y_test).mean()), class_distribution(skewed_pred),
        f"skew_classes={','.join(classes)} skew_logit_bias={args.skew_logit_bias:g}")  # fmt: skip

    write_variant(
        source, out / "corrupt", "2.0.0-corrupt", {},
        "VARIANT corrupt: weights altered after the checksum was taken; the server must refuse it.",
    )  # fmt: skip
    corrupt_weights(out / "corrupt", better_card.weights)
    assert sha256_file(out / "corrupt" / better_card.weights) != better_card.sha256
    row("corrupt", "2.0.0-corrupt", None, None, "checksum mismatch")

    print(f"artifacts in {out.resolve()} (seed {args.seed}; test split {len(y_test)} images)")
    header = ("artifact", "version", "test acc", "bytes", "JS vs 1.0.0", "JS vs 2.0.0", "faults")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())
    print("JS: Jensen-Shannon divergence (nats) of predicted-class distributions on the test split")
    return 0


if __name__ == "__main__":
    sys.exit(main())

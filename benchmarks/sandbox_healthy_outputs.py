"""How often chance alone fails the sandbox's `healthy` scenario on its output check.

Not a test: run it and read the rate. The scenario (sandbox.scenarios: 1.0.0 stable,
2.0.0 candidate, 40 req/s, steps 20 % and 50 % of 15 s, a look every 5 s) is replayed
without processes: the load generator's own request sequence (seed 0: the same digits
images in the same order in every run), each image's class as the real 1.0.0 and 2.0.0
artifacts predict it (computed once in the model server's virtualenv), Istio's random
split by weight, and at each look the real sequential output check
(`sequential_checks.output_distribution`, JS limit 0.1, alpha 1/303) on both versions'
counts since the rollout began. `--ready` is the seconds from the rollout's start until
the candidate takes traffic (about 10 s in the sandbox), `--start` the load generator's
request index at the rollout's start (its warm-up is 3 s at 40 req/s).

Everything here is i.i.d.: a failure it counts is a false fail by chance.

    MODEL_VENV=... python benchmarks/sandbox_healthy_outputs.py [--runs 5000] [--ready 10] [--candidate 1.0.0]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys

import numpy as np

from modeldeploy.analysis import sequential_checks as sc
from sandbox import artifacts

PREDICT = """
import json, sys, numpy as np, torch
from sklearn.datasets import load_digits
from modelserver.artifact import load_artifact
X = torch.from_numpy(load_digits().data.astype(np.float32).reshape(-1, 8, 8))
out = {}
for d in sys.argv[1:]:
    with torch.inference_mode():
        out[d] = load_artifact(d, "", "").module(X).argmax(1).tolist()
print(json.dumps(out))
"""


def predictions(*names: str) -> list[np.ndarray]:
    arts = artifacts.ensure_artifacts()
    dirs = [str(arts / n) for n in names]
    argv = [str(artifacts.model_bin() / "python"), "-c", PREDICT, *dirs]
    got = json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)  # noqa: S603
    return [np.asarray(got[d]) for d in dirs]


def request_sequence(n: int, images: int, seed: int = 0) -> np.ndarray:
    """The images `sandbox.loadgen.LoadGenerator` sends, in order (one image draw and one
    feedback coin per request)."""
    rng, out = random.Random(seed), []
    for _ in range(n):
        out.append(rng.randrange(images))
        rng.random()
    return np.asarray(out)


def one_run(rng: np.random.Generator, seq: np.ndarray, base: np.ndarray, cand: np.ndarray, start: int,
            ready: float, rate: float = 40.0, step: float = 15.0, look: float = 5.0) -> str | None:
    b, c = np.zeros(10), np.zeros(10)
    per_look = int(look * rate)
    for k in range(int((ready + 2 * step) * rate)):
        t = k / rate
        w = 0.0 if t < ready else 0.2 if t < ready + step else 0.5
        img = seq[start + k]
        if rng.random() < w:
            c[cand[img]] += 1
        else:
            b[base[img]] += 1
        if (k + 1) % per_look == 0:
            r = sc.output_distribution("outputs", {str(i): b[i] for i in range(10)},
                                       {str(i): c[i] for i in range(10)}, 0.1, 1 / 303)
            if r.outcome.name == "FAIL":
                return r.message
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5000)
    p.add_argument("--ready", type=float, default=10.0)
    p.add_argument("--start", default="120-600", help="a request index, or a range lo-hi drawn uniformly")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--candidate", default="2.0.0", help="the candidate's artifact (1.0.0: an A/A rollout)")
    args = p.parse_args(argv)
    base, cand = predictions("1.0.0", args.candidate)
    for name, pred in (("1.0.0", base), (args.candidate, cand)):
        shares = np.round(np.bincount(pred, minlength=10) / len(pred), 3).tolist()
        print(f"{name}: share of each class on the full digits set {shares}")
    seq = request_sequence(20_000, len(base))
    lo, _, hi = args.start.partition("-")
    rng = np.random.default_rng(args.seed)
    fails = []
    for _ in range(args.runs):
        start = int(lo) if not hi else int(rng.integers(int(lo), int(hi) + 1))
        if (msg := one_run(rng, seq, base, cand, start, args.ready)) is not None:
            fails.append(msg)
    print(f"false fails: {len(fails)} of {args.runs} runs ({len(fails) / args.runs:.3%})")
    for msg in fails[:10]:
        print(f"  {msg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

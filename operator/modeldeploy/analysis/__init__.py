"""Canary analysis: compare a candidate predictor with its baseline on Prometheus metrics.

Layers, innermost first: `stats` (pure statistics on binned counts), `checks` (one
function per check, counts in, verdict out), `config` (``spec.analysis`` and its
defaults), `templates` (PromQL and the only place values enter it), `query` (one
analysis' conversation with the provider), `kinds` (one module per check kind: its
fields, its parser, and what it queries and checks under each method), `analyse` (the
entry point), `output_bins` (a regressor's bins, fixed from the stable version's
outputs), `reward` (A/B comparison). Only `query` talks to the provider.
"""

from .analyse import analyse
from .config import AnalysisSpec, parse_analysis
from .errors import AnalysisConfigError
from .query import Target
from .reward import RewardComparison, compare_rewards, measure_rewards
from .templates import Templates

__all__ = [
    "AnalysisConfigError",
    "AnalysisSpec",
    "RewardComparison",
    "Target",
    "Templates",
    "analyse",
    "compare_rewards",
    "measure_rewards",
    "parse_analysis",
]

"""modeldeploy: progressive delivery for ML models on Kubernetes.

The pure core (spec, the rollout state machine, routers' rendering, analysis statistics)
does no I/O; the shells (Kopf handlers, Kubernetes and Prometheus clients) sit at the edges.
"""

# The release: pyproject.toml reads it, and Chart.yaml's version and appVersion equal it
# (tests/adoption/test_release.py).
__version__ = "0.1.0"

GROUP = "modeldeploy.io"
VERSION = "v1alpha1"
PLURAL = "modeldeployments"
#: The one-shot command a person sets (`kubectl modeldeploy promote`); the operator
#: acts on it once and removes it.
COMMAND_ANNOTATION = f"{GROUP}/command"

"""modeldeploy: progressive delivery for ML models on Kubernetes.

The pure core (spec, seldon rendering, the rollout state machine, analysis statistics)
does no I/O; the shells (Kopf handlers, Kubernetes and Prometheus clients) sit at the edges.
"""

GROUP = "modeldeploy.io"
VERSION = "v1alpha1"
PLURAL = "modeldeployments"

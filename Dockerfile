# The modeldeploy operator image: `python -m modeldeploy`, as the Helm chart runs it.
# Built by hack/kind/e2e.sh and CI (not on the development machines, which pull nothing).
#
#   docker build -t modeldeploy/operator:0.1.0 .

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/modeldeploy
# The wheel holds the modeldeploy package only (operator/); only the operator extra's
# dependencies are installed (the model server's torch and seldon-core are not).
COPY pyproject.toml README.md ./
COPY operator/ operator/
# Not editable: the image carries the installed, byte-compiled package (the root
# filesystem is read-only at run time, so nothing could be compiled later).
RUN /opt/modeldeploy/bin/pip install ".[operator]" \
    && /opt/modeldeploy/bin/python -c "import modeldeploy.handlers"

FROM python:3.11-slim
COPY --from=build /opt/modeldeploy /opt/modeldeploy
ENV PATH=/opt/modeldeploy/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# A fixed non-root uid/gid, the one the chart's podSecurityContext names (runAsNonRoot
# needs a numeric user to verify).
USER 65532:65532
WORKDIR /tmp
# 8080: Kopf's liveness endpoint (/healthz); 9090: the operator's /metrics.
EXPOSE 8080 9090
ENTRYPOINT ["python", "-m", "modeldeploy"]

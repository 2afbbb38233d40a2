"""Prometheus as a `MetricProvider`, through ``prometheus-api-client``.

Two things the library does not do for us, and why they matter here:

* it retries failed requests three times with a one-second backoff by default; an
  analysis runs every interval anyway, so a retry only makes "Prometheus is down" take
  longer to report: we disable retries and bound every query by `timeout`;
* it returns ``data.result`` without ``resultType`` and reports HTTP errors as one
  string; we recover the result's shape from its structure and Prometheus' own error
  message from the string, so an Error verdict says *why* (bad PromQL, timeout,
  overload) rather than "HTTP 400".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
import urllib3
from urllib3.util.retry import Retry

from . import Configured, ProviderTimeout, ProviderUnreachable, QueryFailed, Sample

if TYPE_CHECKING:
    from ..routing import MetricSeries

DEFAULT_TIMEOUT = 10.0

_STATUS = re.compile(r"HTTP Status Code (\d+) \((.*)\)\s*$", re.S)


def _server_error(exc: PrometheusApiClientException) -> tuple[int | None, str, str]:
    """(HTTP status, Prometheus errorType, error) out of the library's exception text."""
    m = _STATUS.search(str(exc))
    if not m:
        return None, "", str(exc)
    status, body = int(m.group(1)), m.group(2)
    try:
        # The body is the repr of a bytes object: b'{"status":"error",...}'.
        raw = body[2:-1] if body[:2] in ("b'", 'b"') else body
        payload = json.loads(raw.encode().decode("unicode_escape"))
        return status, str(payload.get("errorType", "")), str(payload.get("error", body))
    except (ValueError, AttributeError):
        return status, "", body


def _value(pair: Any) -> float:
    # Prometheus encodes sample values as strings, including "NaN", "+Inf" and "-Inf".
    return float(pair[1])


def parse_result(result: Any, promql: str) -> list[Sample]:
    """Samples from an instant query's ``data.result`` (vector or scalar)."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        # scalar or string: [timestamp, "value"]
        try:
            return [Sample({}, _value(result))]
        except (TypeError, ValueError) as e:
            raise QueryFailed(f"the query returned a string, not a number: {promql}", promql) from e
    if not isinstance(result, list):
        raise QueryFailed(f"unexpected result {type(result).__name__} for: {promql}", promql)
    samples = []
    for series in result:
        if "value" not in series:
            raise QueryFailed(
                "the query returned a range vector; analysis needs an instant vector "
                f"(aggregate it over the window): {promql}",
                promql,
            )
        samples.append(Sample(dict(series.get("metric", {})), _value(series["value"])))
    return samples


class PrometheusProvider:
    """A `MetricProvider` backed by one Prometheus server (or anything speaking its HTTP API).

    `headers` carries credentials (``{"Authorization": "Bearer ..."}`` read from a Secret
    by the caller); `verify` is True, False, or a CA bundle path, as in requests.
    """

    def __init__(
        self,
        url: str,
        timeout: float = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        verify: bool | str = True,
    ) -> None:
        if timeout <= 0 or math.isnan(timeout):
            raise ValueError(f"timeout must be positive, not {timeout}")
        self.url = url.rstrip("/")
        self.timeout = float(timeout)
        session = requests.Session()
        session.verify = verify
        self._client = PrometheusConnect(
            url=self.url,
            headers=dict(headers) if headers else None,
            auth=auth,
            session=session,
            timeout=self.timeout,  # type: ignore[arg-type]  # the library annotates int, uses requests' float
            retry=Retry(total=0, connect=0, read=0, status=0, raise_on_status=False),
        )

    def __repr__(self) -> str:
        return f"PrometheusProvider({self.url!r}, timeout={self.timeout})"

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        params: dict[str, str] = {
            # Ask the server to give up a little before we do, so a slow query is reported
            # as Prometheus' own timeout rather than a dropped connection.
            "timeout": f"{max(self.timeout * 0.9, 0.1):.3f}",
        }
        if at is not None:
            params["time"] = f"{at:.3f}"
        try:
            result = self._client.custom_query(promql, params=params)
        except requests.exceptions.ConnectionError as e:
            if _is_read_timeout(e):
                raise ProviderTimeout(f"Prometheus at {self.url} did not answer within {self.timeout:g}s",
                                      promql) from e
            # Also ConnectTimeout and SSLError: either way nothing was evaluated.
            raise ProviderUnreachable(f"Prometheus at {self.url} is unreachable: {_reason(e)}", promql) from e
        except requests.exceptions.ReadTimeout as e:
            raise ProviderTimeout(f"Prometheus at {self.url} did not answer within {self.timeout:g}s", promql) from e
        except requests.exceptions.RequestException as e:
            raise ProviderUnreachable(f"Prometheus at {self.url}: {_reason(e)}", promql) from e
        except PrometheusApiClientException as e:
            status, kind, error = _server_error(e)
            if kind == "timeout":
                raise ProviderTimeout(f"Prometheus timed out evaluating the query: {error}", promql) from e
            raise QueryFailed(f"Prometheus rejected the query (HTTP {status}, {kind or 'error'}): {error}",
                              promql) from e
        except ValueError as e:  # a 200 answer that is not JSON: a proxy's login page, say
            raise QueryFailed(f"{self.url} answered with something that is not the Prometheus API: {e}", promql) from e
        return parse_result(result, promql)

    def is_online(self) -> bool:
        try:
            self.query("vector(1)")
        except Exception:  # noqa: BLE001 - any failure means "not usable now"
            return False
        return True


def from_env(env: Mapping[str, str], series: MetricSeries) -> Configured | None:
    """The Prometheus server from MODELDEPLOY_PROMETHEUS_URL (none: metrics are Errors).

    Credentials come from the environment, which the chart fills from a Secret:
    MODELDEPLOY_PROMETHEUS_TOKEN (bearer), or MODELDEPLOY_PROMETHEUS_USERNAME and
    MODELDEPLOY_PROMETHEUS_PASSWORD (basic); MODELDEPLOY_PROMETHEUS_TIMEOUT in seconds;
    MODELDEPLOY_PROMETHEUS_CA_FILE, a CA bundle for https. The templates are the PromQL
    for the router's `series`, with those of MODELDEPLOY_QUERIES_FILE (a YAML map of
    latency, errors, outputs, reward, feedback; the chart's ConfigMap) in their place.
    Overrides are checked when an analysis uses them, so a bad one is an Error verdict
    naming it.
    """
    url = env.get("MODELDEPLOY_PROMETHEUS_URL")
    if not url:
        return None
    from ..analysis.templates import default_queries

    templates = default_queries(series)
    if env.get("MODELDEPLOY_QUERIES_FILE"):
        import yaml

        with open(env["MODELDEPLOY_QUERIES_FILE"]) as f:
            overrides = yaml.safe_load(f) or {}
        if not isinstance(overrides, Mapping):
            raise ValueError(f"MODELDEPLOY_QUERIES_FILE: {env['MODELDEPLOY_QUERIES_FILE']} must hold a YAML map "
                             "of query name (latency, errors, outputs, reward, feedback) to PromQL")
        templates.update(overrides)
    token = env.get("MODELDEPLOY_PROMETHEUS_TOKEN")
    user, password = env.get("MODELDEPLOY_PROMETHEUS_USERNAME"), env.get("MODELDEPLOY_PROMETHEUS_PASSWORD")
    provider = PrometheusProvider(
        url, timeout=float(env.get("MODELDEPLOY_PROMETHEUS_TIMEOUT", "5")),
        headers={"Authorization": f"Bearer {token}"} if token else None,
        auth=(user, password) if user and password else None,
        verify=env.get("MODELDEPLOY_PROMETHEUS_CA_FILE") or True,
    )
    return Configured(provider, templates)


def _is_read_timeout(e: requests.exceptions.ConnectionError) -> bool:
    # With retries disabled urllib3 wraps a read timeout in MaxRetryError, which requests
    # turns into ConnectionError rather than ReadTimeout: look at the cause.
    reason = getattr(e.args[0], "reason", None) if e.args else None
    return isinstance(reason, urllib3.exceptions.ReadTimeoutError)


def _reason(e: Exception) -> str:
    # requests nests urllib3's errors; the innermost message names the real cause.
    text = str(e)
    m = re.search(r"(\[Errno [^\]]+\][^'\")]*)", text)
    return m.group(1).strip() if m else text[:200]

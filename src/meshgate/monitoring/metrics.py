"""Prometheus metrics of the platform, in a registry owned by one app (not the global one).

Every metric name here is used by the Grafana dashboard in ``deploy/grafana/meshgate.json``.
Label children are cached per label tuple: observing a request is two dict look-ups and two
increments, not a label resolution each time.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from meshgate.monitoring.slo import RequestWindow

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
DEFAULT_SLO_PATHS = ("/v1/chat/completions", "/v1/embeddings", "/v2/models/")


def outcome(status: int) -> str:
    """The class of a response, the ``outcome`` label of the model metrics."""
    if status < 400:
        return "ok"
    if status == 429:
        return "rate_limited"
    if status < 500:
        return "client_error"
    return {502: "upstream_error", 503: "unavailable", 504: "upstream_timeout"}.get(
        status, "server_error"
    )


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "meshgate_http_requests",
            "HTTP requests served.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "meshgate_http_request_duration_seconds",
            "Time to the last byte of the response.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_requests = Counter(
            "meshgate_model_requests",
            "Inference requests per model version, by outcome (ok, client_error, rate_limited, "
            "upstream_error, upstream_timeout, unavailable, server_error).",
            ["tenant", "model", "version", "outcome"],
            registry=r,
        )
        self.model_latency = Histogram(
            "meshgate_model_request_duration_seconds",
            "Time to the last byte of an inference response, per model version.",
            ["tenant", "model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rate_limited = Counter(
            "meshgate_rate_limited", "Requests refused by a rate limit.", ["tenant"], registry=r
        )
        self.backend_up = Gauge(
            "meshgate_backend_up",
            "1 when the backend answered its last readiness check.",
            ["backend"],
            registry=r,
        )
        self.breaker_state = Gauge(
            "meshgate_breaker_state",
            "Circuit breaker of a model version's upstream: 0 closed, 1 half-open, 2 open.",
            ["tenant", "model", "version"],
            registry=r,
        )
        self.event_lag = Gauge(
            "meshgate_event_lag_seconds",
            "Age of the last event a consumer handled when it handled it.",
            ["consumer"],
            registry=r,
        )
        self.predictions = Counter(
            "meshgate_predictions",
            "prediction.made events of the whole cluster, applied by this process from the log "
            "since it started, per model version and outcome (ok, client_error, server_error). "
            "Every node reports the cluster's: read one node (max), never a sum over nodes; "
            "meshgate_model_requests counts what this node served.",
            ["tenant", "model", "version", "outcome"],
            registry=r,
        )
        self.prediction_latency = Histogram(
            "meshgate_prediction_latency_seconds",
            "Model latency reported by prediction.made events of the whole cluster (as"
            " meshgate_predictions: one node's, never a sum over nodes).",
            ["tenant", "model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.accuracy = Gauge(
            "meshgate_model_accuracy",
            "Accuracy from feedback over the current window, per model version.",
            ["tenant", "model", "version"],
            registry=r,
        )
        self.drift_share = Gauge(
            "meshgate_model_drift_share",
            "Share of a model version's input features that drifted from the reference.",
            ["tenant", "model", "version"],
            registry=r,
        )
        self.alerts_firing = Gauge(
            "meshgate_alerts_firing",
            "Alerts of the cluster firing now, per rule (the same on every node).",
            ["rule"],
            registry=r,
        )
        self.slo_window = RequestWindow()
        self.slo_paths: tuple[str, ...] = DEFAULT_SLO_PATHS
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram, bool]] = {}
        self._model_children: dict[tuple[str, str, str, int], tuple[Counter, Histogram]] = {}

    def observe_request(
        self,
        method: str,
        route: str,
        status: int,
        seconds: float,
        model: tuple[str, str, str] | None = None,
        tenant: str | None = None,
    ) -> None:
        """One served request; ``model`` is (tenant, model, version) when one answered it,
        ``tenant`` the caller's (None before authentication)."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
                route.startswith(self.slo_paths),
            )
        children[0].inc()
        children[1].observe(seconds)
        if children[2]:
            self.slo_window.observe(status, seconds, tenant or "")
        if model is not None:
            self._observe_model(model, status, seconds)

    def _observe_model(self, model: tuple[str, str, str], status: int, seconds: float) -> None:
        key = (*model, status)
        children = self._model_children.get(key)
        if children is None:
            if len(self._model_children) > 10_000:  # bound label churn from deleted models
                self._model_children.clear()
            children = self._model_children[key] = (
                self.model_requests.labels(*model, outcome(status)),
                self.model_latency.labels(*model),
            )
        children[0].inc()
        children[1].observe(seconds)

    def configure_slo(self, paths: list[str], window: RequestWindow) -> None:
        self.slo_paths = tuple(paths)
        self.slo_window = window
        self._children.clear()

    def set_breaker(self, tenant: str, model: str, version: str, state: str) -> None:
        """For the model service: ``state`` is closed, half_open or open."""
        self.breaker_state.labels(tenant, model, version).set(BREAKER_STATES[state])

    def render(self) -> bytes:
        return generate_latest(self.registry)

"""Settings of tracing, logs, metrics, model monitoring, alerts and SLOs (``monitoring:``).

Drift defaults follow Evidently's: Kolmogorov-Smirnov at p < 0.05 for numeric features,
chi-squared at p < 0.05 for categorical ones, PSI >= 0.1 and Jensen-Shannon distance >= 0.1
when those tests are chosen, and a model drifts when at least half of its features drift.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class DriftConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference_size: int = Field(
        500, ge=20, description="First N values of a feature per version: the reference window."
    )
    current_size: int = Field(
        500, ge=20, description="Most recent N values of a feature: the window compared to it."
    )
    min_samples: int = Field(
        100, ge=10, description="Values needed in both windows before drift is computed."
    )
    numeric_test: Literal["ks", "psi"] = Field(
        "ks", description="Test deciding drift of a numeric feature (both are reported)."
    )
    categorical_test: Literal["chisquare", "jensenshannon"] = Field(
        "chisquare", description="Test deciding drift of a categorical feature."
    )
    ks_p_value: float = Field(0.05, gt=0, lt=1, description="KS p-value below which: drift.")
    chisquare_p_value: float = Field(
        0.05, gt=0, lt=1, description="Chi-squared p-value below which: drift."
    )
    psi_threshold: float = Field(0.1, gt=0, description="PSI at or above which: drift.")
    jensenshannon_threshold: float = Field(
        0.1, gt=0, le=1, description="Jensen-Shannon distance at or above which: drift."
    )
    psi_bins: int = Field(10, ge=2, le=100, description="Quantile bins of the reference for PSI.")
    drift_share: float = Field(
        0.5, gt=0, le=1, description="Share of drifted features at which the model drifts."
    )


class WebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="Receives every fired and resolved alert as a POST.")
    secret: SecretStr = Field(description="HMAC-SHA256 key signing timestamp and body.")


class AlertOverride(BaseModel):
    """Thresholds of one model, where they differ from the defaults (a chat model is slower
    than a classifier)."""

    model_config = ConfigDict(extra="forbid")

    error_rate: float | None = Field(None, gt=0, le=1)
    p95_latency_ms: float | None = Field(None, gt=0)
    accuracy_drop: float | None = Field(None, gt=0, le=1)
    drift: bool | None = None


class AlertConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interval_seconds: float = Field(15.0, gt=0, description="How often the rules are evaluated.")
    window_seconds: float = Field(
        300.0, gt=0, description="Requests younger than this feed the error and latency rules."
    )
    min_requests: int = Field(
        20, ge=1, description="Requests in the window before error and latency rules can fire."
    )
    error_rate: float = Field(0.05, gt=0, le=1, description="Error rate at or above which: fire.")
    p95_latency_ms: float = Field(2000.0, gt=0, description="p95 latency above which: fire.")
    accuracy_drop: float = Field(
        0.1, gt=0, le=1, description="Fall of accuracy below its reference at which: fire."
    )
    feedback_window: int = Field(
        200, ge=1, description="First N feedback: the reference accuracy; latest N: current."
    )
    min_feedback: int = Field(
        30, ge=1, description="Feedback needed for the reference and for the current accuracy."
    )
    drift: bool = Field(True, description="Fire when a model version drifts.")
    breaker_open: bool = Field(
        True,
        description="Fire while a model version's circuit breaker is open on any node (once"
        " for the cluster; resolved when no node reports it open).",
    )
    breaker_grace_seconds: float = Field(
        60.0,
        ge=0,
        description="A node's report of an open breaker lapses this long after the breaker's"
        " reset window unless the node reports again, so a node that died with its breaker"
        " open does not keep the alert open.",
    )
    models: dict[str, AlertOverride] = Field(
        default_factory=dict, description="Thresholds per model name, over the defaults above."
    )
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    webhook_attempts: int = Field(4, ge=1, le=20, description="Deliveries tried per webhook.")
    webhook_timeout_seconds: float = Field(5.0, gt=0)


def thresholds_for(config: AlertConfig, model: str) -> AlertConfig:
    override = config.models.get(model)
    if override is None:
        return config
    return config.model_copy(update=override.model_dump(exclude_none=True))


class SloConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    p95_latency_ms: float = Field(200.0, gt=0, description="Target p95 of synchronous calls.")
    availability: float = Field(
        0.9995, gt=0, le=1, description="Target share of requests not refused by the platform."
    )
    error_rate: float = Field(0.001, ge=0, le=1, description="Target share of failed requests.")
    window_seconds: int = Field(3600, ge=10, description="Default window of GET /v1/slo.")
    retention_seconds: int = Field(
        86400, ge=60, description="Longest window kept (one bucket per second with traffic)."
    )
    flush_seconds: float = Field(
        1.0,
        gt=0,
        le=60,
        description="How often a process writes its request buckets to the SQL store, where"
        " GET /v1/slo sums every process's.",
    )
    paths: list[str] = Field(
        default_factory=lambda: ["/v1/chat/completions", "/v1/embeddings", "/v2/models/"],
        description="Route prefixes of the synchronous calls the SLO covers.",
    )


class MonitoringConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP endpoint; tracing is off when unset."
    )
    service_name: str = Field("meshgate", description="service.name of exported spans.")
    trace_sample_ratio: float = Field(
        1.0, ge=0, le=1, description="Share of new traces sampled; inbound decisions are kept."
    )
    export_delay_ms: int = Field(
        1000, ge=10, description="Most time a finished span waits before it is exported."
    )
    access_log: bool = Field(True, description="One JSON line per request on meshgate.access.")
    json_logs: bool = Field(True, description="Log as JSON lines (the trace id in every line).")
    log_levels: dict[str, Literal["debug", "info", "warning", "error"]] = Field(
        default_factory=dict,
        description="Levels of named loggers, e.g. {'psycopg.pool': 'info'}; libraries'"
        " loggers are at warning unless named here.",
    )
    latency_window: int = Field(
        2000, ge=10, description="Latest predictions per version kept for percentiles."
    )
    snapshot_seconds: float = Field(
        30.0,
        gt=0,
        description="How often the figures are saved to the SQL store; a starting process"
        " loads them and reads only the log after them.",
    )
    drift: DriftConfig = Field(default_factory=DriftConfig)
    alerts: AlertConfig = Field(default_factory=AlertConfig)
    slo: SloConfig = Field(default_factory=SloConfig)

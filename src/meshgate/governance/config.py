"""Settings of the audit trail (``audit:`` in meshgate.yaml, ``MESHGATE_AUDIT__*``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class AuditConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retention_days: int = Field(
        183,
        ge=183,
        description="Audit records are kept at least this long; older whole segments, up to a "
        "signed checkpoint, are pruned and that checkpoint stays as the chain's new anchor.",
    )
    checkpoint_every: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="A signed checkpoint is written at least every this many records; "
        "verification treats a longer unsigned stretch as a deleted checkpoint.",
    )
    checkpoint_interval_seconds: float = Field(
        60.0,
        ge=0.05,
        le=86_400,
        description="A signed checkpoint of the head is also written this often when records "
        "were appended since the last one, bounding how long a record stays unsigned.",
    )
    signing_key: SecretStr | None = Field(
        None,
        description="Ed25519 private key of the checkpoints (PEM, or the 32 raw bytes in "
        "base64). When unset one is generated into data_dir/audit_signing_key.pem (0600). Set "
        "it explicitly when several hosts share one database.",
    )
    trusted_public_keys: list[str] = Field(
        default_factory=list,
        description="Public keys (PEM or base64) of earlier signing keys, so checkpoints signed "
        "before a key rotation still verify.",
    )
    prune_interval_seconds: float = Field(
        3600.0, ge=1, description="How often records past the retention period are pruned."
    )
    prediction_flush_seconds: float = Field(
        0.2,
        ge=0.001,
        le=60,
        description="Unused: prediction references are appended by the audit consumer group "
        "as it reads the log (kept so existing settings still load).",
    )

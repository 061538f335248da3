"""The governance's parts, built for the composition root: the audit trail and its routes."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from meshgate.config import Settings
from meshgate.events.base import Filter
from meshgate.events.groups import LeasedGroup
from meshgate.events.leases import Leases
from meshgate.events.service import EventService
from meshgate.governance.audit import GROUP, PREDICTION_TYPE, AuditService
from meshgate.governance.routes import router
from meshgate.governance.signing import load_signer
from meshgate.sql import SqlStore

log = logging.getLogger("meshgate.governance")
ROUTERS: list[APIRouter] = [router]


def build_audit(settings: Settings, sql: SqlStore) -> AuditService:
    """The audit trail, not yet started."""
    if sql.dialect == "postgresql" and settings.audit.signing_key is None:
        log.warning(
            "audit: checkpoints are signed with the key in %s; set audit.signing_key "
            "(MESHGATE_AUDIT__SIGNING_KEY) when processes on several hosts share the database",
            settings.data_dir,
        )
    signer = load_signer(settings.audit, settings.data_dir)
    return AuditService(sql, signer, settings.audit)


def build_prediction_references(
    events: EventService, leases: Leases, audit: AuditService
) -> LeasedGroup:
    """The consumer group referencing every prediction in the trail, once per cluster."""
    return LeasedGroup(
        events, leases, GROUP, audit.record_predictions, where=Filter(type=PREDICTION_TYPE)
    )

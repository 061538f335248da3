"""The governance as a module of the platform: the audit trail and its routes."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from meshgate.governance.audit import PREDICTION_TYPE, AuditService
from meshgate.governance.signing import load_signer
from meshgate.governance.store import MIGRATIONS
from meshgate.platform import Platform
from meshgate.sql import Migration

log = logging.getLogger("meshgate.governance")


def build_audit(platform: Platform) -> AuditService:
    settings = platform.settings
    signer = load_signer(settings.audit, settings.data_dir)
    return AuditService(platform.sql, signer, settings.audit)


class GovernanceModule:
    name = "governance"
    migrations: list[Migration] = MIGRATIONS

    def __init__(self) -> None:
        self.audit: AuditService | None = None

    def routers(self) -> list[APIRouter]:
        from meshgate.governance.routes import router

        return [router]

    async def start(self, platform: Platform) -> None:
        settings = platform.settings
        if platform.sql.dialect == "postgresql" and settings.audit.signing_key is None:
            log.warning(
                "audit: checkpoints are signed with the key in %s; set audit.signing_key "
                "(MESHGATE_AUDIT__SIGNING_KEY) when processes on several hosts share the database",
                settings.data_dir,
            )
        self.audit = build_audit(platform)
        await self.audit.start()
        platform.audit = self.audit
        if platform.events is not None:
            platform.events.on(PREDICTION_TYPE, self.audit.on_prediction)

    async def close(self) -> None:
        if self.audit is not None:
            await self.audit.close()
            self.audit = None

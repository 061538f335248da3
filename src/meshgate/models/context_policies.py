"""The registry as the Context Mesh sees it: the context policy each model was registered with.

A model is the context consumer ``model:<name>``; its ``context_policy`` is what the policy
book falls back on when no policy is set for that consumer through the API or the config.
"""

from __future__ import annotations

from typing import Any

from meshgate.context.ports import MODEL_CONSUMER, model_consumer
from meshgate.models.registry import Registry


def _allow(record: dict[str, Any]) -> list[str]:
    return list(record["context_policy"]["allow"])


class RegisteredModelPolicies:
    def __init__(self, registry: Registry):
        self.registry = registry

    async def registered_policy(self, tenant: str, consumer: str) -> list[str] | None:
        if not consumer.startswith(MODEL_CONSUMER):
            return None
        found = await self.registry.find_model(tenant, consumer.removeprefix(MODEL_CONSUMER))
        return None if found is None else _allow(found)

    async def registered_policies(self, tenant: str) -> dict[str, list[str]]:
        policies = await self.registry.context_policies(tenant)
        return {model_consumer(name): allow for name, allow in policies.items()}

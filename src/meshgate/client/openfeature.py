"""An OpenFeature provider for Meshgate's feature flags.

Applications evaluate flags through OpenFeature's standard client; this provider asks
Meshgate (``POST /v1/flags/evaluate``) with the evaluation context's targeting key as the
user, so rules see that user's Context Mesh attributes and the split stays sticky per user::

    from openfeature import api
    from meshgate.client.openfeature import MeshgateProvider

    api.set_provider(MeshgateProvider("http://127.0.0.1:8080", api_key="..."))
    client = api.get_client()
    client.get_boolean_value("new-ui", False, EvaluationContext(targeting_key="alice"))

The key needs the ``inference`` scope, and ``users:assert`` to evaluate for named users.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import httpx
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import FlagNotFoundError, GeneralError, TypeMismatchError
from openfeature.flag_evaluation import FlagResolutionDetails
from openfeature.provider import AbstractProvider
from openfeature.provider.metadata import Metadata

T = TypeVar("T")


class MeshgateProvider(AbstractProvider):
    def __init__(self, base_url: str, *, api_key: str, timeout: float = 5.0) -> None:
        super().__init__()
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
        )

    def get_metadata(self) -> Metadata:
        return Metadata(name="meshgate")

    def shutdown(self) -> None:
        self._http.close()

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, evaluation_context, (bool,))

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, evaluation_context, (str,))

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, evaluation_context, (int,))

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, evaluation_context, (float, int))

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[Any] | Mapping[str, Any],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Any]:
        return self._resolve(flag_key, evaluation_context, (dict, list))

    def _resolve(
        self, key: str, context: EvaluationContext | None, kinds: tuple[type, ...]
    ) -> FlagResolutionDetails[Any]:
        body: dict[str, Any] = {"flags": [key]}
        if context is not None and context.targeting_key:
            body["user_id"] = context.targeting_key
        try:
            answer = self._http.post("/v1/flags/evaluate", json=body)
        except httpx.HTTPError as exc:
            raise GeneralError(f"Meshgate is unreachable: {exc}") from exc
        if answer.status_code == 404:
            raise FlagNotFoundError(f"no flag {key!r}")
        if answer.status_code != 200:
            raise GeneralError(f"Meshgate answered {answer.status_code}: {answer.text[:200]}")
        found = answer.json()["flags"][key]
        value = found["value"]
        wrong_bool = bool not in kinds and isinstance(value, bool)
        if not isinstance(value, kinds) or wrong_bool:
            raise TypeMismatchError(f"flag {key!r} is not of the requested type")
        return FlagResolutionDetails(
            value=float(value)
            if float in kinds and isinstance(value, int | float) and not isinstance(value, bool)
            else value,
            variant=found["variant"],
            reason=found["reason"],
        )

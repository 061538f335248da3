"""What the candidate and the baseline did since a rollout began, read from the event log.

The log is the cluster's one record of every prediction and every feedback, whichever node
served it, so the figures are the cluster's. Each prediction event is parsed by monitoring's
own reading of prediction data (outcome, latency, features, predicted label), and counted
for the version that was routed the call: a call the candidate failed and a fallback
answered (``fallback_from``) is the candidate's error. Shadow copies count for the version
that served them, and a shadow's answer is compared with the primary's (agreement).

The window starts at the log position stored with the rollout, so a node that takes the
controller over rebuilds exactly the same figures by reading from there.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Protocol

from meshgate.delivery.analysis import Arm, keep_value
from meshgate.events.base import Filter
from meshgate.events.catalogue import PREDICTION_FEEDBACK, PREDICTION_MADE
from meshgate.events.envelope import Record
from meshgate.monitoring.observations import correctness, feedback_target, prediction_of

MADE = PREDICTION_MADE.name
FEEDBACK = PREDICTION_FEEDBACK.name
PAGE = 1000
REMEMBERED = 200_000
"""Predictions remembered for their feedback and their shadows (oldest forgotten first)."""


class LogReader(Protocol):
    async def read(self, after: int = 0, limit: int = 100, where: Filter = ...) -> list[Record]:
        """Up to ``limit`` matching records with sequence > ``after``, in log order."""
        ...


class Evidence:
    """The two arms of one rollout, brought up to date by :meth:`catch_up`."""

    def __init__(self, tenant: str, model: str, candidate: str, baseline: str, after: int):
        self.tenant = tenant
        self.model = model
        self.versions = {candidate: "candidate", baseline: "baseline"}
        self.candidate = Arm()
        self.baseline = Arm()
        self.made_after = after
        self.feedback_after = after
        self._predictions: OrderedDict[str, tuple[str, Any]] = OrderedDict()

    def arm(self, side: str) -> Arm:
        return self.candidate if side == "candidate" else self.baseline

    async def catch_up(self, log: LogReader) -> None:
        made = Filter(tenant=self.tenant, type=MADE, subject=f"models/{self.model}")
        while True:
            records = await log.read(self.made_after, PAGE, made)
            for record in records:
                self._made(record)
            if records:
                self.made_after = records[-1].sequence
            if len(records) < PAGE:
                break
        # Feedback only up to the predictions read: a later feedback names one not yet seen.
        feedback = Filter(tenant=self.tenant, type=FEEDBACK)
        while self.feedback_after < self.made_after:
            records = await log.read(self.feedback_after, PAGE, feedback)
            for record in records:
                if record.sequence > self.made_after:
                    return
                self._feedback(record)
                self.feedback_after = record.sequence
            if len(records) < PAGE:
                self.feedback_after = self.made_after
                break

    def _made(self, record: Record) -> None:
        data = record.data
        prediction = prediction_of(self.tenant, data)
        if prediction is None or not isinstance(data, dict):
            return
        routed = str(data.get("fallback_from") or prediction.version)
        side = self.versions.get(routed)
        if side is None or prediction.outcome == "client_error":
            return  # another version, or a call refused as it was asked: nobody's fault
        arm = self.arm(side)
        failed = prediction.error or routed != prediction.version
        arm.call(error=failed, latency_ms=_ms(prediction.latency_seconds))
        if failed:
            return
        for name, values in prediction.features.items():
            column = arm.inputs.setdefault(name, [])
            for value in values:
                keep_value(column, value)
        if prediction.predicted is not None:
            keep_value(arm.outputs, prediction.predicted)
        primary = data.get("shadow_of")
        if data.get("shadow") and isinstance(primary, str):
            seen = self._predictions.get(primary)
            if seen is not None and seen[1] is not None and prediction.predicted is not None:
                self.candidate.compared += 1
                self.candidate.agreed += str(seen[1]) == str(prediction.predicted)
            return
        prediction_id = data.get("prediction_id") or record.id
        self._predictions[str(prediction_id)] = (side, prediction.predicted)
        if len(self._predictions) > REMEMBERED:
            self._predictions.popitem(last=False)

    def _feedback(self, record: Record) -> None:
        target = feedback_target(record.data, record.subject)
        seen = self._predictions.get(target) if target else None
        if seen is None or target is None:
            return
        correct = correctness(record.data, seen[1])
        if correct is None:
            return
        del self._predictions[target]  # the first usable feedback counts, as in monitoring
        arm = self.arm(seen[0])
        arm.feedback += 1
        arm.correct += correct


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000

"""Render the Kubernetes manifests offline: kustomize (kubectl) and the Helm chart (Helm's Go
SDK through helm-python-sdk). No cluster is contacted."""

from __future__ import annotations

import copy
import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
CHART = ROOT / "deploy" / "helm" / "meshgate"
OVERLAYS = ("embedded", "scale-out")
HELM_VALUES = {"scale-out": None, "embedded": CHART / "values-embedded.yaml"}
KUBERNETES_VERSION = "1.37.0"


def kubectl() -> str | None:
    return shutil.which("kubectl")


def kustomize(overlay: str) -> list[dict[str, Any]]:
    return copy.deepcopy(_kustomize(overlay))


def helm(overlay: str) -> list[dict[str, Any]]:
    return copy.deepcopy(_helm(overlay))


@functools.cache
def _kustomize(overlay: str) -> list[dict[str, Any]]:
    binary = kubectl()
    assert binary is not None
    out = subprocess.run(
        [binary, "kustomize", str(K8S / "overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@functools.cache
def _helm(overlay: str) -> list[dict[str, Any]]:
    from helm_python.chart import Chart

    values_file = HELM_VALUES[overlay]
    values = yaml.safe_load(values_file.read_text()) if values_file else None
    rendered = Chart.load(CHART).render(values, name="meshgate", namespace="default")
    docs: list[dict[str, Any]] = []
    for _path, text in sorted(rendered.items()):
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def pod_specs(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every pod template (workloads) in a rendering."""
    workloads = ("Deployment", "StatefulSet", "DaemonSet", "Job")
    return [o["spec"]["template"]["spec"] for o in objects if o["kind"] in workloads]

"""The Kubernetes manifests and the Helm chart: rendered offline, valid against the
Kubernetes OpenAPI schemas, the shared secrets wired into every pod, the same objects both
ways."""

from __future__ import annotations

import base64
import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from meshgate.cli import GRACEFUL_SHUTDOWN_SECONDS
from meshgate.config import Settings
from tests.conftest import unavailable
from tests.deploy.render import (
    KUBERNETES_VERSION,
    OVERLAYS,
    ROOT,
    by_kind,
    helm,
    kubectl,
    kustomize,
    pod_specs,
)

SHARED_SECRETS = {
    "MESHGATE_ADMIN_KEY": "admin-key",
    "MESHGATE_KEY_PEPPER": "key-pepper",
    "MESHGATE_CONTEXT__HANDLE_SECRET": "context-handle-secret",
    "MESHGATE_AUDIT__SIGNING_KEY": "audit-signing-key",
}
BACKEND_URLS = {
    "MESHGATE_DATABASE_URL": "database-url",
    "MESHGATE_REDIS_URL": "redis-url",
    "MESHGATE_EVENTS__URL": "events-url",
}


@pytest.fixture(scope="module", params=[(o, r) for o in OVERLAYS for r in ("kustomize", "helm")])
def rendering(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    overlay, renderer = request.param
    if renderer == "kustomize":
        if kubectl() is None:
            unavailable("kubectl", "not on the PATH")
        return overlay, kustomize(overlay)
    return overlay, helm(overlay)


def test_every_object_is_valid_against_the_kubernetes_schemas(rendering) -> None:
    _, objects = rendering
    kinds = {o["kind"] for o in objects}
    expected = {
        "ServiceAccount",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ServiceMonitor",
    }
    assert expected <= kinds
    for obj in objects:
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: checked field by field below
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            first = str(exc).splitlines()[0]
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {first}")


def test_schema_validation_catches_a_bad_field() -> None:
    """The validator really runs: an unknown field in a container is refused."""
    objects = helm("scale-out")
    deployment = copy.deepcopy(by_kind(objects, "Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def secret_refs(container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    refs = {}
    for env in container.get("env", []):
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            refs[env["name"]] = (ref["name"], ref["key"])
    return refs


def test_the_shared_secrets_are_wired_into_every_pod(rendering) -> None:
    overlay, objects = rendering
    specs = pod_specs(objects)
    assert specs
    wanted = dict(SHARED_SECRETS)
    if overlay == "scale-out":
        wanted |= BACKEND_URLS
    for spec in specs:
        for container in spec["containers"] + spec.get("initContainers", []):
            refs = secret_refs(container)
            for env, key in wanted.items():
                assert refs.get(env) == ("meshgate", key), f"{container['name']}: {env}"
            plain = {e["name"] for e in container.get("env", []) if "value" in e}
            assert not plain & (SHARED_SECRETS.keys() | BACKEND_URLS.keys())
            assert not container.get("envFrom")  # nothing shadows the Secret


def test_pods_run_unprivileged_on_a_read_only_root(rendering) -> None:
    _, objects = rendering
    for spec in pod_specs(objects):
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["automountServiceAccountToken"] is False
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert "add" not in sc["capabilities"]
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]]
            assert "/data" in mounts
            assert container["resources"]["requests"] and container["resources"]["limits"]


def test_probes_and_the_drain_match_the_server(rendering) -> None:
    _, objects = rendering
    for spec in pod_specs(objects):
        container = spec["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            assert container[probe]["httpGet"]["path"] in Settings().public_paths
        command = container["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "sleep"
        pre_stop = int(command[1])
        assert spec["terminationGracePeriodSeconds"] > pre_stop + GRACEFUL_SHUTDOWN_SECONDS
        env = {e["name"]: e.get("value") for e in container["env"]}
        port = next(p for p in container["ports"] if p["name"] == "http")
        assert env["MESHGATE_PORT"] == str(port["containerPort"])
        assert container["args"] == ["serve"]


def test_selectors_find_the_pods(rendering) -> None:
    _, objects = rendering
    deployment = by_kind(objects, "Deployment")[0]
    labels = deployment["spec"]["template"]["metadata"]["labels"]

    def selects(selector: dict[str, str]) -> bool:
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    assert selects(deployment["spec"]["selector"]["matchLabels"])
    service = by_kind(objects, "Service")[0]
    assert selects(service["spec"]["selector"])
    assert selects(by_kind(objects, "PodDisruptionBudget")[0]["spec"]["selector"]["matchLabels"])
    policy = by_kind(objects, "NetworkPolicy")[0]["spec"]
    assert selects(policy["podSelector"]["matchLabels"])
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    monitor = by_kind(objects, "ServiceMonitor")[0]["spec"]
    assert all(
        service["metadata"]["labels"].get(k) == v
        for k, v in monitor["selector"]["matchLabels"].items()
    )
    port_names = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["endpoints"]:
        assert endpoint["port"] in port_names and endpoint["path"] == "/metrics"
        assert endpoint["authorization"]["credentials"]["key"]
    for hpa in by_kind(objects, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])


def test_the_config_map_is_a_valid_meshgate_config(rendering, tmp_path: Path) -> None:
    from meshgate.config import load_settings

    _, objects = rendering
    config = by_kind(objects, "ConfigMap")[0]["data"]["meshgate.yaml"]
    (tmp_path / "meshgate.yaml").write_text(config)
    settings = load_settings(tmp_path / "meshgate.yaml", data_dir=tmp_path)
    assert settings.namespace


def test_embedded_keeps_one_replica_on_a_volume() -> None:
    for objects in (helm("embedded"), *([kustomize("embedded")] if kubectl() else [])):
        deployment = by_kind(objects, "Deployment")[0]
        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        assert not by_kind(objects, "HorizontalPodAutoscaler")
        data = next(v for v in pod_specs(objects)[0]["volumes"] if v["name"] == "data")
        claim = data["persistentVolumeClaim"]["claimName"]
        assert [c["metadata"]["name"] for c in by_kind(objects, "PersistentVolumeClaim")] == [claim]


def test_scale_out_rolls_without_losing_capacity() -> None:
    objects = helm("scale-out")
    deployment = by_kind(objects, "Deployment")[0]
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    hpa = by_kind(objects, "HorizontalPodAutoscaler")[0]
    assert hpa["spec"]["minReplicas"] >= 2
    assert not by_kind(objects, "PersistentVolumeClaim")


def normalise(objects: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    out = {}
    for obj in objects:
        obj = copy.deepcopy(obj)
        if obj["kind"] == "ConfigMap":
            obj["data"] = {k: yaml.safe_load(v) for k, v in obj["data"].items()}
        for spec in pod_specs([obj]):
            # Lists that Kubernetes merges by name: their order carries no meaning.
            spec["volumes"] = sorted(spec["volumes"], key=lambda v: v["name"])
            for container in spec["containers"]:
                container["env"] = sorted(container["env"], key=lambda e: e["name"])
                container["lifecycle"]["preStop"]["exec"]["command"] = [
                    str(c) for c in container["lifecycle"]["preStop"]["exec"]["command"]
                ]
        out[(obj["kind"], obj["metadata"]["name"])] = obj
    return out


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_helm_renders_the_same_objects_as_kustomize(overlay: str) -> None:
    if kubectl() is None:
        unavailable("kubectl", "not on the PATH")
    assert normalise(helm(overlay)) == normalise(kustomize(overlay))


def readme_block(start: str) -> str:
    text = (ROOT / "deploy" / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    return next(b for b in blocks if b.startswith(start))


def test_the_documented_secret_command_makes_every_key_the_pods_read(tmp_path: Path) -> None:
    if kubectl() is None:
        unavailable("kubectl", "not on the PATH")
    command = readme_block("kubectl create secret generic meshgate")
    subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command], cwd=tmp_path, check=True, timeout=60
    )
    secret = yaml.safe_load((tmp_path / "meshgate-secret.yaml").read_text())
    kubernetes_validate.validate(secret, KUBERNETES_VERSION, strict=True)
    read = set()
    for overlay in OVERLAYS:
        for spec in pod_specs(kustomize(overlay)):
            read |= {ref[1] for ref in secret_refs(spec["containers"][0]).values()}
    assert read <= set(secret["data"])
    # The generated signing key is one the audit trail accepts.
    from meshgate.governance.signing import parse_private

    parse_private(base64.b64decode(secret["data"]["audit-signing-key"]).decode())

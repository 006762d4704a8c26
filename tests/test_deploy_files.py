"""The deployment files: Kubernetes manifests valid against the Kubernetes schemas, and the
compose file and manifests describing the same working cluster.

Kubernetes: every document of deploy/k8s is checked with kubernetes-validate (the API's JSON
schemas, shipped offline in the package), strictly: an unknown or misspelt field fails. The
compose file has no maintained offline schema package here (see the README's deployment
notes), so its structure is checked: three Weaviate nodes that can form one Raft cluster, the
bot replicas and the worker, settings the product knows, and no secret written in a file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import typer.main
import yaml

from supportbot.cli import app as cli_app
from supportbot.settings import WEAVIATE_VERSION, Settings
from tests.conftest import REPO

K8S = REPO / "deploy" / "k8s"
COMPOSE = REPO / "docker-compose.yml"
# The oldest Kubernetes the manifests promise to work on (policy/v1 PDBs need 1.21+).
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
WEAVIATE_IMAGE = f"cr.weaviate.io/semitechnologies/weaviate:{WEAVIATE_VERSION}"
NODES = 3


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifests() -> list[tuple[str, dict[str, Any]]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [(name, doc) for name in kustomization["resources"] for doc in documents(K8S / name)]


def by_kind(kind: str, name: str) -> dict[str, Any]:
    return next(
        doc for _, doc in manifests() if doc["kind"] == kind and doc["metadata"]["name"] == name
    )


def setting_names() -> set[str]:
    """Every environment variable name Settings reads."""
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        choices = getattr(field.validation_alias, "choices", None)
        names.update(str(c) for c in choices) if choices else names.add(name.upper())
    return names


def secret_names() -> set[str]:
    """Settings that hold a secret (SecretStr), the database URL (it carries the password)."""
    secret = {"DATABASE_URL", "POSTGRES_PASSWORD"}
    for field in Settings.model_fields.values():
        if "SecretStr" in str(field.annotation):
            secret.update(str(c) for c in getattr(field.validation_alias, "choices", []))
    return secret


def no_credentials(value: str) -> bool:
    """A URL-valued secret setting may be written in a file when it carries no password."""
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc) and parts.password is None and not parts.username


# --- Kubernetes ---------------------------------------------------------------------------------


def test_the_kustomization_lists_every_manifest() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schema(version: str) -> None:
    checked = 0
    for name, doc in manifests():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{name}: {doc['kind']}/{doc['metadata']['name']}: {e.message} at {e.path}")
        checked += 1
    assert checked >= 12  # the services, stateful sets, deployments, PDB and config map


def test_the_validator_rejects_a_broken_manifest() -> None:
    """Not vacuous: the strict schema check fails a misspelt field and a wrong type."""
    statefulset = by_kind("StatefulSet", "weaviate")
    misspelt = {**statefulset, "spec": {**statefulset["spec"], "replica": 3}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, KUBERNETES_VERSIONS[-1], strict=True)
    wrong_type = {**statefulset, "spec": {**statefulset["spec"], "replicas": "three"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, KUBERNETES_VERSIONS[-1], strict=True)


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container.get("env", [])}


def test_the_weaviate_statefulset_forms_one_raft_cluster() -> None:
    statefulset = by_kind("StatefulSet", "weaviate")
    spec = statefulset["spec"]
    container = spec["template"]["spec"]["containers"][0]
    env = _env(container)
    pods = [f"weaviate-{i}" for i in range(spec["replicas"])]

    assert spec["replicas"] == NODES
    assert container["image"] == WEAVIATE_IMAGE
    assert env["RAFT_JOIN"]["value"].split(",") == pods  # every pod votes
    assert int(env["RAFT_BOOTSTRAP_EXPECT"]["value"]) == NODES
    assert env["CLUSTER_HOSTNAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert spec["podManagementPolicy"] == "Parallel"  # all voters start together
    headless = by_kind("Service", spec["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert env["CLUSTER_JOIN"]["value"] == headless["metadata"]["name"]
    ports = {p["port"] for p in headless["spec"]["ports"]}
    for name in ("CLUSTER_GOSSIP_BIND_PORT", "CLUSTER_DATA_BIND_PORT", "RAFT_PORT"):
        assert int(env[name]["value"]) in ports, name
    labels = spec["template"]["metadata"]["labels"]
    for service in (headless, by_kind("Service", "weaviate")):
        assert service["spec"]["selector"].items() <= labels.items()


def test_the_bots_and_worker_run_real_commands_with_the_cluster_settings() -> None:
    commands = typer.main.get_command(cli_app).commands  # type: ignore[attr-defined]
    config = by_kind("ConfigMap", "supportbot-config")["data"]
    bot, worker = by_kind("Deployment", "bot"), by_kind("Deployment", "worker")

    assert bot["spec"]["replicas"] == 2 and worker["spec"]["replicas"] == 1
    for deployment in (bot, worker):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["args"][0] in commands
        sources = {next(iter(s)): next(iter(s.values()))["name"] for s in container["envFrom"]}
        assert sources == {"configMapRef": "supportbot-config", "secretRef": "supportbot-secrets"}
    assert by_kind("Deployment", "bot")["spec"]["template"]["spec"]["containers"][0]["args"][
        :2
    ] == ["run", "--slack-http"]
    assert set(config) <= setting_names(), set(config) - setting_names()
    assert int(config["WEAVIATE_REPLICATION_FACTOR"]) == NODES
    assert config["WEAVIATE_URL"] == "http://weaviate:8080"
    Settings(_env_file=None, **config)  # type: ignore[call-arg]  # the values load


def test_no_secret_is_written_in_a_manifest() -> None:
    secret = secret_names()
    assert all(doc["kind"] != "Secret" for _, doc in manifests())
    config = by_kind("ConfigMap", "supportbot-config")["data"]
    for variable in set(config) & secret:  # only a URL without credentials (REDIS_URL)
        assert no_credentials(config[variable]), variable
    for name, doc in manifests():
        template = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in template.get("containers", []):
            for variable, entry in _env(container).items():
                if variable in secret or "PASSWORD" in variable:
                    assert "secretKeyRef" in entry.get("valueFrom", {}), (name, variable)


# --- docker compose -----------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def weaviate_nodes() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose()["services"].items() if s.get("image") == WEAVIATE_IMAGE}


def test_compose_has_the_cluster_topology() -> None:
    services = compose()["services"]
    assert len(weaviate_nodes()) == NODES
    assert {"postgres", "redis", "bot", "worker"} <= set(services)
    assert services["bot"]["deploy"]["replicas"] == 2
    assert services["bot"]["command"][:2] == ["run", "--slack-http"]
    assert services["worker"]["command"] == ["worker"]
    commands = typer.main.get_command(cli_app).commands  # type: ignore[attr-defined]
    assert services["bot"]["command"][0] in commands and "worker" in commands
    for name in ("bot", "worker"):
        depends = services[name]["depends_on"]
        assert set(weaviate_nodes()) | {"postgres", "redis"} <= set(depends)
        assert all(d["condition"] == "service_healthy" for d in depends.values())
        assert all("healthcheck" in services[d] for d in depends)


def test_compose_weaviate_nodes_form_one_raft_cluster() -> None:
    nodes = weaviate_nodes()
    hostnames = {name: node["environment"]["CLUSTER_HOSTNAME"] for name, node in nodes.items()}
    assert len(set(hostnames.values())) == NODES
    for name, node in nodes.items():
        env = node["environment"]
        assert set(env["RAFT_JOIN"].split(",")) == set(hostnames.values())
        assert int(env["RAFT_BOOTSTRAP_EXPECT"]) == NODES
        if "CLUSTER_JOIN" in env:  # the others join the first through its gossip port
            host, port = env["CLUSTER_JOIN"].split(":")
            assert host in nodes and host != name
            assert port == nodes[host]["environment"]["CLUSTER_GOSSIP_BIND_PORT"]
        assert "weaviate" in node["networks"]["default"]["aliases"]
    assert sum("CLUSTER_JOIN" not in n["environment"] for n in nodes.values()) == 1
    volumes = [node["volumes"][0].split(":")[0] for node in nodes.values()]
    assert len(set(volumes)) == NODES  # each node its own data


def test_compose_supportbot_settings_are_known_and_carry_no_secret() -> None:
    services = compose()["services"]
    env = services["bot"]["environment"]
    assert env == services["worker"]["environment"]
    assert set(env) <= setting_names(), set(env) - setting_names()
    assert int(env["WEAVIATE_REPLICATION_FACTOR"]) == NODES
    assert env["WEAVIATE_URL"] == "http://weaviate:8080"
    # Passwords come from .env through ${VAR:?}: the file holds none.
    text = COMPOSE.read_text()
    assert "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith(
        "${POSTGRES_PASSWORD:?"
    )
    for variable in secret_names() - {"DATABASE_URL"}:
        for match in re.finditer(rf"(?m)^\s*{variable}:\s*(\S+)", text):
            value = match.group(1)
            assert value.startswith("${") or no_credentials(value), variable

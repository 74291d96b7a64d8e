"""contrib/kubernetes/: the manifests are accepted by the real API server, carry the
systemd timer's schedule and limits, and grant exactly what the engine uses.

kube-apiserver 1.20 silently drops fields it does not know (strict field validation came
in 1.25), so acceptance alone proves little: every field of each manifest must come back
in the server's dry-run answer. 1.20 serves CronJob as batch/v1beta1 only (batch/v1 came
in 1.21, with the same spec); the CronJob is checked there when batch/v1 is not served.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import PKI, ROOT

from ocsptool.kubernetes.client import KubeClient
from ocsptool.kubernetes.config import in_cluster
from ocsptool.kubernetes.errors import Forbidden
from ocsptool.kubernetes.publish import Outcome, publish_staple
from ocsptool.kubernetes.secrets import TlsSecret, read_tls_secrets
from ocsptool.testing.kubernetes import KubeApiServer

MANIFESTS = ROOT / "contrib" / "kubernetes"
SYSTEMD = ROOT / "contrib" / "systemd"
PLURALS = {
    "ServiceAccount": "serviceaccounts",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "CronJob": "cronjobs",
}


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append((path.name, document))
    return found


def by_kind(kind: str) -> dict[str, Any]:
    (found,) = [d for _, d in documents() if d["kind"] == kind]
    return found


def missing(sent: Any, answer: Any, where: str = "") -> list[str]:
    """Every field of ``sent`` that ``answer`` lacks or holds otherwise."""
    if isinstance(sent, dict):
        if not isinstance(answer, dict):
            return [where or "."]
        gaps: list[str] = []
        for key, value in sent.items():
            gaps += (
                missing(value, answer[key], f"{where}.{key}")
                if key in answer
                else [f"{where}.{key}"]
            )
        return gaps
    if isinstance(sent, list):
        if not isinstance(answer, list) or len(answer) != len(sent):
            return [where]
        return [gap for i, v in enumerate(sent) for gap in missing(v, answer[i], f"{where}[{i}]")]
    return [] if sent == answer else [f"{where}: {sent!r} != {answer!r}"]


def test_the_manifests_are_the_four_expected() -> None:
    assert sorted(d["kind"] for _, d in documents()) == sorted(PLURALS)
    assert {d["metadata"]["namespace"] for _, d in documents()} == {"ocsptool"}


@pytest.mark.parametrize(("name", "manifest"), documents(), ids=[n for n, _ in documents()])
def test_the_api_server_accepts_each_manifest_whole(
    kube: KubeApiServer, name: str, manifest: dict[str, Any]
) -> None:
    admin = kube.admin
    admin.request(
        "POST", "/api/v1/namespaces", body={"metadata": {"name": "ocsptool"}}, ok=(201, 409)
    )
    sent = copy.deepcopy(manifest)
    if sent["kind"] == "CronJob" and not admin.serves("batch/v1", "cronjobs"):
        assert admin.serves("batch/v1beta1", "cronjobs")
        sent["apiVersion"] = "batch/v1beta1"
    answer = admin.create(sent, PLURALS[sent["kind"]], dry_run=True)
    assert missing(sent, answer) == []
    # A dry run stores nothing.
    base = "/api/v1" if sent["apiVersion"] == "v1" else f"/apis/{sent['apiVersion']}"
    path = f"{base}/namespaces/ocsptool/{PLURALS[sent['kind']]}/{sent['metadata']['name']}"
    assert admin.request("GET", path, ok=(404,))["reason"] == "NotFound"


def test_a_field_the_server_drops_is_caught(kube: KubeApiServer) -> None:
    """What the acceptance test relies on: 1.20 drops an unknown field without an error."""
    kube.admin.request(
        "POST", "/api/v1/namespaces", body={"metadata": {"name": "ocsptool"}}, ok=(201, 409)
    )
    account = copy.deepcopy(by_kind("ServiceAccount"))
    account["automountServiceAcountToken"] = False  # misspelled
    answer = kube.admin.create(account, "serviceaccounts", dry_run=True)
    assert missing(account, answer) == [".automountServiceAcountToken"]


def unit_value(name: str, key: str) -> str:
    for line in (SYSTEMD / name).read_text().splitlines():
        if line.startswith(f"{key}="):
            return line.split("=", 1)[1]
    raise AssertionError(f"{key} not in {name}")


def test_the_cronjob_runs_like_the_systemd_timer() -> None:
    cronjob = by_kind("CronJob")["spec"]
    # OnCalendar=*:0/15 is minute 0, 15, 30, 45 of every hour.
    assert unit_value("ocsptool.timer", "OnCalendar") == "*:0/15"
    assert cronjob["schedule"] == "*/15 * * * *"
    minutes = re.fullmatch(r"(\d+)min", unit_value("ocsptool.service", "TimeoutStartSec"))
    assert minutes is not None
    job = cronjob["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] == int(minutes.group(1)) * 60 == 900
    assert cronjob["concurrencyPolicy"] == "Forbid"
    assert job["backoffLimit"] == 0


def test_the_pod_is_hardened() -> None:
    pod = by_kind("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["serviceAccountName"] == by_kind("ServiceAccount")["metadata"]["name"]
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    # The state file is on an emptyDir (the root filesystem is read-only).
    args = container["args"]
    state = Path(args[args.index("--state") + 1])
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts[str(state.parent)]]
    assert args[:2] == ["refresh", "--kubernetes"]


def test_the_cronjob_args_are_the_real_flags() -> None:
    """click parses them as ``ocsptool refresh`` does: an unknown flag fails here."""
    from ocsptool.cli import cli

    pod = by_kind("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    command, *args = container["args"]
    with cli.commands[command].make_context(command, list(args)) as ctx:
        assert ctx.params["kubernetes"] is True
        assert ctx.params["state"] == Path("/var/lib/ocsptool/state.json")
        assert ctx.params["namespaces"] == ()  # the service account's own namespace


def test_the_image_is_a_placeholder_with_build_instructions() -> None:
    text = (MANIFESTS / "cronjob.yaml").read_text()
    assert "placeholder" in text
    assert "pip install --no-cache-dir ocsptool" in text
    assert "Python 3.11+" in text


def test_the_role_grants_get_list_patch_on_secrets_only() -> None:
    assert by_kind("Role")["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "patch"]}
    ]
    binding = by_kind("RoleBinding")
    account = by_kind("ServiceAccount")["metadata"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": by_kind("Role")["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
    ]


# -- the Role, applied for real, is exactly what a run needs ------------------------------


def applied(kube: KubeApiServer, namespace: str, verbs: list[str]) -> str:
    """The ServiceAccount, Role (with ``verbs``) and RoleBinding, created in ``namespace``;
    returns a real token of the account (TokenRequest)."""
    for kind in ("ServiceAccount", "Role", "RoleBinding"):
        manifest = copy.deepcopy(by_kind(kind))
        manifest["metadata"]["namespace"] = namespace
        for subject in manifest.get("subjects", []):
            subject["namespace"] = namespace
        if kind == "Role":
            manifest["rules"][0]["verbs"] = verbs
        kube.admin.create(manifest, PLURALS[kind], dry_run=False)
    return kube.admin.service_account_token(namespace, "ocsptool")


@pytest.fixture
def pod(kube: KubeApiServer, kube_ns: str, tmp_path: Path) -> Iterator[Any]:
    """A pod's view: a service account directory with a real token, and its env."""

    def make(verbs: list[str]) -> KubeClient:
        token = applied(kube, kube_ns, verbs)
        account = kube.service_account_dir(tmp_path / "sa", token, kube_ns)
        env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(kube.port)}
        return KubeClient(in_cluster(env, account))

    yield make


def run_once(kube: KubeApiServer, client: KubeClient, namespace: str) -> Outcome:
    """What a run does: list, then write a staple into a Secret that changed meanwhile
    (so it reads the Secret again before writing)."""
    (secret,) = [s for s in read_tls_secrets(client, namespace) if isinstance(s, TlsSecret)]
    kube.admin.patch_secret(namespace, secret.name, labels={"renewed-by": "someone"})
    return publish_staple(client, secret, b"staple").outcome


def test_the_role_lets_the_service_account_run_in_its_namespace_only(
    kube: KubeApiServer, kube_ns: str, pod: Any, pki: PKI
) -> None:
    kube.admin.tls_secret(kube_ns, "site", pki.direct.leaf("site.test", ocsp_url=None))
    client = pod(["get", "list", "patch"])
    assert run_once(kube, client, kube_ns) is Outcome.WRITTEN
    assert kube.admin.secret_data(kube_ns, "site")["tls.ocsp-staple"] == b"staple"

    elsewhere = kube.admin.namespace("elsewhere")
    with pytest.raises(Forbidden) as denied:
        list(client.list_tls_secrets(elsewhere))
    assert str(denied.value) == (
        f'kubernetes namespace "{elsewhere}": forbidden: User '
        f'"system:serviceaccount:{kube_ns}:ocsptool" cannot list secrets; add to a Role in '
        f'namespace "{elsewhere}" bound to ServiceAccount "ocsptool" of namespace '
        f'"{kube_ns}": rules: - apiGroups: [""] resources: ["secrets"] verbs: ["list"]'
    )


@pytest.mark.parametrize("dropped", ["get", "list", "patch"])
def test_each_verb_of_the_role_is_needed(
    kube: KubeApiServer, kube_ns: str, pod: Any, pki: PKI, dropped: str
) -> None:
    kube.admin.tls_secret(kube_ns, "site", pki.direct.leaf("site.test", ocsp_url=None))
    client = pod([v for v in ("get", "list", "patch") if v != dropped])
    if dropped == "list":
        with pytest.raises(Forbidden) as denied:
            list(client.list_tls_secrets(kube_ns))
    else:
        with pytest.raises(Forbidden) as denied:
            run_once(kube, client, kube_ns)
    assert denied.value.verb == dropped
    assert str(denied.value).endswith(f'verbs: ["{dropped}"]')
    assert "tls.ocsp-staple" not in kube.admin.secret_data(kube_ns, "site")

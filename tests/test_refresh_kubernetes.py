"""refresh, renew, status, check and show with --kubernetes, against a real kube-apiserver.

Every run is the CLI as the least-privileged user: ``job``, bound in the test's namespace
to a Role with exactly the verbs of contrib/kubernetes/role.yaml, through a kubeconfig.
Staples come from the real test responder; what a Secret holds is read back by the
administrator with plain API calls and verified against the certificate.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import Result
from conftest import PKI, ROOT, run_subprocess

from ocsptool.certs import Bundle
from ocsptool.ocsp import Staple, build_request, verify
from ocsptool.testing.issuers import CaIssuers
from ocsptool.testing.kubernetes import JOB, KubeApiServer
from ocsptool.testing.pki import Authority, Leaf, key_pem
from ocsptool.testing.responder import Responder

ROLE = ROOT / "contrib" / "kubernetes" / "role.yaml"
KEY = "tls.ocsp-staple"
RunCli = Callable[..., Result]


def role_verbs() -> tuple[str, ...]:
    (rule,) = yaml.safe_load(ROLE.read_text())["rules"]
    assert rule["resources"] == ["secrets"]
    return tuple(rule["verbs"])


@dataclass
class Cluster:
    """The test's namespace on the session's API server, ``job``'s kubeconfig (bound there
    to contrib's Role only), the PKI and responder, and the CLI."""

    kube: KubeApiServer
    ns: str
    kubeconfig: Path
    pki: PKI
    responder: Responder
    run_cli: RunCli
    state: Path

    def leaf(self, name: str, ca: Authority | None = None) -> Leaf:
        return (ca or self.pki.direct).leaf(f"{name}.test", ocsp_url=self.responder.url)

    def run(self, command: str, *args: str, state: Path | None = None) -> Result:
        """``ocsptool COMMAND --kubernetes --kubeconfig ... ARGS`` (``state``: another
        state file than the test's)."""
        if state is None:
            return self.run_cli(command, *kubernetes(self.kubeconfig), *args)
        argv = [command, "--state", str(state), *kubernetes(self.kubeconfig), *args]
        return self.run_cli(*argv, state=None)

    def data(self, name: str, namespace: str | None = None) -> dict[str, bytes]:
        return self.kube.admin.secret_data(namespace or self.ns, name)

    def staple(self, name: str, leaf: Leaf) -> Staple:
        """The staple the Secret holds, verified for ``leaf`` (else the test fails)."""
        bundle = Bundle(Path(name), leaf.cert, leaf.chain[0], None)
        return verify(self.data(name)[KEY], bundle, dt.datetime.now(dt.UTC))

    def versions(self) -> dict[str, str]:
        """Each Secret's resourceVersion: what any write changes."""
        items = self.kube.admin.request("GET", f"/api/v1/namespaces/{self.ns}/secrets")["items"]
        return {i["metadata"]["name"]: i["metadata"]["resourceVersion"] for i in items}


@pytest.fixture
def cluster(  # noqa: PLR0917 - a fixture's parameters are the fixtures it combines
    kube: KubeApiServer,
    kube_ns: str,
    tmp_path: Path,
    pki: PKI,
    responder: Responder,
    run_cli: RunCli,
    state_file: Path,
) -> Cluster:
    kube.admin.allow(kube_ns, JOB, verbs=role_verbs())
    config = kube.kubeconfig(tmp_path / "kube" / "config", user=JOB, namespace=kube_ns)
    return Cluster(kube, kube_ns, config, pki, responder, run_cli, state_file)


def kubernetes(kubeconfig: Path, *namespaces: str) -> list[str]:
    args = ["--kubernetes", "--kubeconfig", str(kubeconfig)]
    for namespace in namespaces:
        args += ["--namespace", namespace]
    return args


def quiet(result: Result) -> bool:
    return result.stdout == "" and result.stderr == ""


# -- a first run, a second, a lost state ---------------------------------------------------


def test_each_tls_secret_gets_a_good_staple_and_nothing_else_changes(cluster: Cluster) -> None:
    pki, admin, ns = cluster.pki, cluster.kube.admin, cluster.ns
    chained, ca_only = cluster.leaf("chained"), cluster.leaf("ca-only")
    delegated = cluster.leaf("delegated", pki.delegated)
    plain = pki.direct.leaf("plain.test", ocsp_url=None)
    admin.tls_secret(ns, "chained", chained, ca=pki.root.pem)
    admin.tls_secret(ns, "ca-only", ca_only, chain=False, ca=pki.direct.pem)
    admin.tls_secret(ns, "delegated", delegated)
    admin.tls_secret(ns, "no-ocsp", plain)
    opaque = {"tls.crt": chained.bundle_pem(key=False), "tls.key": key_pem(chained.key)}
    admin.create_secret(ns, "opaque", opaque, type="Opaque")
    before = {name: admin.secret(ns, name) for name in cluster.versions()}

    result = cluster.run("refresh")

    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    for name, leaf in (("chained", chained), ("ca-only", ca_only), ("delegated", delegated)):
        assert cluster.staple(name, leaf).status == "good"
        now, was = cluster.data(name), before[name]["data"]
        assert set(now) == {*was, KEY}
        for key in was:  # tls.crt, tls.key, ca.crt: byte for byte
            assert base64.b64encode(now[key]).decode() == was[key]
    for name in ("no-ocsp", "opaque"):
        assert admin.secret(ns, name) == before[name]
    managers = {f["manager"] for f in admin.secret(ns, "chained")["metadata"]["managedFields"]}
    assert "ocsptool" in managers


def test_a_second_run_writes_nothing_and_prints_nothing_even_without_its_state(
    cluster: Cluster,
) -> None:
    for name in ("a", "b", "c"):
        cluster.kube.admin.tls_secret(cluster.ns, name, cluster.leaf(name))
    assert cluster.run("refresh").exit_code == 0
    written, asked = cluster.versions(), cluster.responder.requests

    again = cluster.run("refresh")
    assert (again.exit_code, quiet(again)) == (0, True)
    assert (cluster.versions(), cluster.responder.requests) == (written, asked)

    for path in cluster.state.parent.iterdir():  # a CronJob's emptyDir: nothing kept
        path.unlink()
    stateless = cluster.run("refresh")
    assert (stateless.exit_code, quiet(stateless)) == (0, True)
    assert (cluster.versions(), cluster.responder.requests) == (written, asked)
    records = json.loads(cluster.state.read_text())["certs"]
    assert sorted(records) == [f"kubernetes:{cluster.ns}/{n}" for n in ("a", "b", "c")]
    assert all(r["staple"]["status"] == "good" for r in records.values())


def test_a_revocation_reaches_the_secret_with_force_and_check_is_critical(
    cluster: Cluster, tmp_path: Path
) -> None:
    leaf = cluster.leaf("site")
    cluster.kube.admin.tls_secret(cluster.ns, "site", leaf)
    assert cluster.run("refresh").exit_code == 0
    assert cluster.run("check").stdout.startswith("OCSP OK - 1 staple valid")

    cluster.responder.revoked.add(leaf.cert.serial_number)
    assert cluster.run("refresh").exit_code == 0  # not due: the responder is not asked
    forced = cluster.run("refresh", "--force")

    assert forced.exit_code == 1
    assert forced.stderr.startswith(f"ocsptool: kubernetes:{cluster.ns}/site: REVOKED since ")
    assert cluster.staple("site", leaf).status == "revoked"
    check = cluster.run("check")
    assert check.exit_code == 2
    assert check.stdout.startswith("OCSP CRITICAL - site.test: REVOKED since ")
    # The Secret's staple is the record: a probe with no state sees it the same.
    stateless = cluster.run("check", state=tmp_path / "nowhere" / "state.json")
    assert (stateless.exit_code, stateless.stdout) == (2, check.stdout)


def test_renew_status_and_show_name_each_secret(cluster: Cluster) -> None:
    ns = cluster.ns
    cluster.kube.admin.tls_secret(ns, "site", cluster.leaf("site"))
    cluster.kube.admin.tls_secret(ns, "later", cluster.leaf("later"))
    renewed = cluster.run("renew", "site")
    assert renewed.exit_code == 0, renewed.output
    assert renewed.stdout.startswith(f"kubernetes:{ns}/site: fetched: good, valid until ")

    status = cluster.run("status", "--json")
    rows = {c["path"]: c for c in json.loads(status.stdout)["certificates"]}
    assert status.exit_code == 1  # "later" has no staple yet
    assert rows[f"kubernetes:{ns}/site"]["status"] == "good"
    assert rows[f"kubernetes:{ns}/later"]["status"] == "none"
    assert rows[f"kubernetes:{ns}/later"]["reason"] == f"no staple under {KEY}"

    shown = cluster.run_cli("show", *kubernetes(cluster.kubeconfig), f"{ns}/site")
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert f"certificate: kubernetes:{ns}/site" in [" ".join(ln.split()) for ln in lines]
    assert any(" ".join(ln.split()) == f"staple ({KEY}): kubernetes:{ns}/site" for ln in lines)


# -- others act between the run's read and its write ---------------------------------------


def test_a_concurrent_change_is_kept_and_the_staple_written_again(cluster: Cluster) -> None:
    admin, ns = cluster.kube.admin, cluster.ns
    leaf = cluster.leaf("site")
    admin.tls_secret(ns, "site", leaf)
    cluster.responder.before_answer[leaf.cert.serial_number] = lambda: admin.patch_secret(
        ns, "site", {"other": b"theirs"}, labels={"touched": "yes"}
    )

    result = cluster.run("refresh")

    assert not cluster.responder.before_answer  # changed between the list and the patch
    assert (result.exit_code, quiet(result)) == (0, True)
    assert cluster.staple("site", leaf).status == "good"
    assert cluster.data("site")["other"] == b"theirs"
    assert admin.secret(ns, "site")["metadata"]["labels"] == {"touched": "yes"}


def test_a_better_staple_written_meanwhile_is_kept(cluster: Cluster) -> None:
    admin, ns = cluster.kube.admin, cluster.ns
    leaf = cluster.leaf("site")
    admin.tls_secret(ns, "site", leaf)
    other = Responder(revoked={leaf.cert.serial_number})  # another ocsptool, earlier
    other.add_issuer(cluster.pki.direct)
    _, _, theirs = other.answer(build_request(Bundle(Path("s"), leaf.cert, leaf.chain[0], None)))
    cluster.responder.before_answer[leaf.cert.serial_number] = lambda: admin.patch_secret(
        ns, "site", {KEY: theirs}
    )

    result = cluster.run("refresh")

    assert result.exit_code == 0
    assert result.stderr == (
        f"ocsptool: kubernetes:{ns}/site: not written: another writer left a better "
        "staple during this run: responder now says good, but the staple we hold says "
        "REVOKED; kept the revocation\n"
    )
    assert cluster.data("site")[KEY] == theirs
    after = cluster.run("refresh")  # adopted, and said
    assert after.exit_code == 1
    assert after.stderr.startswith(f"ocsptool: kubernetes:{ns}/site: REVOKED since ")
    assert cluster.data("site")[KEY] == theirs


def test_a_certificate_replaced_mid_run_gets_no_staple_for_the_old_one(cluster: Cluster) -> None:
    admin, ns = cluster.kube.admin, cluster.ns
    old, new = cluster.leaf("site"), cluster.leaf("site")
    admin.tls_secret(ns, "site", old)
    replacement = {"tls.crt": new.bundle_pem(key=False), "tls.key": key_pem(new.key)}
    cluster.responder.before_answer[old.cert.serial_number] = lambda: admin.patch_secret(
        ns, "site", replacement
    )

    result = cluster.run("refresh")

    assert result.exit_code == 0
    assert result.stderr == (
        f"ocsptool: kubernetes:{ns}/site: not written: tls.crt changed during this run "
        "(a new certificate): no staple for the old one; the next run staples the new one\n"
    )
    assert cluster.data("site") == replacement
    after = cluster.run("refresh")
    assert (after.exit_code, quiet(after)) == (0, True)
    assert cluster.staple("site", new).status == "good"
    assert cluster.data("site")["tls.crt"] == replacement["tls.crt"]


def test_a_secret_deleted_mid_run_is_one_line_and_its_record_goes(cluster: Cluster) -> None:
    admin, ns = cluster.kube.admin, cluster.ns
    gone, kept = cluster.leaf("gone"), cluster.leaf("kept")
    admin.tls_secret(ns, "gone", gone)
    admin.tls_secret(ns, "kept", kept)
    cluster.responder.before_answer[gone.cert.serial_number] = lambda: admin.delete_secret(
        ns, "gone"
    )

    result = cluster.run("refresh")

    assert result.exit_code == 0
    assert result.stderr == (
        f"ocsptool: kubernetes:{ns}/gone: not written: the Secret was deleted during this run\n"
    )
    assert cluster.staple("kept", kept).status == "good"
    after = cluster.run("refresh")
    assert (after.exit_code, quiet(after)) == (0, True)
    assert sorted(json.loads(cluster.state.read_text())["certs"]) == [f"kubernetes:{ns}/kept"]


# -- RBAC ----------------------------------------------------------------------------------


def test_a_forbidden_namespace_is_one_line_and_the_others_are_served(cluster: Cluster) -> None:
    admin, ns = cluster.kube.admin, cluster.ns
    other = admin.namespace()  # job has no Role there
    leaf = cluster.leaf("site")
    admin.tls_secret(ns, "site", leaf)
    admin.tls_secret(other, "elsewhere", cluster.leaf("elsewhere"))

    result = cluster.run("refresh", "--namespace", ns, "--namespace", other)

    assert result.exit_code == 1
    assert result.stderr == (
        f'ocsptool: kubernetes namespace "{other}": forbidden: User "job" cannot list '
        f'secrets; add to a Role in namespace "{other}" bound to User "job": rules: - '
        'apiGroups: [""] resources: ["secrets"] verbs: ["list"]\n'
    )
    assert cluster.staple("site", leaf).status == "good"
    assert KEY not in cluster.data("elsewhere", other)


def test_a_write_that_rbac_refuses_names_the_rule(
    kube: KubeApiServer, kube_ns: str, pki: PKI, responder: Responder, tmp_path: Path
) -> None:
    kube.admin.allow(kube_ns, JOB, verbs=("get", "list"))
    config = kube.kubeconfig(tmp_path / "config", user=JOB, namespace=kube_ns)
    kube.admin.tls_secret(kube_ns, "site", pki.direct.leaf("site.test", ocsp_url=responder.url))

    done = run_subprocess("refresh", "--state", tmp_path / "state.json", *kubernetes(config))

    assert done.returncode == 1
    assert done.stderr == (
        f'ocsptool: kubernetes:{kube_ns}/site: kubernetes namespace "{kube_ns}": forbidden: '
        f'User "job" cannot patch secrets; add to a Role in namespace "{kube_ns}" bound to '
        'User "job": rules: - apiGroups: [""] resources: ["secrets"] verbs: ["patch"]\n'
    )
    assert KEY not in kube.admin.secret_data(kube_ns, "site")


def test_as_a_process_in_the_namespace_of_the_context(cluster: Cluster, tmp_path: Path) -> None:
    """As cron or a CronJob runs it: a real process, no --namespace (the context's)."""
    leaf = cluster.leaf("site")
    cluster.kube.admin.tls_secret(cluster.ns, "site", leaf)
    state = tmp_path / "process" / "state.json"
    done = run_subprocess("refresh", "--state", state, *kubernetes(cluster.kubeconfig))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert cluster.staple("site", leaf).status == "good"


def test_no_haproxy_socket_is_given_a_secrets_staple(cluster: Cluster, tmp_path: Path) -> None:
    """-s sockets get the PATHs' certificates; a Secret's staple goes to the Secret only."""
    leaf = cluster.leaf("site")
    cluster.kube.admin.tls_secret(cluster.ns, "site", leaf)
    result = cluster.run("refresh", "-s", str(tmp_path / "no-haproxy.sock"))
    assert (result.exit_code, quiet(result)) == (0, True)
    assert cluster.staple("site", leaf).status == "good"


def test_a_secret_without_its_chain_gets_its_issuer_from_aia(
    cluster: Cluster, server: CaIssuers
) -> None:
    leaf = cluster.pki.direct.leaf(
        "alone.test", ocsp_url=cluster.responder.url, ca_issuers=server.url("/ca.der")
    )
    cluster.kube.admin.tls_secret(cluster.ns, "alone", leaf, chain=False)

    result = cluster.run("refresh")

    assert result.exit_code == 0
    assert result.stderr.startswith(
        f"ocsptool: kubernetes:{cluster.ns}/alone: tls.crt lacks its chain; fetched the "
        "issuer CN=Direct Intermediate from "
    )
    assert cluster.staple("alone", leaf).status == "good"


def test_a_selector_and_another_key_from_the_config_file(cluster: Cluster, tmp_path: Path) -> None:
    admin, ns = cluster.kube.admin, cluster.ns
    web, other = cluster.leaf("web"), cluster.leaf("other")
    admin.tls_secret(ns, "web", web, labels={"app": "web"})
    admin.tls_secret(ns, "other", other, labels={"app": "other"})
    config = tmp_path / "config.toml"
    config.write_text(
        f'kubernetes = true\nkubeconfig = "{cluster.kubeconfig}"\nnamespaces = ["{ns}"]\n'
        'selector = "app=web"\nsecret_key = "ocsp.staple"\n'
        f'state = "{cluster.state}"\n'
    )

    result = cluster.run_cli("--config", str(config), "refresh")

    assert (result.exit_code, quiet(result)) == (0, True)
    assert cluster.state.exists()
    bundle = Bundle(Path("web"), web.cert, web.chain[0], None)
    assert verify(cluster.data("web")["ocsp.staple"], bundle, dt.datetime.now(dt.UTC))
    assert KEY not in cluster.data("web")
    assert "ocsp.staple" not in cluster.data("other")
    assert KEY not in cluster.data("other")


def test_the_on_change_hook_is_given_each_changed_secret(cluster: Cluster, tmp_path: Path) -> None:
    for name in ("a", "b"):
        cluster.kube.admin.tls_secret(cluster.ns, name, cluster.leaf(name))
    changed = tmp_path / "changed"
    hook = f'printf %s "$OCSPTOOL_CHANGED" >> {changed}'
    assert cluster.run("refresh", "--on-change", hook).exit_code == 0
    assert cluster.run("refresh", "--on-change", hook).exit_code == 0  # nothing changed
    assert changed.read_text() == f"kubernetes:{cluster.ns}/a\nkubernetes:{cluster.ns}/b\n"


def test_renew_dry_run_is_for_files(run_cli: RunCli) -> None:
    result = run_cli("renew", "--dry-run", "--kubernetes", "site")
    assert result.exit_code == 2
    assert result.stderr.startswith("ocsptool: renew --dry-run reads certificate files, not")


def test_kubernetes_options_need_kubernetes(run_cli: RunCli) -> None:
    result = run_cli("refresh", "--namespace", "web")
    assert result.exit_code == 2
    assert result.stderr == (
        "ocsptool: --namespace only apply with --kubernetes (or kubernetes = true in the "
        "config file)\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--namespace", "Web"), "'Web' is not a namespace name"),
        (("--secret-key", "tls.key"), "refusing to write the staple to 'tls.key'; pick a new key"),
    ],
)
def test_a_bad_namespace_or_key_is_a_usage_error(
    run_cli: RunCli, args: tuple[str, ...], message: str
) -> None:
    result = run_cli("refresh", "--kubernetes", *args)
    assert result.exit_code == 2
    assert message in result.stderr

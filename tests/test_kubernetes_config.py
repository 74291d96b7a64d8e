"""ocsptool.kubernetes.config: finding the API the standard way, and every kubeconfig form.

The forms a user can authenticate with are proved against the real API server (a list
call that RBAC allows only for the right user); the file-level rules (merging, precedence,
errors) need no server.
"""

from __future__ import annotations

import base64
import json
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import PKI

from ocsptool.errors import UsageError
from ocsptool.kubernetes.client import KubeClient
from ocsptool.kubernetes.config import (
    EXTRA_MISSING,
    ApiConfig,
    from_kubeconfig,
    in_cluster,
    load_config,
)
from ocsptool.kubernetes.errors import Forbidden, KubeConfigError, Unauthorized
from ocsptool.testing.kubernetes import JOB, KubeApiServer
from ocsptool.testing.pki import key_pem


def lists(config: ApiConfig, namespace: str) -> list[str]:
    client = KubeClient(config)
    try:
        return [s["metadata"]["name"] for s in client.list_tls_secrets(namespace)]
    finally:
        client.close()


def write(path: Path, document: dict[str, object]) -> Path:
    path.write_text(json.dumps(document))
    return path


def kubeconfig(
    current: str | None = "c",
    *,
    server: str = "https://k8s.example:6443",
    user: dict[str, object] | None = None,
    context: dict[str, object] | None = None,
    name: str = "c",
) -> dict[str, object]:
    document: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": f"{name}-cluster", "cluster": {"server": server}}],
        "users": [{"name": f"{name}-user", "user": user if user is not None else {"token": "t"}}],
        "contexts": [
            {
                "name": name,
                "context": context or {"cluster": f"{name}-cluster", "user": f"{name}-user"},
            }
        ],
    }
    if current is not None:
        document["current-context"] = current
    return document


# -- against the real server: each way to authenticate and to trust ----------------------


@pytest.mark.parametrize(
    "form",
    [
        ("data", "token", False),
        ("file", "token", False),
        ("data", "token-file", False),
        ("data", "cert-data", False),
        ("file", "cert-file", False),
        ("insecure", "token", False),
        ("data", "token", True),
    ],
    ids=lambda form: f"ca-{form[0]}-{form[1]}" + ("-json" if form[2] else ""),
)
def test_each_kubeconfig_form_reaches_the_server_as_its_user(
    kube: KubeApiServer, kube_ns: str, tmp_path: Path, form: tuple[str, str, bool]
) -> None:
    ca, auth, json_format = form
    kube.admin.allow(kube_ns, JOB, verbs=("list",))
    kube.admin.create_secret(kube_ns, "site", {"tls.crt": b"x", "tls.key": b"y"})
    path = kube.kubeconfig(
        tmp_path / "kube" / "config", namespace=kube_ns, ca=ca, auth=auth, json_format=json_format
    )
    config = load_config(path, environ={})

    assert config.server == kube.url
    assert config.namespace == kube_ns
    assert config.origin == f"kubeconfig {path} (context test)"
    assert config.insecure is (ca == "insecure")
    assert config.ca_pem == (None if ca == "insecure" else kube.ca_pem)
    if auth.startswith("cert"):
        assert config.token is None
        assert config.client_cert_pem is not None
        assert config.client_key_pem is not None
        assert b"PRIVATE KEY" in config.client_key_pem
    else:
        assert config.token == kube.tokens[JOB]
        assert config.token_file == (path.parent / "job.token" if auth == "token-file" else None)
    assert lists(config, kube_ns) == ["site"]
    # RBAC saw the job user: it may not list elsewhere.
    with pytest.raises(Forbidden, match='User "job" cannot list secrets'):
        lists(config, kube.admin.namespace("elsewhere"))


def test_a_client_certificate_from_an_unknown_ca_is_401(
    kube: KubeApiServer, kube_ns: str, tmp_path: Path
) -> None:
    cert, key = kube.client_certificate(JOB, valid=False)
    path = write(
        tmp_path / "config",
        kubeconfig(
            server=kube.url,
            user={
                "client-certificate-data": base64.b64encode(cert).decode(),
                "client-key-data": base64.b64encode(key).decode(),
            },
        ),
    )
    document = json.loads(path.read_text())
    document["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(
        kube.ca_pem
    ).decode()
    path.write_text(json.dumps(document))
    with pytest.raises(Unauthorized, match=r"unauthorized \(401\)"):
        lists(load_config(path, environ={}), kube_ns)


def test_in_cluster_from_a_service_account_directory(
    kube: KubeApiServer, kube_ns: str, tmp_path: Path
) -> None:
    kube.admin.allow(kube_ns, JOB, verbs=("list",))
    account = kube.service_account_dir(tmp_path / "sa", kube.tokens[JOB], kube_ns)
    env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(kube.port)}

    config = load_config(environ=env, service_account_dir=account, home_config=tmp_path / "none")

    assert config.server == kube.url
    assert config.namespace == kube_ns
    assert config.token_file == account / "token"
    assert config.origin == f"in-cluster service account ({account})"
    assert lists(config, config.namespace) == []


# -- where the configuration comes from --------------------------------------------------


def sa_dir(tmp_path: Path, namespace: str | None = "pods-ns") -> Path:
    directory = tmp_path / "sa"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "token").write_text("sa-token\n")
    (directory / "ca.crt").write_bytes(b"ca")
    if namespace is not None:
        (directory / "namespace").write_text(namespace)
    return directory


IN_POD = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}


def test_precedence_flag_then_kubeconfig_variable_then_pod_then_home(tmp_path: Path) -> None:
    flag = write(tmp_path / "flag", kubeconfig(server="https://flag:1"))
    variable = write(tmp_path / "variable", kubeconfig(server="https://variable:1"))
    home = write(tmp_path / "home", kubeconfig(server="https://home:1"))
    account = sa_dir(tmp_path)
    everything = {**IN_POD, "KUBECONFIG": str(variable)}

    def server(kubeconfig: Path | None, env: dict[str, str]) -> str:
        return load_config(
            kubeconfig, environ=env, service_account_dir=account, home_config=home
        ).server

    assert server(flag, everything) == "https://flag:1"
    assert server(None, everything) == "https://variable:1"
    assert server(None, IN_POD) == "https://10.0.0.1:443"
    assert server(None, {}) == "https://home:1"
    with pytest.raises(KubeConfigError) as nothing:
        load_config(environ={}, service_account_dir=account, home_config=tmp_path / "missing")
    assert str(nothing.value) == (
        "kubernetes: no API server configured: give --kubeconfig FILE, set KUBECONFIG, "
        "or run in a pod with a service account"
    )
    assert isinstance(nothing.value, UsageError)  # exit 2


def test_in_cluster_namespace_token_and_ipv6(tmp_path: Path) -> None:
    account = sa_dir(tmp_path)
    config = in_cluster(IN_POD, account)
    assert (config.namespace, config.token, config.ca_pem) == ("pods-ns", "sa-token", b"ca")
    assert "sa-token" not in repr(config)  # the token never shows in a repr
    assert in_cluster({**IN_POD, "POD_NAMESPACE": "from-env"}, account).namespace == "from-env"
    v6 = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    assert in_cluster(v6, account).server == "https://[fd00::1]:443"
    assert in_cluster(IN_POD, sa_dir(tmp_path / "x", namespace=None)).namespace == "default"


def test_in_cluster_without_a_token_is_one_line(tmp_path: Path) -> None:
    account = sa_dir(tmp_path)
    (account / "token").unlink()
    with pytest.raises(KubeConfigError) as missing:
        in_cluster(IN_POD, account)
    assert str(missing.value) == f"{account / 'token'}: service account token not found"


def test_kubeconfig_variable_merges_like_kubectl(tmp_path: Path) -> None:
    first = kubeconfig("b", server="https://first:1", name="a")
    second = kubeconfig("a", server="https://second:1", name="b")
    second["clusters"].append(  # type: ignore[attr-defined]
        {"name": "a-cluster", "cluster": {"server": "https://ignored:1"}}
    )
    one, two = write(tmp_path / "one", first), write(tmp_path / "two", second)
    missing = tmp_path / "missing"
    env = {"KUBECONFIG": f"{missing}:{one}:{two}"}
    config = load_config(environ=env, home_config=tmp_path / "none")
    # current-context from the first file that sets it (b), its cluster from the second
    assert (config.server, config.origin) == (
        "https://second:1",
        "kubeconfig $KUBECONFIG (context b)",
    )
    # a context named explicitly; a-cluster: the first definition wins
    assert load_config(environ=env, context="a", home_config=tmp_path / "none").server == (
        "https://first:1"
    )
    with pytest.raises(KubeConfigError) as none:
        load_config(environ={"KUBECONFIG": str(missing)}, home_config=tmp_path / "none")
    assert str(none.value) == f"$KUBECONFIG: no kubeconfig file exists ({missing})"


def test_a_context_without_namespace_means_default(tmp_path: Path) -> None:
    assert load_config(write(tmp_path / "c", kubeconfig()), environ={}).namespace == "default"


def test_a_yaml_kubeconfig_without_pyyaml_says_which_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    yaml_file = tmp_path / "config"
    yaml_file.write_text("apiVersion: v1\nkind: Config\n")
    json_file = write(tmp_path / "config.json", kubeconfig())
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml fails
    with pytest.raises(KubeConfigError) as missing:
        load_config(yaml_file, environ={})
    assert str(missing.value) == f"{yaml_file}: {EXTRA_MISSING}"
    assert EXTRA_MISSING == "a YAML kubeconfig needs PyYAML: pip install 'ocsptool[kubernetes]'"
    assert load_config(json_file, environ={}).server == "https://k8s.example:6443"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (kubeconfig(None), "no current-context; set one or give a context"),
        (kubeconfig("nope"), "context 'nope' not found"),
        (
            kubeconfig(context={"cluster": "x", "user": "c-user"}),
            "context 'c': cluster 'x' not found",
        ),
        (kubeconfig(server=""), "cluster 'c-cluster' has no server"),
        (
            kubeconfig(server="k8s:6443"),
            "cluster 'c-cluster': server 'k8s:6443' is not an http(s) URL",
        ),
        (
            kubeconfig(user={"exec": {"command": "aws", "args": ["eks", "get-token"]}}),
            "user 'c-user' uses an exec credential plugin, which ocsptool does not run; "
            "give it a token, a tokenFile or a client certificate",
        ),
        (
            kubeconfig(user={"auth-provider": {"name": "gcp"}}),
            "user 'c-user' uses an auth-provider, which ocsptool does not run; "
            "give it a token, a tokenFile or a client certificate",
        ),
        (
            kubeconfig(user={"client-certificate-data": "QQ=="}),
            "user 'c-user': a client certificate needs both client-certificate and client-key",
        ),
        (
            kubeconfig(user={"client-key-data": "not base64!"}),
            "user 'c-user': client-key-data is not base64",
        ),
        ({"clusters": "x"}, "clusters is not a list"),
        ({"clusters": [{"cluster": {}}]}, "an entry of clusters has no name"),
        ([1, 2], "not a kubeconfig (expected a mapping at the top)"),
    ],
)
def test_a_bad_kubeconfig_is_one_line_naming_the_file(
    tmp_path: Path, document: object, message: str
) -> None:
    path = tmp_path / "config"
    path.write_text(json.dumps(document))
    with pytest.raises(KubeConfigError) as bad:
        load_config(path, environ={})
    assert str(bad.value) == f"{path}: {message}"


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("apiVersion: v1\nclusters:\n  - name: [unclosed\n")
    with pytest.raises(KubeConfigError) as bad:
        load_config(path, environ={})
    assert str(bad.value) == f"{path}: not valid YAML at line 4"


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(KubeConfigError) as missing:
        load_config(tmp_path / "nope", environ={})
    assert str(missing.value) == f"{tmp_path / 'nope'}: kubeconfig not found"
    path = write(tmp_path / "config", kubeconfig(user={"tokenFile": "tok"}))
    with pytest.raises(KubeConfigError) as token:
        from_kubeconfig([path])
    assert str(token.value) == f"{tmp_path / 'tok'}: token file not found"


def test_bad_tls_material_is_refused_before_any_request(
    tmp_path: Path, pki: PKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    other = pki.direct.leaf("other.test", ocsp_url=None)
    cert = pki.direct.leaf("mine.test", ocsp_url=None).bundle_pem(key=False)
    cases = {
        "ca": {"certificate-authority-data": base64.b64encode(b"garbage").decode()},
        "pair": {
            "client-certificate-data": base64.b64encode(cert).decode(),
            "client-key-data": base64.b64encode(key_pem(other.key)).decode(),
        },
    }
    for name, fields in cases.items():
        document = kubeconfig(user={k: v for k, v in fields.items() if k.startswith("client")})
        document["clusters"][0]["cluster"].update(  # type: ignore[index]
            {k: v for k, v in fields.items() if k.startswith("certificate")}
        )
        config = load_config(write(tmp_path / name, document), environ={})
        with pytest.raises(KubeConfigError) as bad:
            KubeClient(config)
        expected = (
            "the certificate authority is not PEM"
            if name == "ca"
            else "the client certificate and key do not load (not PEM, or not a pair)"
        )
        assert str(bad.value) == f"kubeconfig {tmp_path / name} (context c): {expected}"
    assert list(scratch.iterdir()) == []  # the key's scratch files are gone, even on failure

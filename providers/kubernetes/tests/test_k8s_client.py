"""The real KubeApi's errors, for real: no kubeconfig, an unknown context, a cluster that is not
there (a kubeconfig pointing at a port nothing listens on)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from mlp_kubernetes.client import connect, kubeconfig_files
from mlp_kubernetes.errors import ClusterError
from mlp_kubernetes.manifest import Kind
from mlp_kubernetes.names import Selector
from mlp_kubernetes.settings import KubeSettings


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens there


def kubeconfig(path: Path, server: str, *contexts: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": contexts[0],
        "clusters": [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": c, "context": {"cluster": "c", "user": "u", "namespace": "ml"}} for c in contexts]}))
    return path


def test_a_missing_kubeconfig_is_an_error_naming_the_file_and_the_context(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "config"
    with pytest.raises(ClusterError) as err:
        connect(KubeSettings(kubeconfig=str(missing), context="prod-eu"))
    e = err.value
    assert (e.summary, e.detail, e.context) == (
        f"No kubeconfig at {missing}",
        'The kubernetes provider reaches the cluster (context "prod-eu") through a kubeconfig file.', "prod-eu")
    assert e.hint.startswith('Set kubeconfig = "PATH" in the provider block or KUBECONFIG')


def test_without_a_setting_the_kubeconfig_is_kubeconfig_then_the_home_one(tmp_path: Path) -> None:
    assert kubeconfig_files("", {"KUBECONFIG": f"{tmp_path}/a:{tmp_path}/b"}) == [tmp_path / "a", tmp_path / "b"]
    assert kubeconfig_files("", {}) == [Path("~/.kube/config").expanduser()]
    assert kubeconfig_files(str(tmp_path / "k"), {"KUBECONFIG": "/x"}) == [tmp_path / "k"]


def test_an_unknown_context_is_an_error_listing_the_known_ones(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", "https://127.0.0.1:1", "dev", "staging")
    with pytest.raises(ClusterError) as err:
        connect(KubeSettings(kubeconfig=str(path), context="prod"))
    assert (err.value.summary, err.value.detail) == (f'The kubeconfig {path} has no context "prod"',
                                                     "Its contexts: dev, staging.")


def test_an_unreachable_cluster_is_an_error_naming_the_context_and_the_server(tmp_path: Path) -> None:
    server = f"https://127.0.0.1:{closed_port()}"
    api = connect(KubeSettings(kubeconfig=str(kubeconfig(tmp_path / "config", server, "dev")), context="dev"))
    assert api.context == "dev"
    with pytest.raises(ClusterError) as err:
        api.list(Kind.DEPLOYMENT, "ml", Selector.app("iris"))
    assert err.value.summary == f'Cannot reach the cluster of context "dev" at {server}'
    assert err.value.hint == "Check that it is up and reachable: kubectl --context dev cluster-info"


def test_the_current_context_is_used_when_none_is_set(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", "https://127.0.0.1:1", "dev", "staging")
    assert connect(KubeSettings(kubeconfig=str(path))).context == "dev"

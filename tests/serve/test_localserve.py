"""The local provider's API process: detached start, reload, health, stop."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest

from mlp.errors import ApplyError
from runtime import localserve
from runtime.bundle import write_bundle

from . import iris_bundle, iris_instances


def _port_free(port: int) -> bool:
    """Nothing listens, and a server can bind it (with SO_REUSEADDR, as uvicorn does: the
    closed connections may linger in TIME_WAIT)."""
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_start_reload_stop(tmp_path: Path) -> None:
    doc = json.loads((iris_bundle() / "bundle.json").read_text())
    second = write_bundle(tmp_path / "second", {**doc, "fingerprint": "iris-2"},
                          iris_bundle() / "saved_model")
    handle = localserve.start(iris_bundle(), None, tmp_path / "logs" / "api.log")
    try:
        assert handle.url == f"http://127.0.0.1:{handle.port}"
        assert localserve.is_running(handle.pid, handle.port)
        resp = httpx.post(f"{handle.url}/predict", json={"instances": iris_instances()[:1]})
        assert resp.json()["model"] == "iris-1"
        assert localserve.reload(handle, second) == "iris-2"
        resp = httpx.post(f"{handle.url}/predict", json={"instances": iris_instances()[:1]})
        assert resp.json()["model"] == "iris-2"
    finally:
        localserve.stop(handle.pid)
    assert not localserve.is_running(handle.pid, handle.port)
    assert _port_free(handle.port)
    localserve.stop(handle.pid)  # stopping a stopped server is a no-op


def test_a_token_guards_the_reload(tmp_path: Path) -> None:
    doc = json.loads((iris_bundle() / "bundle.json").read_text())
    second = write_bundle(tmp_path / "second", {**doc, "fingerprint": "iris-2"},
                          iris_bundle() / "saved_model")
    handle = localserve.start(iris_bundle(), None, tmp_path / "api.log", token="s3cret-token")
    try:
        cmdline = Path(f"/proc/{handle.pid}/cmdline").read_bytes()
        assert b"s3cret-token" not in cmdline  # not for `ps` to show
        for wrong in (None, "guess"):
            with pytest.raises(ApplyError) as err:
                localserve.reload(handle, second, token=wrong)
            assert err.value.summary == f"the API at {handle.url} refused the new model"
            assert "admin token" in err.value.detail
        assert httpx.get(f"{handle.url}/healthz").json()["fingerprint"] == "iris-1"
        assert localserve.reload(handle, second, token="s3cret-token") == "iris-2"
    finally:
        localserve.stop(handle.pid)


def test_a_server_that_cannot_start_shows_its_log(tmp_path: Path) -> None:
    with pytest.raises(ApplyError) as err:
        localserve.start(tmp_path / "nothing-here", None, tmp_path / "api.log", timeout=120)
    assert err.value.summary == "the API process exited while starting"
    assert "is not a model bundle" in err.value.detail


def test_a_taken_port_is_refused(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ApplyError, match=f"port {port}: the port is in use"):
            localserve.start(iris_bundle(), port, tmp_path / "api.log")

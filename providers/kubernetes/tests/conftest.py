"""Fixtures of the kubernetes provider's tests: `.venv/bin/pytest providers/kubernetes/tests`.

- `iris`: examples/iris copied, its provider block swapped for `provider "kubernetes"` and an
  s3 backend added (the pods need a bucket);
- `validate`: a manifest checked against the Kubernetes schemas of KUBE_VERSION, strictly
  (an unknown field is an error), with kubernetes-validate;
- `update_goldens`: rewrite golden files instead of comparing (MLP_UPDATE_GOLDENS=1, or
  pytest's --update-goldens when the repository's conftest defines it);
- `moto`: moto's S3 server on 127.0.0.1 with a bucket, and the environment its clients need.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
if importlib.util.find_spec("mlp_kubernetes") is None:  # run from a checkout without the install
    sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from k8s_support import BUCKET, KUBE_VERSION, PROVIDER, REPO, swap_provider  # noqa: E402


@pytest.fixture
def iris(tmp_path: Path) -> Path:
    app = tmp_path / "iris"
    shutil.copytree(REPO / "examples" / "iris", app, ignore=shutil.ignore_patterns(".mlp"))
    swap_provider(app, PROVIDER)
    return app


@pytest.fixture
def validate() -> Callable[[Mapping[str, Any]], None]:
    import kubernetes_validate  # a dev dependency: pip install kubernetes-validate

    def check(doc: Mapping[str, Any]) -> None:
        kubernetes_validate.validate(dict(doc), KUBE_VERSION, strict=True)

    return check


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    try:
        flag = bool(request.config.getoption("--update-goldens"))
    except ValueError:
        flag = False
    return flag or os.environ.get("MLP_UPDATE_GOLDENS") == "1"


@dataclass(frozen=True)
class Moto:
    endpoint: str
    environ: Mapping[str, str]

    def settings(self, prefix: str) -> dict[str, str]:
        return {"bucket": BUCKET, "prefix": prefix, "endpoint": self.endpoint, "region": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        pytest.skip("moto[server] is not installed: run scripts/install (pip install -e '.[dev]')")
    port = _free_port()
    env = {"AWS_ACCESS_KEY_ID": "mlp-test", "AWS_SECRET_ACCESS_KEY": "mlp-test-secret",
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _accepts(port):
            assert proc.poll() is None and time.monotonic() < deadline, "moto's server did not start"
            time.sleep(0.05)
        import boto3

        endpoint = f"http://127.0.0.1:{port}"
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            mp.delenv("AWS_PROFILE", raising=False)
            boto3.session.Session().client("s3", region_name="us-east-1",
                                           endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
            yield Moto(endpoint, env)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()

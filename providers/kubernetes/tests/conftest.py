"""Fixtures of the kubernetes provider's tests: `.venv/bin/pytest providers/kubernetes/tests`.

- `iris`: examples/iris copied, its provider block swapped for `provider "kubernetes"` and an
  s3 backend added (the pods need a bucket);
- `validate`: a manifest checked against the Kubernetes schemas of KUBE_VERSION, strictly
  (an unknown field is an error), with kubernetes-validate;
- `update_goldens`: rewrite golden files instead of comparing (MLP_UPDATE_GOLDENS=1, or
  pytest's --update-goldens when the repository's conftest defines it);
- `moto_server`: moto's S3 server on 127.0.0.1, the one the backends' tests use
  (tests/state/conftest.py); `moto`: that server with this suite's bucket made, and the
  environment its clients need.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
if importlib.util.find_spec("mlp_kubernetes") is None:  # run from a checkout without the install
    sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
if str(HERE.parents[2]) not in sys.path:  # the repository's own tests, for their servers
    sys.path.append(str(HERE.parents[2]))

from k8s_support import BUCKET, KUBE_VERSION, PROVIDER, REPO, swap_provider  # noqa: E402
from tests.state.conftest import Server, moto_server  # noqa: E402, F401


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


@pytest.fixture(scope="module")
def moto(moto_server: Server) -> Moto:  # noqa: F811 - the fixture imported above
    """The backends' tests' moto server, with this suite's bucket made."""
    import boto3

    boto3.session.Session().client("s3", region_name="us-east-1",
                                   endpoint_url=moto_server.endpoint).create_bucket(Bucket=BUCKET)
    return Moto(moto_server.endpoint, dict(moto_server.environ))

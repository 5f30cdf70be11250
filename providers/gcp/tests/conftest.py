"""Fixtures of the gcp provider's tests: `.venv/bin/pytest providers/gcp/tests`.

- `iris`: examples/iris under `provider "gcp"` with a gcs backend; `iris_gpu`: the same,
  its model asking for a GPU;
- `loaded`: an app folder loaded into mlp's `App`;
- `gcs_emulator`: gcp-storage-emulator on 127.0.0.1, the one the backends' tests use
  (tests/state/conftest.py), for the golden plans' gcs backend;
- `update_goldens`: rewrite golden files instead of comparing (MLP_UPDATE_GOLDENS=1).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.register_assert_rewrite("mlp_cloud.contract", "mlp_cloud.goldens", "mlp_cloud.mocks")

from mlp_cloud.testing import app_fixtures, updating_goldens  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:  # the repository's own tests, for their servers
    sys.path.append(str(REPO))

from tests.state.conftest import gcs_emulator  # noqa: E402, F401

PROVIDER = '''provider "gcp" {
  project = "ml-platform-123"
  region  = "europe-west1"
  cluster {
    node_type = "e2-standard-8"
    max_nodes = 3
  }
}'''
BACKEND = '''backend "gcs" {
  bucket = "mlp-state"
  prefix = "apps/iris"
}'''


iris, iris_gpu, iris_once, loaded = app_fixtures(REPO, PROVIDER, BACKEND)


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return updating_goldens(request.config)


def pytest_configure(config: pytest.Config) -> None:
    # pulumi_gcp's own deprecated aliases warn when its modules are imported
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_gcp")


OUTPUTS = {
    "cluster": "mlp-iris", "context": "mlp-iris", "kubeconfig": '{"kind": "Config"}\n', "bucket": "iris-data-5d6e7f8",
    "registry": "europe-west1-docker.pkg.dev/ml-platform-123/iris-mlp", "namespace": "default",
    "identity": "iris-workload@ml-platform-123.iam.gserviceaccount.com",
    "identity_annotation": "iam.gke.io/gcp-service-account"}


@pytest.fixture
def cloud(iris: Path):  # type: ignore[no-untyped-def]
    from mlp_cloud.contract import CloudCase
    from mlp_cloud.stack import StackRef
    from mlp_gcp.provider import GcpProvider

    return CloudCase(
        GcpProvider, iris, StackRef("iris-gcp", "gs://mlp-state/apps/iris/pulumi",
                                    {"gcp:project": "ml-platform-123", "gcp:region": "europe-west1"}),
        "gcp:container/cluster:Cluster", "gcp:container/nodePool:NodePool", "gcp:storage/bucket:Bucket", OUTPUTS,
        bad={'{"region": "europe-west1-b"}': '"europe-west1-b" is not a Google Cloud region',
             '{"project": "My Project"}': '"My Project" is not a Google Cloud project id',
             '{"cluster": {"node_type": "e2-standard-4", "max_nodes": 2, "gpu_node_type": "t4"}}':
                 'cluster.gpu_node_type "t4" is not a valid gcp machine type'})

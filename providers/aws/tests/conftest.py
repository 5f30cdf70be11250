"""Fixtures of the aws provider's tests: `.venv/bin/pytest providers/aws/tests`.

- `iris`: examples/iris under `provider "aws"` with an s3 backend; `iris_gpu`: the same,
  its model asking for a GPU;
- `loaded`: an app folder loaded into mlp's `App`;
- `moto_server`: moto's S3 server on 127.0.0.1, the one the backends' tests use
  (tests/state/conftest.py), for the golden plans' s3 backend;
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

from tests.state.conftest import moto_server  # noqa: E402, F401

PROVIDER = '''provider "aws" {
  region = "eu-west-1"
  cluster {
    node_type = "m5.2xlarge"
    max_nodes = 4
  }
}'''
BACKEND = '''backend "s3" {
  bucket = "mlp-state"
  prefix = "apps/iris"
  region = "eu-west-1"
}'''


iris, iris_gpu, iris_once, loaded = app_fixtures(REPO, PROVIDER, BACKEND)


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return updating_goldens(request.config)


def pytest_configure(config: pytest.Config) -> None:
    # pulumi_aws's own deprecated aliases warn when its modules are imported
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_aws")


OUTPUTS = {
    "cluster": "mlp-iris", "context": "mlp-iris", "kubeconfig": '{"kind": "Config"}\n', "bucket": "iris-data-0a1b2c3",
    "registry": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris", "namespace": "default",
    "identity": "arn:aws:iam::123456789012:role/iris-workload-1a2b3c",
    "identity_annotation": "eks.amazonaws.com/role-arn"}


@pytest.fixture
def cloud(iris: Path):  # type: ignore[no-untyped-def]
    from mlp_aws.provider import AwsProvider
    from mlp_cloud.contract import CloudCase
    from mlp_cloud.stack import StackRef

    return CloudCase(
        AwsProvider, iris, StackRef("iris-aws", "s3://mlp-state/apps/iris/pulumi?region=eu-west-1",
                                    {"aws:region": "eu-west-1"}),
        "aws:eks/cluster:Cluster", "aws:eks/nodeGroup:NodeGroup", "aws:s3/bucket:Bucket", OUTPUTS,
        bad={'{"region": "Ireland"}': '"Ireland" is not an AWS region',
             '{"cluster": {"node_type": "big", "max_nodes": 2, "gpu_node_type": "g4dn.xlarge"}}':
                 'cluster.node_type "big" is not a valid aws machine type'})

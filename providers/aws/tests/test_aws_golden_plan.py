"""Golden plans of examples/iris under `provider "aws"`, its state in S3 (moto's server on
127.0.0.1): the golden plans every cloud checks (`mlp_cloud.goldens`), golden/plan.txt and
golden/plan-previewed.txt, and golden/plan.md, that plan as `--format markdown`, the
pull-request comment of examples/ci.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_aws_program import COMPUTED, INVOKES

from mlp_cloud.driver import Operation
from mlp_cloud.goldens import *  # noqa: F403 - the golden plans' tests, run here for aws
from mlp_cloud.goldens import (
    GoldenCase,
    test_the_markdown_plan_is_the_pull_request_comment,  # noqa: F401 - aws's alone
)
from mlp_cloud.recording import Call


@pytest.fixture
def golden() -> GoldenCase:
    from mlp_aws.provider import AwsProvider

    return GoldenCase(
        AwsProvider, Path(__file__).resolve().parent / "golden", "s3", "moto_server",
        {"bucket": "mlp-state", "prefix": "apps/iris", "region": "eu-west-1"},
        Call(Operation.PREVIEW, "iris-aws",
             "s3://mlp-state/apps/iris/pulumi?region=eu-west-1&endpoint={endpoint}&s3ForcePathStyle=true",
             {"aws:region": "eu-west-1"}),
        frozenset({"aws:eks/cluster:Cluster::iris-cluster", "aws:eks/nodeGroup:NodeGroup::iris-cpu",
                   "aws:s3/bucket:Bucket::iris-data", "mlp:aws:Cluster::iris"}),
        COMPUTED, INVOKES)

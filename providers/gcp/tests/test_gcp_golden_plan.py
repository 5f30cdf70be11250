"""Golden plans of examples/iris under `provider "gcp"`, its state in Cloud Storage
(gcp-storage-emulator on 127.0.0.1): the golden plans every cloud checks
(`mlp_cloud.goldens`), golden/plan.txt and golden/plan-previewed.txt.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_gcp_program import COMPUTED, INVOKES

from mlp_cloud.driver import Operation
from mlp_cloud.goldens import *  # noqa: F403 - the golden plans' tests, run here for gcp
from mlp_cloud.goldens import GoldenCase
from mlp_cloud.recording import Call


@pytest.fixture
def golden() -> GoldenCase:
    from mlp_gcp.provider import GcpProvider

    return GoldenCase(
        GcpProvider, Path(__file__).resolve().parent / "golden", "gcs", "gcs_emulator",
        {"bucket": "mlp-state", "prefix": "apps/iris"},
        Call(Operation.PREVIEW, "iris-gcp", "gs://mlp-state/apps/iris/pulumi",
             {"gcp:project": "ml-platform-123", "gcp:region": "europe-west1"}),
        frozenset({"gcp:container/cluster:Cluster::iris-cluster", "gcp:container/nodePool:NodePool::iris-cpu",
                   "gcp:storage/bucket:Bucket::iris-data", "mlp:gcp:Cluster::iris"}),
        COMPUTED, INVOKES)

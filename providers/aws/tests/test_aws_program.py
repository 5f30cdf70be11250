"""The AWS program under Pulumi's mocks: the real SDK and pulumi-aws's resource classes,
every resource it registers and the outputs it exports."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from mlp.config.blocks import App
from mlp_aws.provider import AwsProvider
from mlp_cloud.mocks import ProgramRun, run_program
from mlp_kubernetes.rbac import driver_account, workload_account

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ISSUER = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC123"

COMPUTED: Mapping[str, Callable[[str, Mapping[str, Any]], Mapping[str, Any]]] = {
    "aws:eks/cluster:Cluster": lambda name, i: {
        "endpoint": "https://ABC123.gr7.eu-west-1.eks.amazonaws.com",
        "certificateAuthority": {"data": "Q0EtREFUQQ=="},
        "identities": [{"oidcs": [{"issuer": ISSUER}]}]},
    "aws:s3/bucket:Bucket": lambda name, i: {"bucket": f"{name}-0a1b2c3", "arn": f"arn:aws:s3:::{name}-0a1b2c3"},
    "aws:ecr/repository:Repository": lambda name, i: {
        "repositoryUrl": f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/{i['name']}"},
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": lambda name, i: {
        "arn": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC123"},
}
INVOKES = {"aws:index/getAvailabilityZones:getAvailabilityZones": {"names": ["eu-west-1a", "eu-west-1b"],
                                                                    "zoneIds": ["euw1-az1", "euw1-az2"]}}


# every pod runs as <app>-workload but a Spark driver with executors, which runs as <app>-spark
SUBJECTS = ("system:serviceaccount:default:iris-workload", "system:serviceaccount:default:iris-spark")


def run(app: App) -> ProgramRun:
    provider = AwsProvider(app.provider, app)
    return run_program(provider.program(provider.infra(app)), COMPUTED, INVOKES, stack="iris-aws")


@pytest.fixture(scope="module")
def cpu_only(iris_once: Path, loaded: Callable[[Path], App]) -> ProgramRun:
    return run(loaded(iris_once))


def test_the_cluster_is_eks_with_one_cpu_pool_sized_from_the_block(cpu_only: ProgramRun) -> None:
    cluster = cpu_only.one("aws:eks/cluster:Cluster")
    assert cluster.inputs["name"] == "mlp-iris"
    assert cluster.inputs["vpcConfig"]["endpointPrivateAccess"] is True
    [pool] = cpu_only.of_type(NODE_GROUP)
    assert pool.name == "iris-cpu"
    assert pool.inputs["instanceTypes"] == ["m5.2xlarge"]
    assert pool.inputs["scalingConfig"] == {"minSize": 1, "desiredSize": 1, "maxSize": 4}
    assert pool.inputs["labels"] == {"mlp.dev/app": "iris", "mlp.dev/pool": "cpu"}
    assert "taints" not in pool.inputs


def test_no_gpu_pool_unless_a_model_asks_for_one(cpu_only: ProgramRun, iris_gpu: Path,
                                                 loaded: Callable[[Path], App]) -> None:
    assert cpu_only.outputs["gpu_pool"] == "no"
    with_gpu = run(loaded(iris_gpu))
    gpu = with_gpu.one(NODE_GROUP, "iris-gpu")
    assert gpu.inputs["instanceTypes"] == ["g4dn.xlarge"]
    assert gpu.inputs["amiType"] == "AL2023_x86_64_NVIDIA"
    assert gpu.inputs["scalingConfig"] == {"minSize": 0, "desiredSize": 1, "maxSize": 4}
    assert gpu.inputs["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert gpu.inputs["labels"] == {"mlp.dev/app": "iris", "nvidia.com/gpu.present": "true", "mlp.dev/pool": "gpu"}
    assert with_gpu.outputs["gpu_pool"] == "yes"


def test_the_nodes_are_in_private_subnets_behind_one_nat_gateway(cpu_only: ProgramRun) -> None:
    subnets = {s.name: s.inputs for s in cpu_only.of_type("aws:ec2/subnet:Subnet")}
    assert sorted(subnets) == ["iris-private-0", "iris-private-1", "iris-public-0", "iris-public-1"]
    assert [subnets[f"iris-private-{i}"]["availabilityZone"] for i in (0, 1)] == ["eu-west-1a", "eu-west-1b"]
    assert not subnets["iris-private-0"].get("mapPublicIpOnLaunch")
    [pool] = cpu_only.of_type(NODE_GROUP)
    assert pool.inputs["subnetIds"] == ["iris-private-0-id", "iris-private-1-id"]
    assert len(cpu_only.of_type("aws:ec2/natGateway:NatGateway")) == 1


def test_the_bucket_is_private_encrypted_and_tls_only(cpu_only: ProgramRun) -> None:
    bucket = cpu_only.one("aws:s3/bucket:Bucket")
    block = cpu_only.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert {k: block.inputs[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                         "restrictPublicBuckets")} == dict.fromkeys(
        ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True)
    assert block.inputs["bucket"] == f"{bucket.name}-id"
    sse = cpu_only.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert sse.inputs["rules"] == [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"},
                                    "bucketKeyEnabled": True}]
    owner = cpu_only.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert owner.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    [deny] = json.loads(cpu_only.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])["Statement"]
    assert (deny["Effect"], deny["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})


def test_the_workload_identity_reaches_the_bucket_and_the_backend_prefix_only(cpu_only: ProgramRun) -> None:
    role = cpu_only.one("aws:iam/role:Role", "iris-workload")
    [trust] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert trust["Principal"] == {"Federated": COMPUTED[
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider"]("", {})["arn"]}
    assert trust["Condition"] == {"StringEquals": {
        "oidc.eks.eu-west-1.amazonaws.com/id/ABC123:sub": list(SUBJECTS),
        "oidc.eks.eu-west-1.amazonaws.com/id/ABC123:aud": "sts.amazonaws.com"}}
    [policy] = cpu_only.of_type(ROLE_POLICY)
    statements = json.loads(policy.inputs["policy"])["Statement"]
    assert sorted({r for s in statements for r in _list(s["Resource"])}) == [
        "arn:aws:s3:::iris-data-0a1b2c3", "arn:aws:s3:::iris-data-0a1b2c3/*",
        "arn:aws:s3:::mlp-state", "arn:aws:s3:::mlp-state/apps/iris/*"]
    listing = next(s for s in statements if s["Sid"] == "ListBackend")
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["apps/iris/*"]}}
    assert not cpu_only.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") or all(
        not a.name.startswith("iris-workload") for a in cpu_only.of_type(
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment"))
    oidc = cpu_only.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert (oidc.inputs["url"], oidc.inputs["clientIdLists"]) == (ISSUER, ["sts.amazonaws.com"])


def test_the_role_trusts_the_accounts_mlp_kubernetes_runs_pods_as_and_no_other(
        iris: Path, loaded: Callable[[Path], App]) -> None:
    app = with_settings(loaded(iris), namespace="ml", executors=2, cache_claim="spark-cache")
    program = run(app)
    federated = [r for r in program.of_type("aws:iam/role:Role") if "WebIdentity" in r.inputs["assumeRolePolicy"]]
    assert [r.name for r in federated] == ["iris-workload"]  # one role for both accounts, no second identity
    [trust] = json.loads(federated[0].inputs["assumeRolePolicy"])["Statement"]
    subjects = trust["Condition"]["StringEquals"]["oidc.eks.eu-west-1.amazonaws.com/id/ABC123:sub"]
    assert subjects == ["system:serviceaccount:ml:iris-workload", "system:serviceaccount:ml:iris-spark"]
    assert subjects == [f"system:serviceaccount:{spec.namespace}:{account}" for spec in [kube_spec(app)]
                        for account in (workload_account(spec), driver_account(spec))]
    assert "StringLike" not in trust["Condition"] and not any("*" in s for s in subjects)
    [policy] = program.of_type(ROLE_POLICY)
    assert policy.inputs["role"] == "iris-workload-id"


def with_settings(app: App, **settings: Any) -> App:
    """`app` as if its provider block also set `settings`."""
    from dataclasses import replace

    from mlp.config.blocks import ProviderConfig

    block = app.provider
    return replace(app, provider=ProviderConfig(block.kind, block.pos, {**block.settings, **settings}))


def kube_spec(app: App) -> Any:
    """The app as the Kubernetes layer renders it, with the block's workload settings."""
    from mlp_kubernetes.appspec import jobs_spec
    from mlp_kubernetes.settings import KubeSettings

    return jobs_spec(app, KubeSettings.from_settings(app.provider.settings))


def _list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def test_the_outputs_are_what_the_kubernetes_layer_takes(cpu_only: ProgramRun) -> None:
    out = cpu_only.outputs
    assert {k: out[k] for k in ("cluster", "context", "bucket", "registry", "namespace", "identity_annotation")} == {
        "cluster": "mlp-iris", "context": "mlp-iris", "bucket": "iris-data-0a1b2c3",
        "registry": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris", "namespace": "default",
        "identity_annotation": "eks.amazonaws.com/role-arn"}
    assert out["identity"].endswith("role/iris-workload")
    kubeconfig = json.loads(out["kubeconfig"])
    assert kubeconfig["clusters"][0]["cluster"] == {"server": "https://ABC123.gr7.eu-west-1.eks.amazonaws.com",
                                                    "certificate-authority-data": "Q0EtREFUQQ=="}
    assert kubeconfig["users"][0]["user"]["exec"]["args"] == [
        "eks", "get-token", "--cluster-name", "mlp-iris", "--region", "eu-west-1", "--output", "json"]
    repo = cpu_only.one("aws:ecr/repository:Repository")
    assert (repo.inputs["name"], repo.inputs["imageScanningConfiguration"]) == ("iris/mlp-runtime",
                                                                                {"scanOnPush": True})


def test_every_resource_is_tagged_with_the_app(cpu_only: ProgramRun) -> None:
    taggable = [r for r in cpu_only.resources if "tags" in r.inputs]
    assert len(taggable) >= 15
    for r in taggable:
        assert r.inputs["tags"]["mlp.dev/app"] == "iris", r.name
        assert r.inputs["tags"]["mlp.dev/stack"] == "iris-aws", r.name
    untagged = {r.type for r in cpu_only.resources if "tags" not in r.inputs}
    assert "aws:eks/cluster:Cluster" not in untagged and "aws:s3/bucket:Bucket" not in untagged

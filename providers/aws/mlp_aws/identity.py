"""The app's bucket and the one identity that reaches it (IRSA).

The bucket: every public access blocked, ACLs off (the bucket owner owns every object),
encrypted by default with S3's KMS key (a bucket key, so it costs no KMS request per
object), and a policy refusing any request not made over TLS.

The role: assumable only through the cluster's OIDC provider, only by the app's two service
accounts (`system:serviceaccount:NAMESPACE:APP-workload` and, for a Spark driver with
executors, `...:APP-spark`; audience sts), each named in full, and its one inline policy reaches the bucket's objects and, when the app's backend is S3, the
objects under the backend's prefix (where the workloads read the app and write its
artifacts). Nothing else: no managed policy, no wildcard bucket.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

from mlp_cloud.infra import BackendGrant, Infra

OBJECT_ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]


def bucket(name: str, tags: Mapping[str, str], parent: pulumi.Resource) -> aws.s3.Bucket:
    b = aws.s3.Bucket(f"{name}-data", force_destroy=True, tags=dict(tags), opts=pulumi.ResourceOptions(parent=parent))
    under = pulumi.ResourceOptions(parent=b)
    block = aws.s3.BucketPublicAccessBlock(f"{name}-data", bucket=b.id, block_public_acls=True,
                                           block_public_policy=True, ignore_public_acls=True,
                                           restrict_public_buckets=True, opts=under)
    aws.s3.BucketOwnershipControls(f"{name}-data", bucket=b.id, rule={"object_ownership": "BucketOwnerEnforced"},
                                   opts=under)
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-data", bucket=b.id,
        rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms"}, "bucket_key_enabled": True}],
        opts=under)
    aws.s3.BucketPolicy(f"{name}-data", bucket=b.id, policy=b.arn.apply(_tls_only),
                        opts=pulumi.ResourceOptions(parent=b, depends_on=[block]))
    return b


def _tls_only(arn: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}, sort_keys=True)


def workload_role(name: str, infra: Infra, oidc: aws.iam.OpenIdConnectProvider, issuer: pulumi.Output[str],
                  b: aws.s3.Bucket, tags: Mapping[str, str], parent: pulumi.Resource) -> aws.iam.Role:
    subjects = [account.subject for account in infra.service_accounts]
    trust = pulumi.Output.all(oidc.arn, issuer).apply(lambda a: _trust(str(a[0]), str(a[1]), subjects))
    role = aws.iam.Role(f"{name}-workload", assume_role_policy=trust, tags=dict(tags),
                        opts=pulumi.ResourceOptions(parent=parent))
    aws.iam.RolePolicy(f"{name}-workload", role=role.id, policy=b.arn.apply(lambda arn: access_policy(arn, infra.backend)),
                       opts=pulumi.ResourceOptions(parent=role))
    return role


def _trust(provider_arn: str, issuer: str, subjects: list[str]) -> str:
    """StringEquals with a list is met by any one of its values: exactly these accounts, no pattern."""
    host = issuer.removeprefix("https://")
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": provider_arn}, "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{host}:sub": subjects, f"{host}:aud": "sts.amazonaws.com"}}}]},
        sort_keys=True)


def access_policy(bucket_arn: str, backend: BackendGrant | None) -> str:
    """The workloads' rights: the bucket's objects, and the backend's prefix when it is S3."""
    statements: list[dict[str, Any]] = [
        {"Sid": "ListBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn},
        {"Sid": "Objects", "Effect": "Allow", "Action": OBJECT_ACTIONS, "Resource": f"{bucket_arn}/*"}]
    if backend is not None and backend.kind == "s3":
        arn = f"arn:aws:s3:::{backend.bucket}"
        under = f"{backend.prefix}/" if backend.prefix else ""
        listing: dict[str, Any] = {"Sid": "ListBackend", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": arn}
        if under:
            listing["Condition"] = {"StringLike": {"s3:prefix": [f"{under}*"]}}
        statements += [listing, {"Sid": "BackendObjects", "Effect": "Allow", "Action": OBJECT_ACTIONS,
                                 "Resource": f"{arn}/{under}*"}]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)

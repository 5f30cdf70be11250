"""The app's bucket and the one identity that reaches it (GKE Workload Identity).

The bucket: uniform bucket-level access (no object ACLs), public access prevention
enforced; Cloud Storage encrypts every object at rest (Google-managed keys) and serves only
HTTPS.

The identity: a Google service account with no project role. Only the app's two service
accounts (`PROJECT.svc.id.goog[NAMESPACE/APP-workload]` and, for a Spark driver with
executors, `...[NAMESPACE/APP-spark]`), one IAM member each, may act as it, and it holds
roles/storage.objectAdmin on the bucket alone and, when the app's backend is GCS, on the
objects under the backend's prefix (an IAM condition), where the workloads read the app
and write its artifacts.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_gcp as gcp

from mlp_cloud.infra import BackendGrant, Infra

OBJECT_ADMIN = "roles/storage.objectAdmin"


def bucket(name: str, region: str, labels: Mapping[str, str], parent: pulumi.Resource) -> gcp.storage.Bucket:
    return gcp.storage.Bucket(f"{name}-data", location=region, uniform_bucket_level_access=True,
                              public_access_prevention="enforced", force_destroy=True, labels=dict(labels),
                              opts=pulumi.ResourceOptions(parent=parent))


def workload_account(name: str, project: str, infra: Infra, b: gcp.storage.Bucket,
                     parent: pulumi.Resource) -> gcp.serviceaccount.Account:
    gsa = gcp.serviceaccount.Account(f"{name}-workload", account_id=f"{name}-workload", project=project,
                                     display_name=f"mlp workloads of {infra.app}",
                                     opts=pulumi.ResourceOptions(parent=parent))
    under = pulumi.ResourceOptions(parent=gsa)
    for account in infra.service_accounts:
        gcp.serviceaccount.IAMMember(f"{name}-{account.role}-identity", service_account_id=gsa.name,
                                     role="roles/iam.workloadIdentityUser",
                                     member=f"serviceAccount:{project}.svc.id.goog[{account.namespace}/{account.name}]",
                                     opts=under)
    member = gsa.email.apply(lambda email: f"serviceAccount:{email}")
    gcp.storage.BucketIAMMember(f"{name}-workload-data", bucket=b.name, role=OBJECT_ADMIN, member=member, opts=under)
    if infra.backend is not None and infra.backend.kind == "gcs":
        gcp.storage.BucketIAMMember(f"{name}-workload-backend", bucket=infra.backend.bucket, role=OBJECT_ADMIN,
                                    member=member, condition=prefix_condition(infra.backend), opts=under)
    return gsa


def prefix_condition(backend: BackendGrant) -> gcp.storage.BucketIAMMemberConditionArgsDict | None:
    """The backend's objects under its prefix (and the bucket itself, which listing asks)."""
    if not backend.prefix:
        return None
    where = f"projects/_/buckets/{backend.bucket}"
    return {"title": "mlp app prefix", "description": f"objects under {backend.prefix}/",
            "expression": f'resource.name == "{where}" || resource.name.startsWith("{where}/objects/{backend.prefix}/")'}

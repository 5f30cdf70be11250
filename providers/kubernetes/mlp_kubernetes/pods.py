"""The parts every mlp pod shares: the work folder, the staging container that brings the
bucket's inputs in, the environment, the security context, GPU placement.

Pods run as an unprivileged user (uid 1000, the image's `mlp`) with no capabilities and the
runtime's default seccomp profile, so they are admitted under the "restricted" Pod Security
Standard. Inputs come from the bucket into `/work` (an emptyDir) before the main container
starts: the `stage` init container runs `python -m mlp_kubernetes.stage pull NAME DIR...`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlp_kubernetes.names import Owner
from mlp_kubernetes.specs import AppSpec, Resources
from mlp_kubernetes.storage import BACKEND_ENV

WORK = "/work"
WORK_VOLUME = "work"
CACHE = "/work/cache"              # the artifact cache of a job that opens the backend
CACHE_VOLUME = "cache"
USER = 1000                        # runtime/Dockerfile's `mlp` user
STAGE = ("python", "-m", "mlp_kubernetes.stage")


@dataclass(frozen=True)
class Pull:
    """One input the stage container fetches: an object or a folder (`name` ending in "/")
    of the bucket, to `path` in the pod."""

    name: str
    path: str


def storage_secret(spec: AppSpec) -> str:
    """The optional Secret every container takes its variables from: storage credentials such
    as AWS_ACCESS_KEY_ID, where no workload identity gives them. mlp never makes it."""
    return spec.object_name("storage")


def pod_labels(spec: AppSpec, owner: Owner) -> dict[str, str]:
    """A pod template's labels: mlp's own, then the provider's `pod_labels` (which may not
    name one of mlp's: `check` refuses that, so mlp's always hold)."""
    return {**owner.labels(), **spec.settings.pod_labels}


def env(spec: AppSpec, *extra: tuple[str, str]) -> list[dict[str, Any]]:
    base = [(BACKEND_ENV, spec.storage.env_json()), ("HOME", WORK + "/home"), ("MLP_CACHE_DIR", CACHE),
            ("PYTHONUNBUFFERED", "1"), *extra]
    return [{"name": k, "value": v} for k, v in base]


def env_from(spec: AppSpec) -> list[dict[str, Any]]:
    return [{"secretRef": {"name": storage_secret(spec), "optional": True}}]


def container_security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def pod_security() -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": USER, "runAsGroup": USER, "fsGroup": USER,
            "seccompProfile": {"type": "RuntimeDefault"}}


def work_mounts(cache: bool = False) -> list[dict[str, Any]]:
    mounts = [{"name": WORK_VOLUME, "mountPath": WORK}]
    return mounts + [{"name": CACHE_VOLUME, "mountPath": CACHE}] if cache else mounts


def work_volumes(spec: AppSpec, cache_claim: str = "") -> list[dict[str, Any]]:
    """The work folder, and the shared artifact cache when the pods share one."""
    volumes: list[dict[str, Any]] = [{"name": WORK_VOLUME, "emptyDir": {}}]
    if cache_claim:
        volumes.append({"name": CACHE_VOLUME, "persistentVolumeClaim": {"claimName": cache_claim}})
    return volumes


def stage_container(spec: AppSpec, pulls: Sequence[Pull], cache: bool = False) -> dict[str, Any]:
    """The init container that brings `pulls` from the bucket into the pod."""
    argv = [*STAGE, "pull", *(part for p in pulls for part in (p.name, p.path))]
    return {"name": "stage", "image": spec.image, "command": argv, "env": env(spec), "envFrom": env_from(spec),
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
            "securityContext": container_security(), "volumeMounts": work_mounts(cache)}


def gpu_placement(spec: AppSpec, resources: Resources) -> dict[str, Any]:
    """A GPU pod's node selector and toleration of the GPU pool's taint; nothing for a CPU pod."""
    if not resources.gpu:
        return {}
    pool = spec.settings.gpu_pool
    return {"nodeSelector": dict(sorted(pool.node_selector.items())),
            "tolerations": [{"key": pool.taint, "operator": "Exists", "effect": "NoSchedule"}]}


def pod_spec(spec: AppSpec, account: str, containers: list[dict[str, Any]], init: list[dict[str, Any]],
             restart: str, cache_claim: str = "", token: bool = False, **extra: Any) -> dict[str, Any]:
    """A pod spec with mlp's defaults: its service account (its token mounted only when the pod
    talks to the Kubernetes API), the security context and the work volumes."""
    return {"serviceAccountName": account, "automountServiceAccountToken": token,
            "securityContext": pod_security(), "restartPolicy": restart, **extra,
            "initContainers": init, "containers": containers, "volumes": work_volumes(spec, cache_claim)}

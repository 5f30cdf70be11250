"""An api on the cluster: a Deployment, its Service and a HorizontalPodAutoscaler.

The pod's `stage` init container copies the model's bundle from the bucket
(`artifacts/<key>/bundle/`), then the server container runs the runtime's server:

    python -m runtime.serve --bundle /work/bundle --host 0.0.0.0 --port 8080 --no-admin

A new model is a new pod template (its fingerprint is an annotation of it), so a change of
model is a rolling update, never a reload: `--no-admin` leaves POST /admin/reload out.
New pods take traffic only once /healthz answers 200 (the bundle is loaded), and
`maxUnavailable: 0` keeps every old pod serving until a new one is ready. A pod that is
stopped first leaves the Service's endpoints (the preStop pause) and then finishes the
requests it has (uvicorn's graceful shutdown), so a new model rolls out with no failed request.

`replicas` is the autoscaler's: a number is min = max. The Deployment leaves `replicas` out,
so an apply never undoes what the autoscaler chose.
"""

from __future__ import annotations

from typing import Any

from mlp_kubernetes import pods
from mlp_kubernetes.manifest import Kind, Manifest
from mlp_kubernetes.names import APP, BLOCK, MODEL, MODEL_FINGERPRINT, Owner
from mlp_kubernetes.rbac import workload_account
from mlp_kubernetes.specs import AppSpec, Resources, Serving
from mlp_kubernetes.storage import bundle

CONTAINER_PORT = 8080
BUNDLE_DIR = pods.WORK + "/bundle"
CPU_TARGET = 70  # percent of the requested CPU the autoscaler keeps the pods at
DRAIN_SECONDS = 5  # preStop: time for the endpoints to drop a stopping pod before it stops


def api_manifests(spec: AppSpec, api: Serving) -> list[Manifest]:
    from mlp.state.backend import artifact_key

    owner = Owner(spec.name, api.api, "api")
    name = spec.object_name("api", api.name)
    notes = {MODEL: api.model, MODEL_FINGERPRINT: api.model_fingerprint}
    select = {k: v for k, v in owner.labels().items() if k in (APP, BLOCK)}
    deployment = {"spec": {
        "selector": {"matchLabels": select},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "revisionHistoryLimit": 3,
        "template": {"metadata": {"labels": pods.pod_labels(spec, owner), "annotations": notes},
                     "spec": _pod(spec, api, artifact_key(api.model_fingerprint))}}}
    service = {"spec": {"type": spec.settings.service_type.value, "selector": select,
                        "ports": [{"name": "http", "port": api.port, "targetPort": "http", "protocol": "TCP"}]}}
    return [Manifest.build(Kind.DEPLOYMENT, spec.namespace, name, owner, deployment, notes),
            Manifest.build(Kind.SERVICE, spec.namespace, name, owner, service),
            Manifest.build(Kind.HORIZONTAL_POD_AUTOSCALER, spec.namespace, name, owner, _autoscaler(api, name))]


def server_resources(spec: AppSpec) -> Resources:
    return Resources(spec.settings.api_cpu, spec.settings.api_memory)


def server_command(api: Serving) -> list[str]:
    return ["python", "-m", "runtime.serve", "--bundle", BUNDLE_DIR, "--host", "0.0.0.0",
            "--port", str(CONTAINER_PORT), "--no-admin", "--max-body-bytes", str(api.max_body_bytes)]


def _probe(period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": period,
            "timeoutSeconds": 2, "failureThreshold": failures}


def _pod(spec: AppSpec, api: Serving, key: str) -> dict[str, Any]:
    server = {"name": "server", "image": spec.image, "command": server_command(api), "env": pods.env(spec),
              "envFrom": pods.env_from(spec),
              "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
              "resources": server_resources(spec).to_doc(),
              "startupProbe": _probe(5, 24),     # TensorFlow's import and the bundle's load: up to 2 minutes
              "readinessProbe": _probe(5, 2), "livenessProbe": _probe(10, 3),
              "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(DRAIN_SECONDS)]}}},
              "securityContext": pods.container_security(), "volumeMounts": pods.work_mounts()}
    stage = pods.stage_container(spec, (pods.Pull(bundle(key), BUNDLE_DIR),))
    return pods.pod_spec(spec, workload_account(spec), [server], [stage], "Always",
                         terminationGracePeriodSeconds=30)


def _autoscaler(api: Serving, name: str) -> dict[str, Any]:
    return {"spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicas": api.replicas.min, "maxReplicas": api.replicas.max,
        "metrics": [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": CPU_TARGET}}}]}}

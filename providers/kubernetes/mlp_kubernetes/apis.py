"""An api on the cluster: deploy (a rolling update when it exists), ask how it is, stop it.

What the state records is what the cluster reported: the model fingerprint is the one on the
Deployment's pod template once every replica runs it, and the url is the Service's
(its load balancer's address when it has one, else its name inside the cluster).
"""

from __future__ import annotations

from urllib.parse import urlparse

from mlp.errors import ApplyError
from mlp.providers import ApiHealth, ApiStatus, Endpoint
from mlp_kubernetes.cluster import Desired, apply_manifests
from mlp_kubernetes.kubeapi import DeploymentStatus, KubeApi, Observed
from mlp_kubernetes.manifest import Kind, ObjectRef
from mlp_kubernetes.names import APP, BLOCK, MANAGED_BY, MLP, Selector
from mlp_kubernetes.runs import Clock, ensure_accounts
from mlp_kubernetes.serving import api_manifests
from mlp_kubernetes.settings import KubeSettings, ServiceType
from mlp_kubernetes.specs import AppSpec, Serving

SERVING_KINDS = (Kind.HORIZONTAL_POD_AUTOSCALER, Kind.DEPLOYMENT, Kind.SERVICE)  # in the order they go
ROLLOUT = Clock(timeout=600.0, interval=2.0)


def refs(spec: AppSpec, name: str) -> tuple[ObjectRef, ObjectRef]:
    """The api's Deployment and Service."""
    obj = spec.object_name("api", name)
    return ObjectRef.of(Kind.DEPLOYMENT, spec.namespace, obj), ObjectRef.of(Kind.SERVICE, spec.namespace, obj)


def deploy(api: KubeApi, spec: AppSpec, serving: Serving, clock: Clock | None = None) -> Endpoint:
    """Apply the api's objects and wait until every replica serves its model."""
    ensure_accounts(api, spec)
    apply_manifests(Desired.block(spec, serving.api, api_manifests(spec, serving)), api)
    deployment, _ = refs(spec, serving.name)
    status = _rolled_out(api, deployment, serving.model_fingerprint, clock or ROLLOUT)
    return endpoint(api, spec, serving, status)


def _rolled_out(api: KubeApi, ref: ObjectRef, model: str, clock: Clock) -> DeploymentStatus:
    deadline = clock.now() + clock.timeout
    while True:
        seen = api.read(ref)
        status = seen.deployment if seen is not None else None
        if status is not None and status.rolled_out and status.model_fingerprint == model:
            return status
        if clock.now() > deadline:
            shown = (f"{status.available} of {status.replicas} replicas available, {status.updated} updated"
                     if status is not None else "it is not there")
            raise ApplyError(f"{ref} did not roll out model {model[:12]} within {clock.timeout:.0f}s", shown,
                             f"kubectl --context {api.context} -n {ref.namespace} rollout status "
                             f"deployment/{ref.name}")
        clock.sleep(clock.interval)


def endpoint(api: KubeApi, spec: AppSpec, serving: Serving, status: DeploymentStatus) -> Endpoint:
    _, service = refs(spec, serving.name)
    seen = api.read(service)
    ingress = seen.service.ingress if seen is not None and seen.service is not None else ()
    lb = spec.settings.service_type is ServiceType.LOAD_BALANCER and ingress
    host = ingress[0] if lb else f"{service.name}.{spec.namespace}.svc.cluster.local"
    replicas = serving.replicas.min if serving.replicas.min == serving.replicas.max else \
        {"min": serving.replicas.min, "max": serving.replicas.max}
    return Endpoint(f"http://{host}:{serving.port}", serving.port, 0, serving.model, status.model_fingerprint,
                    replicas, serving.max_body_bytes)


def locate(api: KubeApi, settings: KubeSettings, endpoint: Endpoint) -> Observed | None:
    """The Service mlp made at the endpoint's address: its name inside the cluster, or its load
    balancer's address. A state is data: an address of anything else finds nothing."""
    host = urlparse(endpoint.url).hostname or ""
    ns = settings.namespace
    services = api.list(Kind.SERVICE, ns, Selector.of({MANAGED_BY: MLP}))
    inside = host.removesuffix(f".{ns}.svc.cluster.local") if host.endswith(f".{ns}.svc.cluster.local") else None
    return next((s for s in services if s.ref.name == inside
                 or (s.service is not None and host in s.service.ingress)), None)


def health(api: KubeApi, settings: KubeSettings, endpoint: Endpoint, expected: str) -> ApiHealth:
    """What the api's Deployment says: available, on the provider's image, with which model."""
    service = locate(api, settings, endpoint)
    if service is None:
        return ApiHealth(ApiStatus.DOWN, None, f"no Service of mlp's in namespace {settings.namespace} is at "
                                               f"{endpoint.url[:80]}")
    ref = ObjectRef.of(Kind.DEPLOYMENT, settings.namespace, service.ref.name)
    seen = api.read(ref)
    status = seen.deployment if seen is not None and seen.labels.get(MANAGED_BY) == MLP else None
    if status is None:
        return ApiHealth(ApiStatus.DOWN, None, f"{ref} is not on the cluster")
    if status.available == 0:
        return ApiHealth(ApiStatus.DOWN, None, f"no replica of {ref} is available")
    serving = status.model_fingerprint or None
    if status.image != settings.runtime_image:
        return ApiHealth(ApiStatus.DRIFTED, serving, f"it runs the image {status.image}, not {settings.runtime_image}")
    if expected and serving != expected:
        return ApiHealth(ApiStatus.DRIFTED, serving,
                         f"it serves model {(serving or 'none')[:12]}, the state records {expected[:12]}")
    return ApiHealth(ApiStatus.SERVING, serving)


def stop(api: KubeApi, settings: KubeSettings, endpoint: Endpoint) -> bool:
    """Delete the api's objects by its block's labels; True when there were some."""
    service = locate(api, settings, endpoint)
    if service is None:
        return False
    selector = Selector.of({k: v for k, v in service.labels.items() if k in (MANAGED_BY, APP, BLOCK)})
    present = [k for k in SERVING_KINDS if api.list(k, settings.namespace, selector)]
    for kind in present:
        api.delete_by_label(kind, settings.namespace, selector)
    return bool(present)

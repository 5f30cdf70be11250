"""The `KubeApi` on a real cluster, through the official `kubernetes` client.

    connect(settings) -> ClientKubeApi

The kubeconfig is the provider block's `kubeconfig`, else $KUBECONFIG (a list of files, as
kubectl reads it), else ~/.kube/config; the context is the block's `context`, else the
file's current one. A missing file, an unknown context, an unreachable server and a refused
call are each a `ClusterError` naming the context. The client is imported only here, and
only when a cluster is asked something.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mlp_kubernetes.errors import ClusterError
from mlp_kubernetes.kubeapi import Observed
from mlp_kubernetes.manifest import Kind, Manifest, ObjectRef
from mlp_kubernetes.names import MLP, Selector
from mlp_kubernetes.settings import KubeSettings

TIMEOUT = 30.0          # seconds for one API call
POD_START_TIMEOUT = 600.0  # seconds a pod may take to be scheduled and pull its image


def kubeconfig_files(setting: str, environ: Mapping[str, str]) -> list[Path]:
    """The kubeconfig files to read, in kubectl's order."""
    if setting:
        return [Path(setting).expanduser()]
    listed = [p for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return [Path(p).expanduser() for p in listed] or [Path("~/.kube/config").expanduser()]


def connect(settings: KubeSettings, environ: Mapping[str, str] | None = None) -> ClientKubeApi:
    """A KubeApi on the cluster the settings name."""
    files = kubeconfig_files(settings.kubeconfig, os.environ if environ is None else environ)
    if not any(f.is_file() for f in files):
        shown = f'context "{settings.context}"' if settings.context else "its current context"
        raise ClusterError(f"No kubeconfig at {' or '.join(str(f) for f in files)}",
                           f"The kubernetes provider reaches the cluster ({shown}) through a kubeconfig file.",
                           'Set kubeconfig = "PATH" in the provider block or KUBECONFIG, or write one with your '
                           "cluster's tool (kubectl config set-cluster ...)", context=settings.context)
    path = os.pathsep.join(str(f) for f in files if f.is_file())
    contexts, current = _contexts(path, settings.context)
    name = settings.context or current
    if name not in contexts:
        raise ClusterError(f'The kubeconfig {path} has no context "{name}"',
                           f"Its contexts: {', '.join(contexts) or 'none'}.",
                           "Set context to one of them (kubectl config get-contexts lists them)", context=name)
    return ClientKubeApi(_client(path, name), name)


def _contexts(path: str, wanted: str) -> tuple[list[str], str]:
    """The contexts of the kubeconfig and its current one."""
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    try:
        contexts, current = config.list_kube_config_contexts(path)
    except (ConfigException, OSError, ValueError, TypeError, AttributeError) as e:
        raise ClusterError(f"Cannot read the kubeconfig {path}", str(e),
                           "Fix the file, or point kubeconfig at another one", context=wanted) from None
    return sorted(str(c["name"]) for c in contexts or ()), str((current or {}).get("name") or "")


def _client(path: str, context: str) -> Any:
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    try:
        config.load_kube_config(path, context=context, client_configuration=configuration, persist_config=False)
    except (ConfigException, OSError, ValueError, TypeError) as e:
        raise ClusterError(f'Cannot use the kubeconfig context "{context}" of {path}', str(e),
                           f"Check it with: kubectl --context {context} cluster-info", context=context) from None
    configuration.retries = 1
    return client.ApiClient(configuration)


class ClientKubeApi:
    def __init__(self, api_client: Any, context: str) -> None:
        self.api_client = api_client
        self.context = context
        self._dynamic: Any = None

    # -- KubeApi ------------------------------------------------------------------------

    def create(self, manifest: Manifest) -> None:
        self._call(str(manifest.ref), lambda: self._resource(manifest.kind).create(
            body=dict(manifest.doc), namespace=manifest.ref.namespace, _request_timeout=TIMEOUT))

    def replace(self, manifest: Manifest) -> None:
        self._call(str(manifest.ref), lambda: self._resource(manifest.kind).replace(
            body=dict(manifest.doc), namespace=manifest.ref.namespace, _request_timeout=TIMEOUT))

    def patch(self, manifest: Manifest) -> None:
        self._call(str(manifest.ref), lambda: self._resource(manifest.kind).server_side_apply(
            body=dict(manifest.doc), name=manifest.name, namespace=manifest.ref.namespace, field_manager=MLP,
            force_conflicts=True, _request_timeout=TIMEOUT))

    def delete(self, ref: ObjectRef) -> None:
        self._call(str(ref), lambda: self._resource(ref.kind).delete(
            name=ref.name, namespace=ref.namespace, propagation_policy="Background", _request_timeout=TIMEOUT),
            missing_ok=True)

    def delete_by_label(self, kind: Kind, namespace: str, selector: Selector) -> None:
        for found in self.list(kind, namespace, selector):  # not every kind has a collection DELETE
            self.delete(found.ref)

    def list(self, kind: Kind, namespace: str, selector: Selector) -> tuple[Observed, ...]:
        got = self._call(f"{kind.value} {selector}", lambda: self._resource(kind).get(
            namespace=namespace, label_selector=str(selector), _request_timeout=TIMEOUT))
        items = got.to_dict().get("items") or []
        return tuple(sorted((Observed.of({**i, "kind": kind.value}) for i in items), key=lambda o: o.ref))

    def read(self, ref: ObjectRef) -> Observed | None:
        got = self._call(str(ref), lambda: self._resource(ref.kind).get(
            name=ref.name, namespace=ref.namespace, _request_timeout=TIMEOUT), missing_ok=True)
        return Observed.of(got.to_dict()) if got is not None else None

    def logs(self, namespace: str, pods: Selector, container: str) -> Iterator[str]:
        from kubernetes import client

        core = client.CoreV1Api(self.api_client)
        pod = self._started_pod(core, namespace, pods)
        try:
            response = self._call(f"the log of pod {pod}", lambda: core.read_namespaced_pod_log(
                pod, namespace, container=container, follow=True, _preload_content=False))
        except ClusterError as e:
            if e.status != 400:  # 400: the container never started; its init container's log says why
                raise
            response = self._call(f"the log of pod {pod}", lambda: core.read_namespaced_pod_log(
                pod, namespace, container="stage", _preload_content=False))
        yield from _lines(response)

    # -- the client ----------------------------------------------------------------------

    def _resource(self, kind: Kind) -> Any:
        if self._dynamic is None:
            from kubernetes.dynamic import DynamicClient

            self._dynamic = DynamicClient(self.api_client)
        return self._dynamic.resources.get(api_version=kind.api_version, kind=kind.value)

    def _started_pod(self, core: Any, namespace: str, pods: Selector) -> str:
        """The newest pod `pods` selects, once it runs or has ended (its log exists then)."""
        deadline = time.monotonic() + POD_START_TIMEOUT
        while True:
            found = self._call(f"pods {pods}", lambda: core.list_namespaced_pod(
                namespace, label_selector=str(pods), _request_timeout=TIMEOUT)).items
            newest = max(found, key=lambda p: p.metadata.creation_timestamp, default=None)
            if newest is not None and newest.status.phase != "Pending":
                return str(newest.metadata.name)
            if time.monotonic() > deadline:
                raise ClusterError(f"No pod of {pods} started within {POD_START_TIMEOUT:.0f}s",
                                   "It may wait for a node with room for it, or for its image.",
                                   f"kubectl --context {self.context} -n {namespace} describe pods -l {pods}",
                                   context=self.context)
            time.sleep(2.0)

    def _call(self, what: str, fn: Any, missing_ok: bool = False) -> Any:
        from kubernetes.client.exceptions import ApiException
        from kubernetes.dynamic.exceptions import DynamicApiError
        from urllib3.exceptions import HTTPError

        try:
            return fn()
        except (ApiException, DynamicApiError) as e:
            status = int(getattr(e, "status", 0) or 0)
            if missing_ok and status == 404:
                return None
            raise ClusterError(f'The cluster (context "{self.context}") refused {what}: {status} '
                               f"{getattr(e, 'reason', '')}", _api_message(e),
                               _refusal_hint(status, self.context), context=self.context, status=status) from None
        except (HTTPError, OSError) as e:
            server = self.api_client.configuration.host
            raise ClusterError(f'Cannot reach the cluster of context "{self.context}" at {server}',
                               f"{type(e).__name__}: {e}",
                               f"Check that it is up and reachable: kubectl --context {self.context} cluster-info",
                               context=self.context) from None


def _lines(response: Any) -> Iterator[str]:
    """The lines of a streamed HTTP response, as they come."""
    rest = b""
    for chunk in response.stream(65536):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from (line.decode("utf-8", errors="replace") for line in lines)
    if rest:
        yield rest.decode("utf-8", errors="replace")


def _api_message(e: Exception) -> str:
    import json

    body = getattr(e, "body", None)
    try:
        return str(json.loads(body).get("message") or body) if body else str(e)
    except (TypeError, ValueError):
        return str(body)


def _refusal_hint(status: int, context: str) -> str:
    if status in (401, 403):
        return f"The credentials of context {context} lack the right; ask the cluster's admin for it"
    return f"See what the cluster says about it: kubectl --context {context} get events"

"""`CloudProvider`: mlp's provider interface for a cloud, on a Pulumi stack and the
Kubernetes workload layer. `mlp_aws`, `mlp_gcp` and `mlp_azure` each subclass it with
their `Cloud` (kind, defaults, plugins), their stack config and their program.

    check       the block: machine types, max_nodes, namespace, and the cloud's place
    preview     the stack's per-resource steps, then (once the cluster exists) the
                Kubernetes layer's objects; without the Pulumi CLI, a note saying how to
                install it
    provision   `up`, then the outputs handed to a bound `KubernetesProvider`, which
                makes the app's service accounts
    teardown    the workloads first (through the Kubernetes layer), then `destroy`
    the rest    refresh, run_data, train, deploy_api... are the Kubernetes layer's, on
                the cluster the stack's outputs name

Every Pulumi call goes through `Seams.driver` (the Automation API unless a test gives a
`RecordingDriver`); the CLI's presence is asked first, so an apply without it stops before
any call. Made from its block alone (as mlp makes it at validate), it checks the block;
what needs the app (stack names, the program) says so when called without it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mlp.errors import MlpError, UsageError
from mlp.providers import (
    ApiDeployment,
    ApiHealth,
    ApiStatus,
    Endpoint,
    JobLog,
    Preview,
    Provisioned,
    Refresh,
    refresh_records,
)
from mlp.state.backend import ArtifactStore
from mlp.state.model import State
from mlp_cloud.driver import NEEDS_CLI, Program, PulumiDriver, cli_missing, pulumi_cli
from mlp_cloud.events import changes_of
from mlp_cloud.handoff import ClusterOutputs, kubeconfig_path, kubernetes_provider
from mlp_cloud.infra import Infra
from mlp_cloud.settings import ClusterSize, Shape, check_cluster
from mlp_cloud.stack import StackRef, backend_url

if TYPE_CHECKING:
    from mlp.config.blocks import App, ProviderConfig
    from mlp.diagnostics import Diagnostics
    from mlp.engine.datarun import DataRun
    from mlp.plan.model import Plan
    from mlp.state.backends.objects import ObjectStore
    from mlp.state.moves import BackendSpec
    from mlp_kubernetes.kubeapi import KubeApi
    from mlp_kubernetes.provider import KubernetesProvider
    from mlp_kubernetes.runs import Clock
    from runtime.jobs import GateJob, GateScore, PredictJob, TrainJob, TrainResult


@dataclass(frozen=True)
class Seams:
    """Where a cloud provider reaches the outside; tests replace each."""

    driver: PulumiDriver | None = None          # None: the Automation API
    kube_api: KubeApi | None = None             # None: the kubeconfig the stack made
    store: ObjectStore | None = None            # None: the app's backend's bucket
    clock: Clock | None = None
    pulumi_cli: Callable[[], str | None] = pulumi_cli


@dataclass(frozen=True)
class Cloud:
    """What a cloud tells the shared provider."""

    kind: str                                   # the provider block's kind
    backend_kind: str                           # its backend: s3, gcs or azurerm
    defaults: ClusterSize                       # the schema's cluster defaults
    node: Shape                                 # what a node_type looks like
    gpu: Shape                                  # what a gpu_node_type looks like
    plugins: Mapping[str, str] = field(default_factory=dict)  # Pulumi plugin -> its Python package


class CloudProvider:
    cloud: ClassVar[Cloud]
    kind: str

    def __init__(self, config: ProviderConfig, app: App | None = None, seams: Seams | None = None) -> None:
        self.kind = self.cloud.kind
        self.config = config
        self.app = app
        self.seams = seams or Seams()

    # -- what each cloud gives -----------------------------------------------------------

    def stack_config(self) -> Mapping[str, str]:
        """The stack's config: what the cloud's provider package reads (its region)."""
        raise NotImplementedError

    def program(self, infra: Infra) -> Program:
        """The inline program that declares the cloud's component for `infra`."""
        raise NotImplementedError

    def check_place(self, config: ProviderConfig, diags: Diagnostics) -> None:
        """The block's region, project or location."""

    # -- the block and the infrastructure --------------------------------------------------

    def check(self, config: ProviderConfig, diags: Diagnostics) -> None:
        check_cluster(config, diags, self.cloud.node, self.cloud.gpu, self.cloud.defaults)
        self.check_place(config, diags)

    @property
    def size(self) -> ClusterSize:
        return ClusterSize.of(self.config.settings, self.cloud.defaults)

    def infra(self, app: App) -> Infra:
        return Infra.of(app, self.kind, self.size, self.cloud.backend_kind)

    def stack(self, app: App) -> StackRef:
        return StackRef.of(app, self.kind, self.stack_config())

    @cached_property
    def driver(self) -> PulumiDriver:
        if self.seams.driver is not None:
            return self.seams.driver
        from mlp_cloud.automation import AutomationDriver

        return AutomationDriver(self.kind, self.cloud.plugins)

    def preview(self, plan: Plan) -> Preview:
        """The stack's steps and, once its cluster exists, the Kubernetes layer's objects."""
        if self.seams.pulumi_cli() is None:
            return Preview((), NEEDS_CLI)
        app = self.app or _app_of(plan)
        stack = self.stack(app)
        try:
            infra = changes_of(self.driver.preview(stack, self.program(self.infra(app))))
            outputs = self.driver.outputs(stack)
        except MlpError as e:
            return Preview((), f"The {self.kind} infrastructure is not previewed: {e.summary}. {e.detail}".strip())
        if ClusterOutputs.of(outputs) is None:
            return Preview(infra)
        kube = kubernetes_provider(self.config, app, outputs, self.seams).preview(plan)
        return Preview(infra + kube.changes, kube.note)

    def provision(self) -> Provisioned:
        """`up`, then the app's service accounts on the cluster it made."""
        self._need_cli("apply")
        app = self._bound("provision")
        _needs_bucket(app, self.kind)
        stack = self.stack(app)
        outputs = self.driver.up(stack, self.program(self.infra(app)))
        kube = kubernetes_provider(self.config, app, outputs, self.seams)
        kube.provision()
        self.__dict__["kube"] = kube
        out = ClusterOutputs.of(outputs)
        return Provisioned(out.public(kubeconfig_path(app, self.kind)) if out else {})

    def teardown(self) -> None:
        """The app's workloads (while the cluster is there to delete them), then the stack."""
        self._need_cli("destroy")
        app = self._bound("tear down")
        stack = self.stack(app)
        outputs = self.driver.outputs(stack)
        if ClusterOutputs.of(outputs) is not None:
            kubernetes_provider(self.config, app, outputs, self.seams).teardown()
        self.driver.destroy(stack, self.program(self.infra(app)))
        self.__dict__.pop("kube", None)
        kubeconfig_path(app, self.kind).unlink(missing_ok=True)

    def leftovers(self, app: App, backend: BackendSpec | None) -> str:
        """What this cloud's stack still holds once the app runs on another provider, and
        the commands that tear it down (the stack's state is in `backend`, the app's old
        one on a move, else the app's)."""
        from mlp.config.blocks import BackendConfig

        where = app.backend if backend is None else BackendConfig(backend.kind, None, dict(backend.settings))
        stack = StackRef.of(app, self.kind, {})
        url = backend_url(where, Path(app.dir))
        return (f'The {self.kind} stack "{stack.name}" still holds the cluster, node pools, bucket, registry and '
                "identity it made for this app: this apply leaves them up, and they cost by the hour. Tear them "
                f"down with the Pulumi CLI: pulumi login '{url}', then pulumi destroy --stack {stack.name} "
                f"--cwd {Path(stack.work_dir).relative_to(app.dir)} (docs/cloud.md).")

    # -- the Kubernetes layer on the stack's cluster ---------------------------------------

    @cached_property
    def kube(self) -> KubernetesProvider:
        self._need_cli("reach its cluster")
        app = self._bound("reach its cluster")
        return kubernetes_provider(self.config, app, self.driver.outputs(self.stack(app)), self.seams)

    def refresh(self, state: State, store: ArtifactStore) -> Refresh:
        return refresh_records(state, store, self.api_health)

    def api_health(self, endpoint: Endpoint | None, expected: str) -> ApiHealth:
        """What the cluster says of the api; what cannot be asked (no Pulumi CLI, no cluster
        yet) is taken as the state says it, as `terraform plan -refresh=false` would."""
        if endpoint is None:
            return ApiHealth(ApiStatus.DOWN, None, f"the state records no api on the {self.kind} cluster")
        if self.seams.pulumi_cli() is None or "kube" not in self.__dict__ and not self._has_cluster:
            return ApiHealth(ApiStatus.SERVING, endpoint.model_fingerprint or expected)
        return self.kube.api_health(endpoint, expected)

    @cached_property
    def _has_cluster(self) -> bool:
        """Asked once per provider (a refresh asks per api)."""
        app = self.app
        try:
            return app is not None and ClusterOutputs.of(self.driver.outputs(self.stack(app))) is not None
        except MlpError:
            return False

    def run_data(self, run: DataRun) -> None:
        self.kube.run_data(run)

    def source_path(self, uri: str, app: App) -> str:
        return uri  # the driver pods read object storage where it is

    def data_session(self, log: str) -> Any:
        return self.kube.data_session(log)

    def train(self, job: TrainJob, log: JobLog) -> TrainResult:
        return self.kube.train(job, log)

    def predict(self, job: PredictJob, log: JobLog) -> None:
        self.kube.predict(job, log)

    def evaluate(self, job: GateJob, log: JobLog) -> GateScore:
        return self.kube.evaluate(job, log)

    def deploy_api(self, deployment: ApiDeployment, current: Endpoint | None) -> Endpoint:
        return self.kube.deploy_api(deployment, current)

    def reload_api(self, deployment: ApiDeployment, current: Endpoint) -> Endpoint:
        return self.kube.reload_api(deployment, current)

    def stop_api(self, endpoint: Endpoint | None, log: str) -> bool:
        return endpoint is not None and self.kube.stop_api(endpoint, log)

    # -- what the methods share ------------------------------------------------------------

    def _need_cli(self, verb: str) -> None:
        if self.seams.pulumi_cli() is None:
            raise cli_missing(self.kind, verb)

    def _bound(self, verb: str) -> App:
        if self.app is None:
            raise UsageError(f"The {self.kind} provider cannot {verb} without its app",
                             f"Its stack is named after the app ({{app}}-{self.kind}) and kept in the app's backend; "
                             "it was given only the provider block.",
                             "Make it with the app: mlp.providers.provider_for(app.provider, app)")
        return self.app


def _app_of(plan: Plan) -> App:
    from mlp.config.loader import load_app
    from mlp.errors import DiagnosticsError

    app, diags = load_app(Path(plan.app_dir), {k: str(v) for k, v in plan.variables.items()})
    if app is None or diags.has_errors():
        raise DiagnosticsError(diags)
    return app


def _needs_bucket(app: App, kind: str) -> None:
    """The workloads read the app and write artifacts in the backend's bucket: a local
    backend stops apply before anything is made."""
    from mlp_kubernetes.storage import Storage

    try:
        Storage.of(app.backend)
    except UsageError as e:
        raise UsageError(f"The {kind} provider needs a remote backend", e.detail, e.hint) from None

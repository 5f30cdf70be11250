"""`KubernetesProvider`: mlp's provider interface (`mlp.providers.Provider`) on a cluster.

    check        the provider block (namespace, image, the settings beyond the schema)
    preview      the Kubernetes objects apply would create, update, replace or delete,
                 against what the cluster has (listed by mlp's labels)
    refresh      the artifacts the store lost, and each api's Deployment: available? on the
                 provider's image? serving which model?
    provision    the app's service accounts; teardown deletes all of the app's objects
    run_data     a source's data unit as a Spark driver Job, its events replayed here
    train        a model's training as a Job
    predict      a model's predictions as a column, as a Job
    evaluate     an api's rollout gate (the serving model against the new one), as a Job
    deploy_api / reload_api   the api's Deployment, Service and autoscaler (a rolling update)
    stop_api     the api's objects, deleted by its labels

Every cluster call goes through a `KubeApi` (`mlp_kubernetes.kubeapi`): the real one is made
from the block's kubeconfig and context on first use; tests hand in a `RecordingKubeApi`.
Nothing runs on this machine in the cluster's name: each runtime job is a Job, its inputs and
outputs moved through the backend's bucket.

mlp's engine hands a provider its block only. What makes objects needs the app too (its
name, backend and blocks): `provision`, `teardown`, `train` and `deploy_api` need `bind(app)`
first and say so without it (as do `predict` and `evaluate`). `preview` and `run_data` find the app in what they are given;
`refresh`, `api_health` and `stop_api` find an api's objects from its recorded endpoint.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlp.errors import UsageError
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
from mlp_kubernetes.settings import KubeSettings, check_settings

if TYPE_CHECKING:
    from mlp.config.blocks import App, ProviderConfig
    from mlp.diagnostics import Diagnostics
    from mlp.engine.datarun import DataRun
    from mlp.plan.model import Plan
    from mlp.state.backends.objects import ObjectStore
    from mlp_kubernetes.kubeapi import KubeApi
    from mlp_kubernetes.runs import Clock
    from mlp_kubernetes.specs import AppSpec, Serving, Training
    from runtime.jobs import GateJob, GateScore, PredictJob, TrainJob, TrainResult


class KubernetesProvider:
    kind = "kubernetes"

    def __init__(self, config: ProviderConfig, api: KubeApi | None = None, app: App | None = None,
                 store: ObjectStore | None = None, clock: Clock | None = None) -> None:
        self.config = config
        self.app = app
        self.clock = clock
        self._api = api
        self._store = store

    @cached_property
    def settings(self) -> KubeSettings:
        """The block's settings; a block `check` would refuse is a UsageError here (the
        provider is made before its block is checked, so making it never fails)."""
        try:
            return KubeSettings.from_settings(self.config.settings)
        except ValueError as e:
            raise UsageError(f'The provider "kubernetes" block at {self.config.pos} is invalid: {e}', "",
                             "Run mlp validate to see what to fix") from None

    def render(self, out_dir: Path) -> list[Path]:
        """`mlp render DIR`: every manifest for the bound app, one file per object."""
        from mlp_kubernetes.render import render

        if self.app is None:
            raise UsageError("The kubernetes provider has no app to render", "", "Run mlp render in the app folder.")
        return render(self.app.dir, out_dir)

    def bind(self, app: App) -> KubernetesProvider:
        """This provider for `app` (the same cluster connection)."""
        return KubernetesProvider(self.config, self._api, app, self._store, self.clock)

    # -- the block and the infrastructure --------------------------------------------------

    def check(self, config: ProviderConfig, diags: Diagnostics) -> None:
        check_settings(config, diags)

    def preview(self, plan: Plan) -> Preview:
        from mlp_kubernetes.preview import preview

        return preview(self, plan)

    def provision(self) -> Provisioned:
        from mlp_kubernetes.runs import ensure_accounts

        ensure_accounts(self.api, self.spec("provision"))
        return Provisioned({"context": self.api.context, "namespace": self.settings.namespace})

    def teardown(self) -> None:
        from mlp_kubernetes.cluster import destroy

        destroy(self.spec("tear down"), self.api)

    # -- refresh -----------------------------------------------------------------------

    def refresh(self, state: State, store: ArtifactStore) -> Refresh:
        return refresh_records(state, store, self.api_health)

    def api_health(self, endpoint: Endpoint | None, expected: str) -> ApiHealth:
        """The Deployment behind the endpoint's Service; an unreachable cluster is an error,
        not an api that is down (a plan must not redeploy what it could not see)."""
        from mlp_kubernetes import apis

        if endpoint is None:
            return ApiHealth(ApiStatus.DOWN, None, "the state records no api on the cluster")
        return apis.health(self.api, self.settings, endpoint, expected)

    # -- jobs --------------------------------------------------------------------------

    def run_data(self, run: DataRun) -> None:
        from mlp_kubernetes.appspec import jobs_spec
        from mlp_kubernetes.dataunits import run_unit

        app = run.ctx.analysis.app
        run_unit(self.api, self.store(app), jobs_spec(app, self.settings), run, self.clock)

    def source_path(self, uri: str, app: App) -> str:
        """The driver pod reads object storage where it is, through Spark's connectors."""
        return uri

    def data_session(self, log: str) -> Any:
        """Never asked for: data units run in driver Jobs, and a model's tables are joined by its
        training Job. Refused rather than started here, should anything ask."""
        raise UsageError("The kubernetes provider runs Spark in driver pods, not in this process",
                         "Data work of a kubernetes app runs in each source's driver Job, and a model's training "
                         "Job joins the tables of its columns itself.",
                         'Use provider "local" to run data work in this process')

    def train(self, job: TrainJob, log: JobLog) -> TrainResult:
        from mlp.graph.address import Address
        from mlp_kubernetes.runjob import training_run
        from mlp_kubernetes.training import train_on_cluster

        spec = self.spec("train a model")
        training = next((t for t in spec.models if t.model == job.model), None)
        if training is None:
            raise UsageError(f"The app has no {Address.parse(job.model)} to train", "The engine's training job names it.")
        return train_on_cluster(self.api, self.store(self._bound("train a model")), spec, training_run(training),
                                job, log, self.clock)

    def predict(self, job: PredictJob, log: JobLog) -> None:
        """A model's predictions as the column `log.block`, in a Job sized as the model's training."""
        from mlp_kubernetes.modeljobs import predict_on_cluster

        spec = self.spec("run a model's predictions")
        column = next((c for c in spec.columns if c.column == log.block), None)
        if column is None:
            raise UsageError(f"The app has no transformed_column of a model at {log.block}",
                             "The engine's prediction job names it.")
        training = self._training(spec, column.model, log.block)
        predict_on_cluster(self.api, self.store(self._bound("run a model's predictions")), spec, column, training,
                           job, log, self.clock)

    def evaluate(self, job: GateJob, log: JobLog) -> GateScore:
        """The rollout gate of the api `log.block`, in a Job with its model's CPU and memory."""
        from mlp.config.blocks import Api
        from mlp.graph.address import Address
        from mlp_kubernetes.modeljobs import gate_on_cluster
        from mlp_kubernetes.runjob import gate_run

        app = self._bound("run the rollout gate")
        block = app.blocks.get(Address.parse(log.block))
        if not isinstance(block, Api) or block.model is None:
            raise UsageError(f"The app has no api of a model at {log.block}", "The engine's rollout gate names it.")
        spec = self.spec("run the rollout gate")
        run = gate_run(log.block, block.name, self._training(spec, str(block.model), log.block))
        return gate_on_cluster(self.api, self.store(app), spec, run, job, log, self.clock)

    # -- serving -----------------------------------------------------------------------

    def deploy_api(self, deployment: ApiDeployment, current: Endpoint | None) -> Endpoint:
        """The api's objects applied; a change of model is a rolling update."""
        from mlp_kubernetes import apis

        return apis.deploy(self.api, self.spec("deploy an api"), _serving(deployment), self.clock)

    def reload_api(self, deployment: ApiDeployment, current: Endpoint) -> Endpoint:
        return self.deploy_api(deployment, current)

    def stop_api(self, endpoint: Endpoint | None, log: str) -> bool:
        """Delete the objects of the api behind the endpoint, by its block's labels."""
        from mlp_kubernetes import apis

        return endpoint is not None and apis.stop(self.api, self.settings, endpoint)

    # -- what the methods share ----------------------------------------------------------

    @property
    def api(self) -> KubeApi:
        if self._api is None:
            from mlp_kubernetes.client import connect

            self._api = connect(self.settings)
        return self._api

    def store(self, app: App) -> ObjectStore:
        if self._store is None:
            import os

            from mlp.state.backends import open_store
            from mlp_kubernetes.storage import Storage

            storage = Storage.of(app.backend)
            self._store = open_store(storage.kind, storage.settings, os.environ)
        return self._store

    def spec(self, verb: str) -> AppSpec:
        from mlp_kubernetes.appspec import jobs_spec

        return jobs_spec(self._bound(verb), self.settings)

    @staticmethod
    def _training(spec: AppSpec, model: str, block: str) -> Training:
        training = spec.training(model)
        if training is None:
            raise UsageError(f"{block}: the app has no {model}", f"{block} uses it.", f"Add {model}, or use another")
        return training

    def _bound(self, verb: str) -> App:
        if self.app is None:
            raise UsageError(f"The kubernetes provider cannot {verb} without its app",
                             "It finds its objects by the app's name and its inputs in the app's backend; it "
                             "was given only the provider block.",
                             "Call it through KubernetesProvider.bind(app)")
        return self.app


def _serving(d: ApiDeployment) -> Serving:
    from mlp.config.blocks import MAX_BODY_BYTES
    from mlp.graph.address import Address
    from mlp_kubernetes.appspec import DEFAULT_SERVICE_PORT
    from mlp_kubernetes.specs import Replicas, Serving

    return Serving(d.address, Address.parse(d.address).name, d.model, d.model_fingerprint, Replicas.of(d.replicas),
                   d.port or DEFAULT_SERVICE_PORT, d.max_body_bytes or MAX_BODY_BYTES)


if TYPE_CHECKING:
    from mlp.providers import Provider

    def _conforms(p: KubernetesProvider) -> Provider:  # mypy checks the provider against the protocol
        return p


__all__ = ["KubernetesProvider"]

"""Where workloads run: the provider interface, the only way the engine reaches compute.

The engine decides *what* to do; a provider says *what is there* and runs the work:

    check(config, diags)       the provider block's own settings, with file:line
    refresh(state, store)      -> Refresh: the recorded artifacts that are gone, and each
                                  recorded api's `ApiHealth` (up? serving which model?)
    preview(plan)              -> Preview: the infrastructure it would create, update, delete
    provision() / teardown()   -> Provisioned: outputs such as cluster access and a bucket
    run_data(run)              a source's data unit (`mlp.engine.datarun.DataRun`): here, or
                               as its `runtime.jobs.DataJob` elsewhere, events replayed
    source_path(uri, app)      where the data session reads a source (a bucket's objects
                               staged locally, for the local provider)
    data_session(log)          the Spark session data work in this process runs in
    train(job, log)            -> TrainResult: a `runtime.jobs.TrainJob`, run where it belongs
    predict(job, log)          a `runtime.jobs.PredictJob`: a model's predictions as a column
    evaluate(job, log)         -> GateScore: the rollout gate's `runtime.jobs.GateJob`
    deploy_api(deployment)     -> Endpoint: start, or move to another port, an api
    reload_api(endpoint, ...)  -> Endpoint: swap the model of a running api
    api_health(endpoint)       -> ApiHealth: ask a running api what it serves
    stop_api(endpoint, log)    -> bool: stop it; True when something was running

Jobs are data (`runtime.jobs`), written as JSON and run by `python -m runtime.<job>`, so the
same spec and code run in a child process here or in a pod on a cluster. Refresh is cheap by
contract: stats of the artifact store and one HTTP health check per api, never a read of the
data. `mlp.providers.local.LocalProvider` ships with the core; other providers are plugins
(`mlp.providers.registry`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from mlp.state.backend import ArtifactStore
from mlp.state.model import BlockRecord, State

if TYPE_CHECKING:
    from mlp.config.blocks import App, ProviderConfig
    from mlp.diagnostics import Diagnostics
    from mlp.engine.datarun import DataRun
    from mlp.plan.model import Plan
    from mlp.state.moves import BackendSpec
    from runtime.jobs import GateJob, GateScore, PredictJob, TrainJob, TrainResult


@dataclass(frozen=True)
class Endpoint:
    """A running api as the provider reported it, kept in the state's outputs.

    `model_fingerprint` is what the server said it serves when it was last checked (its
    /healthz), not what mlp asked for.
    """

    url: str
    port: int
    pid: int
    model: str
    model_fingerprint: str
    replicas: int | Mapping[str, int] = 1
    max_body_bytes: int | None = None  # the request body limit it was started with

    def to_json(self) -> dict[str, Any]:
        out = {"url": self.url, "port": self.port, "pid": self.pid, "model": self.model,
               "model_fingerprint": self.model_fingerprint, "replicas": self.replicas}
        return {**out, "max_body_bytes": self.max_body_bytes} if self.max_body_bytes is not None else out

    @classmethod
    def from_json(cls, d: Any) -> Endpoint | None:
        """The endpoint recorded in state; None when there is none or it is malformed."""
        if not isinstance(d, Mapping):
            return None
        try:
            replicas = d.get("replicas", 1)
            limit = d.get("max_body_bytes")
            return cls(url=str(d["url"]), port=int(d["port"]), pid=int(d["pid"]),
                       model=str(d.get("model", "")), model_fingerprint=str(d.get("model_fingerprint", "")),
                       replicas=replicas if isinstance(replicas, (int, Mapping)) else 1,
                       max_body_bytes=limit if isinstance(limit, int) and not isinstance(limit, bool) else None)
        except (KeyError, TypeError, ValueError):
            return None


class ApiStatus(StrEnum):
    SERVING = "serving"      # up, serving the model the state records
    DOWN = "down"            # no process, or it does not answer /healthz
    DRIFTED = "drifted"      # up, but serving another model


@dataclass(frozen=True)
class ApiHealth:
    status: ApiStatus
    serving: str | None = None   # the fingerprint the server reports, when it answers
    detail: str = ""


@dataclass(frozen=True)
class Refresh:
    """What refresh found. Addresses are strings, as in the state.

    Invariants: `missing` holds only addresses of state records whose artifact (or an
    artifact their output reads, such as a column's table) is not in the store; `apis`
    has an entry for every api record in the state.
    """

    missing: Mapping[str, str] = field(default_factory=dict)   # address -> the key that is gone
    apis: Mapping[str, ApiHealth] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.missing and all(h.status is ApiStatus.SERVING for h in self.apis.values())


@dataclass(frozen=True)
class ApiDeployment:
    """What the engine asks a provider to serve."""

    address: str
    model: str
    model_fingerprint: str
    bundle: str            # the bundle's location (a local folder for the local provider)
    replicas: int | Mapping[str, int] = 1
    port: int | None = None
    log: str = ""
    max_body_bytes: int | None = None  # None: the server's default


@dataclass(frozen=True)
class JobLog:
    """Where a job's output goes: the block it runs for, its log file, and `write(line,
    echo)`, which adds a line to that log (and, with echo, shows it with -v)."""

    block: str
    path: str
    write: Callable[[str, bool], None]


@dataclass(frozen=True)
class InfraChange:
    """One piece of infrastructure a provider would change (a Pulumi resource, a
    Kubernetes object)."""

    address: str
    action: str     # create | update | replace | delete
    reason: str = ""


@dataclass(frozen=True)
class Preview:
    """What apply would do to the provider's infrastructure; `note` says what could not be
    previewed and how to fix that."""

    changes: tuple[InfraChange, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Provisioned:
    """What provisioning made, for the workloads: e.g. kubeconfig, bucket, registry."""

    outputs: Mapping[str, str] = field(default_factory=dict)


class Provider(Protocol):
    kind: str

    def check(self, config: ProviderConfig, diags: Diagnostics) -> None: ...

    def refresh(self, state: State, store: ArtifactStore) -> Refresh: ...

    def preview(self, plan: Plan) -> Preview: ...

    def provision(self) -> Provisioned: ...

    def teardown(self) -> None: ...

    def run_data(self, run: DataRun) -> None: ...

    def source_path(self, uri: str, app: App) -> str: ...

    def data_session(self, log: str) -> Any: ...

    def train(self, job: TrainJob, log: JobLog) -> TrainResult: ...

    def predict(self, job: PredictJob, log: JobLog) -> None: ...

    def evaluate(self, job: GateJob, log: JobLog) -> GateScore: ...

    def api_health(self, endpoint: Endpoint | None, expected: str) -> ApiHealth: ...

    def deploy_api(self, deployment: ApiDeployment, current: Endpoint | None) -> Endpoint: ...

    def reload_api(self, deployment: ApiDeployment, current: Endpoint) -> Endpoint: ...

    def stop_api(self, endpoint: Endpoint | None, log: str) -> bool: ...


def refresh_records(state: State, store: ArtifactStore,
                    health: Callable[[Endpoint | None, str], ApiHealth]) -> Refresh:
    """The refresh every provider makes: each done record's artifact (and the artifacts its
    output reads) looked up in the store, and each api asked through `health`."""
    missing: dict[str, str] = {}
    apis: dict[str, ApiHealth] = {}
    for address, rec in sorted(state.blocks.items()):
        if rec.status != "done":
            continue
        gone = next((k for k in (rec.artifact, *rec.refs) if k and not store.has(k)), None)
        if gone is not None:
            missing[address] = gone
        if rec.kind == "api":
            apis[address] = health(Endpoint.from_json(state.outputs.get(address)), expected_model(state, rec))
    return Refresh(missing, apis)


def expected_model(state: State, api: BlockRecord) -> str:
    """The fingerprint of the model an api record says it serves (a promotion the rollout
    gate refused leaves it on the older one); records older than that field: its model's."""
    recorded = api.metrics.get("model_fingerprint") if isinstance(api.metrics, dict) else None
    if isinstance(recorded, str) and recorded:
        return recorded
    model = state.blocks.get(str(api.settings.get("model", "")))
    return model.fingerprint if model is not None else ""


def provider_for(config: ProviderConfig | str, app: App | None = None) -> Provider:
    """The provider of a provider block (or of its kind), for `app` when given: the local one
    ships with the core, any other is a plugin found through the `mlp.providers` entry-point
    group. A kind whose plugin is not installed is refused, never run locally in its name."""
    from mlp.providers.registry import load_provider

    return load_provider(config, app)


def leftovers(kind: str, app: App, old_backend: BackendSpec | None = None) -> str:
    """What provider `kind`, which the app's state ran on until now, still holds for it
    once the app has moved to another provider, and how to remove it: a provider that
    provisions (a cloud's stack) says so through an optional `leftovers(app, backend)`
    method, `backend` being the one its stack's state is in (None: the app's). "" when
    it holds nothing, or its plugin is gone."""
    from mlp.errors import MlpError

    if kind == "local":
        return ""  # its APIs are local processes, which the api blocks' rebuild replaces
    try:
        provider = provider_for(kind, app)
    except MlpError:
        return (f'The app ran on provider "{kind}" until now, and its plugin is not installed here: what that '
                "provider made for the app (a cluster, a stack) is not torn down by this apply.")
    say = getattr(provider, "leftovers", None)
    return str(say(app, old_backend)) if callable(say) else ""

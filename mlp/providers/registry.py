"""Which providers exist: `local` ships with the core; every other one is a plugin.

A plugin is an installed distribution that declares an entry point in the `mlp.providers`
group, named by the provider block's kind:

    [project.entry-points."mlp.providers"]
    kubernetes = "mlp_kubernetes.provider:KubernetesProvider"

The object it names is called with the provider block (`ProviderConfig`), and with the app
(`app=`) when the caller has one, and returns a `Provider`. Entry points are read only for a kind other than `local`, so a local app never
scans installed distributions. A kind with no plugin installed is an error at validate
that says what to install; nothing ever runs locally in another provider's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from mlp.errors import UsageError

if TYPE_CHECKING:
    from mlp.config.blocks import App, ProviderConfig
    from mlp.diagnostics import Diagnostics
    from mlp.providers import Provider

GROUP = "mlp.providers"
# The distributions that provide the providers mlp knows of, for the install hint.
DISTRIBUTIONS = {"kubernetes": "mlp-kubernetes", "aws": "mlp-aws", "gcp": "mlp-gcp", "azure": "mlp-azure"}


@dataclass(frozen=True)
class Missing:
    """Why a provider kind cannot be used, and the fix."""

    summary: str
    detail: str
    hint: str


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=GROUP)}


def installed(kind: str) -> bool:
    return kind == "local" or kind in _entry_points()


def missing(kind: str) -> Missing | None:
    """None when `kind` can run here; otherwise what to say."""
    if installed(kind):
        return None
    dist = DISTRIBUTIONS.get(kind, f"mlp-{kind}")
    others = ", ".join(sorted({"local", *_entry_points()}))
    return Missing(f'The "{kind}" provider is not installed',
                   f"Providers other than local are plugins (the {GROUP} entry points); installed here: {others}.",
                   f"Install it: pip install {dist}")


def check_provider(config: ProviderConfig, diags: Diagnostics) -> None:
    """At validate: a provider block whose plugin is missing is one error, at the block;
    an installed provider checks its own block."""
    gone = missing(config.kind)
    if gone is not None:
        diags.error(gone.summary, config.pos, gone.detail, gone.hint, f'in provider "{config.kind}"')
        return
    load_provider(config).check(config, diags)


# The SDK each remote backend needs, and the extra that installs it.
BACKEND_SDKS = {"s3": ("boto3", "s3"), "gcs": ("google.cloud.storage", "gcs"),
                "azurerm": ("azure.storage.blob", "azure")}


def check_settings_home(app: App, diags: Diagnostics) -> None:
    """At validate, what the app's provider and backend blocks need installed: the
    provider's plugin, and the backend's SDK (found, never imported)."""
    check_provider(app.provider, diags)
    need = BACKEND_SDKS.get(app.backend.kind)
    if need is not None and not _importable(need[0]):
        diags.error(f'The "{app.backend.kind}" backend needs {need[0].split(".")[0]}, which is not installed',
                    app.backend.pos, f"State in {app.backend.kind} is read and written with that SDK.",
                    f"Install it: pip install 'mlp[{need[1]}]'", f'in backend "{app.backend.kind}"')


def _importable(module: str) -> bool:
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def load_provider(config: ProviderConfig | str, app: App | None = None) -> Provider:
    """The provider of a block (or of a kind, as a state records it), for `app` when given:
    a plugin's factory is called as `factory(config, app=app)`."""
    kind = config if isinstance(config, str) else config.kind
    settings = {} if isinstance(config, str) else dict(config.settings)
    if kind == "local":
        from mlp.providers.local import LocalProvider

        return LocalProvider(settings)
    gone = missing(kind)
    if gone is not None:
        raise UsageError(gone.summary, gone.detail, gone.hint)
    factory = _entry_points()[kind].load()
    block = _bare(kind) if isinstance(config, str) else config
    return factory(block, app=app) if app is not None else factory(block)


def _bare(kind: str) -> ProviderConfig:
    from mlp.config.blocks import ProviderConfig
    from mlp.diagnostics import SourcePos

    return ProviderConfig(kind, SourcePos("<state>"), {})

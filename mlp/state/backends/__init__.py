"""The state backends, by the label of their `backend` block: local, s3, gcs, azurerm.

    open_backend(app_dir, "s3", {"bucket": "b", "prefix": "apps/iris"}) -> Backend

`local` is `mlp.state.local.LocalBackend`. The others are one `ObjectBackend` (remote.py)
over an `ObjectStore` (s3.py, gcs.py, azure.py), with a local cache folder for artifacts and
logs: `MLP_CACHE_DIR` when set (it may be shared by apps), else `<app>/.mlp/cache`.
Each cloud SDK is imported only when a backend of its kind is opened, and a missing one is
a StateError with the install command.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlp.errors import UsageError
from mlp.state.backend import Backend

if TYPE_CHECKING:  # the remote machinery (threads, hashing, transfers) loads only for a remote backend
    from mlp.state.backends.artifacts import ProgressHook
    from mlp.state.backends.objects import ObjectStore

KINDS = ("local", "s3", "gcs", "azurerm")
CACHE_ENV = "MLP_CACHE_DIR"


def open_backend(app_dir: Path, kind: str, settings: Mapping[str, Any], *,
                 environ: Mapping[str, str] | None = None, on_progress: ProgressHook | None = None) -> Backend:
    """The backend of an app in `app_dir`, from its backend block's label and settings."""
    env = os.environ if environ is None else environ
    if kind == "local":
        from mlp.state.local import LocalBackend

        return LocalBackend(app_dir.resolve() / str(settings.get("path") or ".mlp"))
    from mlp.state.backends.remote import ObjectBackend

    return ObjectBackend(open_store(kind, settings, env), cache_dir(app_dir, env), on_progress=on_progress)


def open_store(kind: str, settings: Mapping[str, Any], environ: Mapping[str, str]) -> ObjectStore:
    """The object store of a remote backend block."""
    if kind == "s3":
        from mlp.state.backends.s3 import S3Store

        return S3Store(_required(kind, settings, "bucket"), _text(settings, "prefix"),
                       _text(settings, "region") or "us-east-1", _text(settings, "endpoint"))
    if kind == "gcs":
        from mlp.state.backends.gcs import GcsStore

        return GcsStore(_required(kind, settings, "bucket"), _text(settings, "prefix"), _text(settings, "endpoint"),
                        environ=environ)
    if kind == "azurerm":
        from mlp.state.backends.azure import AzureStore

        return AzureStore(_required(kind, settings, "account"), _required(kind, settings, "container"),
                          _text(settings, "prefix"), _text(settings, "endpoint"), environ=environ)
    raise UsageError(f'There is no "{kind}" backend',
                     f"mlp keeps state in one of these backends: {', '.join(KINDS)}.",
                     'Use one of them, e.g. backend "s3" { bucket = "my-bucket" }, or remove the backend block.')


def cache_dir(app_dir: Path, environ: Mapping[str, str]) -> Path:
    """Where a remote backend caches artifacts and logs on this machine."""
    configured = environ.get(CACHE_ENV, "")
    return Path(configured).expanduser().resolve() if configured else app_dir.resolve() / ".mlp" / "cache"


def _text(settings: Mapping[str, Any], name: str) -> str:
    value = settings.get(name)
    return "" if value is None else str(value)


def _required(kind: str, settings: Mapping[str, Any], name: str) -> str:
    value = _text(settings, name)
    if not value:
        raise UsageError(f'The "{kind}" backend needs `{name}`',
                         f'The backend "{kind}" block sets no {name}.',
                         f'Add {name} = "..." to the backend "{kind}" block.')
    return value

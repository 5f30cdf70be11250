"""Opening a backend by its block: kinds, settings, a missing SDK, and what a local app never imports."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlp import api
from mlp.errors import StateError, UsageError
from mlp.state import LocalBackend
from mlp.state.backends import open_backend, open_store
from mlp.state.backends.manifest import safe_path
from mlp.state.backends.remote import ObjectBackend

ROOT = Path(__file__).resolve().parents[2]
SDKS = ("boto3", "botocore", "google.cloud.storage", "azure.storage.blob", "azure.identity")


def test_api_open_backend_opens_every_kind_without_a_request(tmp_path: Path) -> None:
    assert isinstance(api.open_backend(tmp_path, "local", {"path": ".state"}), LocalBackend)
    for kind, settings in [("s3", {"bucket": "b", "prefix": "apps/iris"}), ("gcs", {"bucket": "b"}),
                           ("azurerm", {"account": "acct", "container": "mlp"})]:
        backend = api.open_backend(tmp_path, kind, settings)
        assert isinstance(backend, ObjectBackend) and backend.name == kind
        assert backend.cache == tmp_path.resolve() / ".mlp" / "cache"


@pytest.mark.parametrize(("kind", "settings", "url", "removal"), [
    ("s3", {"bucket": "b", "prefix": "/apps/iris/", "region": "eu-west-1"}, "s3://b/apps/iris/state.json",
     "aws s3 rm s3://b/apps/iris/state.json"),
    ("s3", {"bucket": "b", "endpoint": "http://127.0.0.1:9000"}, "s3://b/state.json",
     "aws s3 rm --endpoint-url http://127.0.0.1:9000 s3://b/state.json"),
    ("gcs", {"bucket": "b", "prefix": "apps/iris"}, "gs://b/apps/iris/state.json", "gcloud storage rm gs://b/apps/iris/state.json"),
    ("azurerm", {"account": "acct", "container": "mlp", "prefix": "apps/iris"},
     "https://acct.blob.core.windows.net/mlp/apps/iris/state.json",
     "az storage blob lease break --account-name acct -c mlp -n apps/iris/state.json ; "
     "az storage blob delete --account-name acct -c mlp -n apps/iris/state.json"),
], ids=["s3", "s3-endpoint", "gcs", "azurerm"])
def test_objects_are_named_by_their_url(kind: str, settings: dict[str, str], url: str, removal: str) -> None:
    store = open_store(kind, settings, {})
    assert (store.url("state.json"), store.removal_command("state.json")) == (url, removal)


@pytest.mark.parametrize(("kind", "settings", "summary"), [
    ("s3", {"prefix": "p"}, 'The "s3" backend needs `bucket`'),
    ("azurerm", {"account": "a"}, 'The "azurerm" backend needs `container`'),
    ("ftp", {}, 'There is no "ftp" backend'),
])
def test_a_backend_block_that_cannot_work_is_a_usage_error(tmp_path: Path, kind: str, settings: dict[str, str],
                                                           summary: str) -> None:
    with pytest.raises(UsageError) as err:
        open_backend(tmp_path, kind, settings)
    assert err.value.summary == summary


@pytest.mark.parametrize(("kind", "settings", "module", "summary", "hint"), [
    ("s3", {"bucket": "b"}, "boto3", 'The "s3" backend needs the boto3 package', "pip install 'mlp[s3]'"),
    ("gcs", {"bucket": "b"}, "google.cloud.storage", 'The "gcs" backend needs the google-cloud-storage package',
     "pip install 'mlp[gcs]'"),
    ("azurerm", {"account": "a", "container": "c"}, "azure.storage.blob",
     'The "azurerm" backend needs the azure-storage-blob package', "pip install 'mlp[azure]'"),
])
def test_a_missing_sdk_names_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str,
                                                 settings: dict[str, str], module: str, summary: str, hint: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # what `import` of an absent package does
    with pytest.raises(StateError) as err:
        open_backend(tmp_path, kind, settings)
    assert (err.value.summary, err.value.hint) == (summary, hint)


def test_a_local_app_plans_without_importing_any_cloud_sdk(tmp_path: Path) -> None:
    app = tmp_path / "iris"
    shutil.copytree(ROOT / "examples" / "iris", app, ignore=shutil.ignore_patterns(".mlp"))
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from mlp import api
        api.plan(Path({str(app)!r}))
        import mlp.state.backends
        loaded = [m for m in {SDKS!r} if m in sys.modules]
        print("loaded:", loaded)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "loaded: []"


@pytest.mark.parametrize(("path", "ok"), [
    ("table/part-0.parquet", True), (".part-0.crc", True), ("a/b/c", True), ("_SUCCESS", True),
    ("../x", False), ("/etc/passwd", False), ("a/../b", False), ("a//b", False), ("a/./b", False),
    ("a/", False), ("", False), ("a\\b", False), ("a\x00b", False), (".", False),
])
def test_manifest_paths_stay_inside_the_artifact(path: str, ok: bool) -> None:
    if ok:
        assert safe_path(path) == path
    else:
        with pytest.raises(ValueError):
            safe_path(path)

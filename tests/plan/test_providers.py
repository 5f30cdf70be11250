"""Providers as plugins: `local` ships with the core, every other kind comes from an entry
point in the `mlp.providers` group, and a kind whose plugin is missing is refused at
validate with the install command, never run locally in its name."""

from __future__ import annotations

import functools
import sys
import textwrap
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from mlp import api
from mlp.errors import DiagnosticsError, UsageError
from mlp.providers import provider_for, registry
from mlp.providers.local import LocalProvider

from .conftest import write_app

BODY = """
source "s" {
  format = "csv"
  path   = "data/s.csv"
}

raw_column "x" { type = "FLOAT" }
raw_column "y" { type = "STRING" }

model "m" {
  type      = "classification"
  estimator = "linear"
  target    = raw_column.y
  features  = [raw_column.x]
}
"""
CSV = "x,y\n1.0,a\n2.0,b\n"


def _app(tmp_path: Path, provider: str) -> Path:
    return write_app(tmp_path / "app", {"app.hcl": provider + BODY, "data/s.csv": CSV})


@pytest.mark.parametrize(("block", "dist"), [
    ('provider "aws" {\n  region = "us-west-2"\n}\n', "mlp-aws"),
    ('provider "gcp" {\n  project = "p"\n  region  = "us-central1"\n}\n', "mlp-gcp"),
    ('provider "azure" {\n  location = "westeurope"\n}\n', "mlp-azure"),
    ('provider "kubernetes" {\n  namespace = "ml"\n}\n', "mlp-kubernetes"),
])
def test_a_provider_whose_plugin_is_missing_fails_validate_with_the_install_command(
        tmp_path: Path, block: str, dist: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_entry_points", dict)  # as if no plugin were installed here
    app = _app(tmp_path, block)
    with pytest.raises(DiagnosticsError) as err:
        api.validate(app)
    [d] = err.value.diagnostics.errors()
    kind = block.split('"')[1]
    assert (d.summary, str(d.pos), d.hint) == (f'The "{kind}" provider is not installed', "app.hcl:1:1",
                                               f"Install it: pip install {dist}")
    with pytest.raises(UsageError) as refused:  # and never run locally in its name
        provider_for(kind)
    assert refused.value.hint == f"Install it: pip install {dist}"


def test_local_ships_with_the_core_and_gets_its_settings(tmp_path: Path) -> None:
    app = _app(tmp_path, 'provider "local" {\n  spark_master = "local[1]"\n}\n')
    checked = api.validate(app).checked
    provider = provider_for(checked.app.provider)
    assert isinstance(provider, LocalProvider) and provider.settings["spark_master"] == "local[1]"
    assert provider.preview(api.plan(app).plan).changes == ()


PLUGIN = '''
from mlp.providers.local import LocalProvider


class Provider(LocalProvider):
    kind = "kubernetes"

    def __init__(self, config):
        super().__init__(config.settings)
        self.config = config

    def check(self, config, diags):
        if config.settings.get("namespace") == "kube-system":
            diags.error("mlp does not run apps in kube-system", config.pos, "", "Use another namespace.")
'''


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A real installed distribution (a dist-info folder on sys.path) declaring a
    `kubernetes` entry point, as `pip install` of a plugin leaves it."""
    site = tmp_path / "site"
    (site / "mlp_fake_k8s").mkdir(parents=True)
    (site / "mlp_fake_k8s" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    info = site / "mlp_fake_k8s-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlp-fake-k8s\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[mlp.providers]\nkubernetes = mlp_fake_k8s:Provider\n")
    monkeypatch.syspath_prepend(str(site))
    registry._entry_points.cache_clear()
    # only the fake plugin: the real mlp-kubernetes, installed beside it, must not win
    fake = {ep.name: ep for ep in entry_points(group=registry.GROUP) if ep.module == "mlp_fake_k8s"}
    monkeypatch.setattr(registry, "_entry_points", functools.lru_cache(maxsize=1)(lambda: fake))
    yield
    registry._entry_points.cache_clear()
    sys.modules.pop("mlp_fake_k8s", None)


def test_an_installed_plugin_is_found_through_its_entry_point_and_checks_its_block(
        tmp_path: Path, installed_plugin: None) -> None:
    app = _app(tmp_path, 'provider "kubernetes" {\n  namespace = "ml"\n}\n')
    checked = api.validate(app).checked
    provider = provider_for(checked.app.provider)
    assert type(provider).__module__ == "mlp_fake_k8s" and provider.kind == "kubernetes"
    bad = _app(tmp_path / "bad", 'provider "kubernetes" {\n  namespace = "kube-system"\n}\n')
    with pytest.raises(DiagnosticsError) as err:
        api.validate(bad)
    assert [(d.summary, str(d.pos)) for d in err.value.diagnostics.errors()] == [
        ("mlp does not run apps in kube-system", "app.hcl:1:1")]


def test_a_remote_backend_whose_sdk_is_missing_fails_validate(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.BACKEND_SDKS, "s3", ("mlp_no_such_sdk.client", "s3"))
    app = write_app(tmp_path / "app", {"app.hcl": 'provider "local" {}\n' + BODY, "data/s.csv": CSV,
                                       "backend.hcl": 'backend "s3" {\n  bucket = "b"\n}\n'})
    with pytest.raises(DiagnosticsError) as err:
        api.validate(app)
    assert [(d.summary, str(d.pos), d.hint) for d in err.value.diagnostics.errors()] == [
        ('The "s3" backend needs mlp_no_such_sdk, which is not installed', "backend.hcl:1:1",
         "Install it: pip install 'mlp[s3]'")]

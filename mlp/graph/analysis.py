"""From an app folder to an analysed app: blocks, graph, types and fingerprints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from mlp.config.blocks import App
from mlp.config.loader import load_app
from mlp.diagnostics import Diagnostics
from mlp.graph.address import Address
from mlp.graph.appcheck import check_files
from mlp.graph.dag import Graph, build_graph
from mlp.graph.datahash import HashCache
from mlp.graph.fingerprint import Fingerprint, fingerprints, hash_inputs
from mlp.graph.typecheck import Types, check_types
from mlp.providers.registry import check_settings_home


@dataclass(frozen=True)
class Checked:
    """An app that parsed and type-checked."""

    app: App
    graph: Graph
    types: Types


@dataclass(frozen=True)
class Analysis:
    """A checked app with the fingerprint of every built block.

    `data` and `code` hold the content hashes of the sources' data and of the custom
    code files: a plan file records them so that apply can refuse a stale plan.
    """

    checked: Checked
    fingerprints: Mapping[Address, Fingerprint]
    data: Mapping[Address, str]
    code: Mapping[Address, str]
    sample: int | None

    @property
    def app(self) -> App:
        return self.checked.app

    @property
    def graph(self) -> Graph:
        return self.checked.graph


def cache_dir(app_dir: Path) -> Path:
    return app_dir / ".mlp" / "cache"


def check(app_dir: Path, variables: Mapping[str, str] | None = None) -> tuple[Checked | None, Diagnostics]:
    app, diags = load_app(app_dir, variables, cache_dir(app_dir) / "parse")
    if app is None:
        return None, diags
    check_settings_home(app, diags)  # the provider's plugin and the backend's SDK are installed
    graph = build_graph(app.blocks, diags)
    if graph is None:
        return None, diags
    types = check_types(app, graph, diags)
    check_files(app, graph, diags)  # what the CSV headers and the custom code files already say
    if diags.has_errors():
        return None, diags
    return Checked(app, graph, types), diags


def analyse(app_dir: Path, variables: Mapping[str, str] | None = None,
            sample: int | None = None) -> tuple[Analysis | None, Diagnostics]:
    checked, diags = check(app_dir, variables)
    if checked is None:
        return None, diags
    cache = HashCache(cache_dir(app_dir) / "hashes.json")
    data, code = hash_inputs(checked.app, cache, diags)
    if diags.has_errors():
        return None, diags
    fps = fingerprints(checked.app, checked.graph, data, code, sample)
    return Analysis(checked, fps, data, code, sample), diags

"""`mlp render DIR`: every manifest of an app written out as YAML, like `helm template`.

    render(app_dir, out_dir) -> [out_dir/00-serviceaccount-iris-workload.yaml, ...]

One file per object, named by its kind's creation order, its kind and its name, so
`kubectl apply -f DIR` applies them in order and two renders of one app are byte-identical.
Files an earlier render wrote that this one does not (a removed block's) are removed; other
files in the folder are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from mlp.errors import DiagnosticsError, UsageError
from mlp_kubernetes.appspec import app_spec
from mlp_kubernetes.manifest import Manifest
from mlp_kubernetes.manifests import render_manifests
from mlp_kubernetes.settings import KubeSettings
from mlp_kubernetes.specs import AppSpec

HEADER = "# Rendered by mlp: "


def load_spec(app_dir: Path, variables: Mapping[str, str] | None = None) -> AppSpec:
    """The workloads of the app in `app_dir`, whose provider must be "kubernetes"."""
    from mlp.graph.analysis import analyse

    analysis, diags = analyse(app_dir, variables)
    if analysis is None:
        raise DiagnosticsError(diags)
    app = analysis.app
    if app.provider.kind != "kubernetes":
        raise UsageError(f'The app\'s provider is "{app.provider.kind}", not "kubernetes"',
                         f"Manifests are what the kubernetes provider applies; {app.provider.pos} says "
                         f'provider "{app.provider.kind}".', 'Use provider "kubernetes" { ... } to render manifests')
    settings = KubeSettings.from_settings(app.provider.settings)
    return app_spec(app, {a: f.value for a, f in analysis.fingerprints.items()}, settings)


def render(app_dir: Path, out_dir: Path) -> list[Path]:
    """Write every manifest of the app in `app_dir` into `out_dir`; the files written, in order."""
    return write_manifests(render_manifests(load_spec(app_dir)), out_dir)


class _Dumper(yaml.SafeDumper):
    """Block style for text of several lines (a ConfigMap's files), as a person writes it."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _text)


def to_yaml(manifest: Manifest) -> str:
    return yaml.dump(dict(manifest.doc), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


def file_name(manifest: Manifest) -> str:
    return f"{manifest.kind.order:02d}-{manifest.kind.value.lower()}-{manifest.name}.yaml"


def write_manifests(manifests: Iterable[Manifest], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for m in manifests:
        path = out_dir / file_name(m)
        path.write_text(f"{HEADER}{m.ref} of {m.owner.block}\n{to_yaml(m)}")
        written.append(path)
    for old in sorted(set(out_dir.glob("*.yaml")) - set(written)):
        with open(old, errors="replace") as fh:
            if fh.read(len(HEADER)) == HEADER:
                old.unlink()
    return written

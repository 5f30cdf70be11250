"""The serving bundle of a model: everything the prediction API needs, in one folder.

`bundle/bundle.json` holds the raw input schema and checks, the chain of transformed
columns (built-ins by name, custom code copied into `bundle/code/`, upstream models as
nested bundles), the aggregate values the model was trained with, the feature order, the
label vocabulary and the metrics; `bundle/saved_model` is the exported model. The format and
its writer belong to the runtime (`runtime.bundle`); this module gathers what goes in it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlp.config import blocks as B
from mlp.engine.context import RunContext
from mlp.graph.address import Address, Kind


def build_bundle(ctx: RunContext, addr: Address, out_dir: Path, labels: Sequence[Any] | None,
                 metrics: Mapping[str, Any]) -> Path:
    cfg = ctx.cfg(addr)
    assert isinstance(cfg, B.Model)
    from runtime.bundle import write_bundle

    needed = ctx.analysis.graph.closure(cfg.features)
    order = [a for a in ctx.analysis.graph.order if a in needed]
    raws = [ctx.cfg(a) for a in order if a.kind is Kind.RAW_COLUMN]
    steps: list[dict[str, Any]] = []
    aggs: dict[str, Any] = {}
    for a in order:
        tc = ctx.cfg(a)
        if not isinstance(tc, B.TransformedColumn):
            continue
        if tc.model is not None:
            rec = ctx.current(tc.model)
            assert rec is not None and rec.artifact is not None
            steps.append({"name": a.name, "model_bundle": str(ctx.store.local_path(rec.artifact) / "bundle")})
            continue
        custom = None
        if tc.custom is not None:
            code = ctx.analysis.app.blocks[tc.custom]
            assert isinstance(code, B.CustomCode)
            custom = str((ctx.analysis.app.dir / code.path).resolve())
        for ref in tc.inputs.values():
            if ref.kind is Kind.AGGREGATE:
                aggs[ref.name] = ctx.meta(ref).get("metrics", {}).get("value")
        steps.append({"name": a.name, "transformer": tc.transformer,
                      "inputs": {s: {"kind": "aggregate" if r.kind is Kind.AGGREGATE else "column", "name": r.name}
                                 for s, r in sorted(tc.inputs.items())},
                      "args": dict(ctx.analysis.fingerprints[a].settings.get("args", {})),
                      "custom_path": custom,
                      "output_type": ctx.analysis.checked.types.columns[a].type.value})
    spec = {"model": str(addr), "fingerprint": ctx.fp(addr), "type": cfg.type,
            "raw_columns": [{"name": r.name, "field": r.api_field, "type": r.type.value, "required": r.required,
                             "min": r.min, "max": r.max, "values": list(r.values) if r.values is not None else None}
                            for r in raws if isinstance(r, B.RawColumn)],
            "transforms": steps, "aggregates": aggs, "features": [f.name for f in cfg.features],
            "labels": list(labels) if labels is not None else None, "metrics": dict(metrics)}
    return write_bundle(out_dir / "bundle", spec, out_dir / "saved_model")

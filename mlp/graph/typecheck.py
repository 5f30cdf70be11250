"""Type checking of the whole graph before any job runs (SPEC §2).

Walks blocks in dependency order, giving each column its `ColumnInfo` and each
aggregate its value type, and reports every rule broken, with where and how to fix it.
"""

from __future__ import annotations

from typing import Any, Callable

from mlp.builtins.catalogue import AGGREGATORS, ESTIMATORS, TRANSFORMERS, Arg, Slot, SlotKind
from mlp.coltypes import ColumnInfo, ColumnType
from mlp.config import blocks as B
from mlp.config.values import coerce, did_you_mean, hcl
from mlp.diagnostics import Diagnostics
from mlp.graph.address import Address, Kind
from mlp.graph.dag import Graph

FEATURE_TYPES = {ColumnType.INT, ColumnType.FLOAT, ColumnType.STRING, ColumnType.BOOL,
                 ColumnType.FLOAT_LIST}


class Types:
    """Static types found by `check_types`: columns, aggregate values, block sources."""

    def __init__(self) -> None:
        self.columns: dict[Address, ColumnInfo] = {}
        self.aggregates: dict[Address, ColumnType] = {}
        self.sources: dict[Address, frozenset[Address]] = {}


def check_types(app: B.App, graph: Graph, diags: Diagnostics) -> Types:
    t = Types()
    for addr in graph.order:
        cfg = app.blocks[addr]
        srcs = _sources_of(graph.deps[addr], t.sources)
        t.sources[addr] = frozenset({addr}) if addr.kind is Kind.SOURCE else srcs
        ctx = addr.context
        if isinstance(cfg, B.RawColumn):
            t.columns[addr] = ColumnInfo(cfg.type)
            _check_raw(cfg, diags, ctx)
        elif isinstance(cfg, B.Aggregate):
            _check_aggregate(app, cfg, t, diags, ctx)
        elif isinstance(cfg, B.TransformedColumn):
            _check_transformed(app, cfg, t, diags, ctx)
        elif isinstance(cfg, B.Model):
            _check_model(app, cfg, t, diags, ctx)
        if addr.kind in (Kind.TRANSFORMED_COLUMN, Kind.MODEL, Kind.AGGREGATE) and len(srcs) > 1:
            names = ", ".join(str(s) for s in sorted(srcs))
            diags.error("Columns from different sources are mixed", cfg.pos,
                        f"{addr} uses columns of {names}; rows of different sources cannot be lined up.",
                        "Use columns of one source per block.", ctx)
        if isinstance(cfg, (B.Aggregate, B.TransformedColumn)):
            _check_model_inputs(app, cfg, diags, ctx)
    return t


_NO_SOURCES: frozenset[Address] = frozenset()


def _sources_of(deps: tuple[Address, ...], sources: dict[Address, frozenset[Address]]) -> frozenset[Address]:
    """The sources behind a block's inputs; most blocks have one input, and so its sources."""
    if len(deps) == 1:
        return sources.get(deps[0], _NO_SOURCES)
    return _NO_SOURCES.union(*(sources.get(d, _NO_SOURCES) for d in deps))


def _check_model_inputs(app: B.App, cfg: B.Aggregate | B.TransformedColumn, diags: Diagnostics, ctx: str) -> None:
    """A model's predictions feed models only: the data pass runs before any training."""
    for ref in cfg.inputs.values():
        up = app.blocks.get(ref)
        if isinstance(up, B.TransformedColumn) and up.model is not None:
            diags.error("A model column can only be a model feature", cfg.where("inputs"),
                        f"{ref} holds the predictions of {up.model}; aggregates and transformers run "
                        "before training, so they cannot use it.",
                        f"Use {ref} directly in a model's features.", ctx)


def _check_raw(cfg: B.RawColumn, diags: Diagnostics, ctx: str) -> None:
    if (cfg.min is not None or cfg.max is not None) and not cfg.type.numeric:
        diags.error("min/max on a non-numeric column", cfg.where("min" if cfg.min is not None else "max"),
                    f"{cfg.address} is {cfg.type.value}; min and max apply to INT and FLOAT.",
                    "Remove min/max, or use values = [...] for allowed values.", ctx)
    if cfg.min is not None and cfg.max is not None and cfg.min > cfg.max:
        diags.error("min is greater than max", cfg.where("min"),
                    f"min = {cfg.min} and max = {cfg.max}: no value can pass.", "Swap them.", ctx)


def _check_slots(cfg: B.Aggregate | B.TransformedColumn, slots: tuple[Slot, ...], what: str,
                 t: Types, diags: Diagnostics, ctx: str) -> None:
    pos = cfg.where("inputs") if "inputs" in cfg.attr_pos else cfg.where("input")
    names = [s.name for s in slots]
    for given in sorted(set(cfg.inputs) - set(names)):
        diags.error(f'Unknown input "{given}" for {what}', pos,
                    f"{what} takes: " + ", ".join(names) + ".", did_you_mean(given, names), ctx)
    for slot in slots:
        ref = cfg.inputs.get(slot.name)
        if ref is None:
            if slot.required:
                how = "input = KIND.NAME" if slot.name == "column" and isinstance(cfg, B.Aggregate) else \
                    f"inputs = {{ {slot.name} = KIND.NAME }}"
                diags.error(f'Missing input "{slot.name}" for {what}', pos,
                            f"{what} needs a {slot.kind.value} as \"{slot.name}\".", f"Add: {how}", ctx)
            continue
        _check_slot(slot, ref, what, t, diags, ctx, pos)


def _check_slot(slot: Slot, ref: Address, what: str, t: Types, diags: Diagnostics, ctx: str,
                pos: Any) -> None:
    if slot.kind is SlotKind.AGGREGATE:
        vt = t.aggregates.get(ref)
        if ref.kind is not Kind.AGGREGATE:
            diags.error(f'Input "{slot.name}" of {what} must be an aggregate', pos,
                        f"{ref} is a {ref.kind.value}.", "Point it at an aggregate.NAME.", ctx)
        elif vt is not None and vt not in slot.types and not (vt.numeric and slot.types & {ColumnType.FLOAT}):
            diags.error(f'Wrong aggregate type for input "{slot.name}" of {what}', pos,
                        f"{ref} gives {vt.value}; {what} needs " + _types(slot.types) + ".", "", ctx)
        return
    info = t.columns.get(ref)
    if ref.kind is Kind.AGGREGATE:
        diags.error(f'Input "{slot.name}" of {what} must be a column', pos,
                    f"{ref} is an aggregate.", "Point it at a raw_column or transformed_column.", ctx)
        return
    if info is None:
        return
    if slot.numeric_only and info.categorical:
        diags.error(f"Numeric transform on a categorical column: {what} of {ref}", pos,
                    f"{ref} is categorical (category ids); {what} needs a measured quantity.",
                    "Use the raw numeric column instead, or one_hot for categories.", ctx)
    elif info.type not in slot.types:
        diags.error(f"Wrong column type for {what}", pos,
                    f'Input "{slot.name}" is {ref} of type {info.describe()}; {what} takes '
                    + _types(slot.types) + ".", "Feed it a column of a matching type.", ctx)


def _types(types: frozenset[ColumnType]) -> str:
    return " or ".join(sorted(x.value for x in types))


def _check_args(cfg: B.Aggregate | B.TransformedColumn, args: tuple[Arg, ...], what: str,
                diags: Diagnostics, ctx: str) -> None:
    pos = cfg.where("args")
    names = [a.name for a in args]
    for given in sorted(set(cfg.args) - set(names)):
        diags.error(f'Unknown argument "{given}" for {what}', pos,
                    f"{what} takes " + (", ".join(names) if names else "no arguments") + ".",
                    did_you_mean(given, names), ctx)
    for a in args:
        v = cfg.args.get(a.name)
        if v is None:
            if a.required:
                diags.error(f'Missing argument "{a.name}" for {what}', pos, "", f"Add: args = {{ {a.name} = ... }}", ctx)
            continue
        check = _ARG_TYPES.get(a.type)
        if check is not None and not check(v):
            diags.error(f'Wrong type for argument "{a.name}" of {what}', pos,
                        f"It must be {a.type}, not {type(v).__name__}.", "", ctx)


_ARG_TYPES: dict[str, Callable[[Any], bool]] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str), "bool": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, list),
}


def _check_aggregate(app: B.App, cfg: B.Aggregate, t: Types, diags: Diagnostics, ctx: str) -> None:
    if cfg.custom:
        code = app.blocks.get(cfg.custom)
        if isinstance(code, B.CustomCode) and code.output_type:
            t.aggregates[cfg.address] = code.output_type
        if not cfg.inputs:
            diags.error("Aggregate without inputs", cfg.pos, "A custom aggregator needs columns.",
                        "Add: input = raw_column.NAME or inputs = { ... }", ctx)
        return
    spec = AGGREGATORS.get(cfg.aggregator)
    if spec is None:
        diags.error(f'Unknown aggregator "{cfg.aggregator}"', cfg.where("aggregator"),
                    "Built-in aggregators: " + ", ".join(sorted(AGGREGATORS)) + ".",
                    did_you_mean(cfg.aggregator, sorted(AGGREGATORS)) or
                    "For your own code, declare an aggregator block and use aggregator.NAME.", ctx)
        return
    t.aggregates[cfg.address] = spec.output
    what = f'aggregator "{spec.name}"'
    _check_slots(cfg, spec.slots, what, t, diags, ctx)
    _check_args(cfg, spec.args, what, diags, ctx)


def _check_transformed(app: B.App, cfg: B.TransformedColumn, t: Types, diags: Diagnostics, ctx: str) -> None:
    if cfg.model:
        m = app.blocks.get(cfg.model)
        if isinstance(m, B.Model):
            cls = m.type == "classification"
            t.columns[cfg.address] = ColumnInfo(ColumnType.INT if cls else ColumnType.FLOAT, cls)
        if cfg.transformer or cfg.custom or cfg.inputs:
            diags.error("A model column takes no transformer or inputs", cfg.where("model"),
                        "With model = model.NAME the column is that model's prediction.",
                        "Remove transformer/inputs, or remove model.", ctx)
        return
    if cfg.custom:
        code = app.blocks.get(cfg.custom)
        if isinstance(code, B.CustomCode) and code.output_type:
            t.columns[cfg.address] = ColumnInfo(code.output_type, code.categorical)
        return
    if not cfg.transformer:
        diags.error('Missing required attribute "transformer"', cfg.pos,
                    "A transformed column names a transformer, or a model.",
                    'Add: transformer = "normalize" (or another built-in), or model = model.NAME', ctx)
        return
    spec = TRANSFORMERS.get(cfg.transformer)
    if spec is None:
        diags.error(f'Unknown transformer "{cfg.transformer}"', cfg.where("transformer"),
                    "Built-in transformers: " + ", ".join(sorted(TRANSFORMERS)) + ".",
                    did_you_mean(cfg.transformer, sorted(TRANSFORMERS)) or
                    "For your own code, declare a transformer block and use transformer.NAME.", ctx)
        return
    what = f'transformer "{spec.name}"'
    _check_slots(cfg, spec.slots, what, t, diags, ctx)
    _check_args(cfg, spec.args, what, diags, ctx)
    _check_transform_extras(cfg, spec.name, diags, ctx)
    col_ref = cfg.inputs.get("column")
    col = t.columns.get(col_ref) if col_ref else None
    out = spec.output or (col.type if col else ColumnType.FLOAT)
    t.columns[cfg.address] = ColumnInfo(out, spec.categorical)


def _check_transform_extras(cfg: B.TransformedColumn, name: str, diags: Diagnostics, ctx: str) -> None:
    if name == "bucketize" and "boundaries" not in cfg.inputs and "boundaries" not in cfg.args:
        diags.error('bucketize needs boundaries', cfg.pos, "Give them as an aggregate or as args.",
                    "Add: inputs = { ..., boundaries = aggregate.NAME } or args = { boundaries = [..] }", ctx)
    if name == "fill_missing" and "value" not in cfg.inputs and "value" not in cfg.args:
        diags.error("fill_missing needs a value", cfg.pos, "Give it as an aggregate or a constant.",
                    "Add: inputs = { ..., value = aggregate.NAME } or args = { value = 0 }", ctx)
    if name == "one_hot" and "vocabulary" not in cfg.inputs and not cfg.args.get("size"):
        diags.error("one_hot needs a vocabulary or a size", cfg.pos,
                    "one_hot maps a column onto a vocabulary aggregate or onto `size` category ids.",
                    "Add: inputs = { ..., vocabulary = aggregate.NAME } or args = { size = N }", ctx)


def _check_model(app: B.App, cfg: B.Model, t: Types, diags: Diagnostics, ctx: str) -> None:
    if not cfg.features:
        diags.error("Model without features", cfg.where("features"),
                    f"{cfg.address} has an empty features list.",
                    "List the columns it learns from: features = [raw_column.a, ...]", ctx)
    if not cfg.custom and cfg.estimator not in ESTIMATORS:
        diags.error(f'Unknown estimator "{cfg.estimator}"', cfg.where("estimator"),
                    "Built-in estimators: " + ", ".join(sorted(ESTIMATORS)) + ".",
                    did_you_mean(cfg.estimator, sorted(ESTIMATORS)) or
                    "For your own code, declare an estimator block and use estimator.NAME.", ctx)
    target = t.columns.get(cfg.target) if cfg.target else None
    if target is not None:
        _check_target(cfg, target, diags, ctx)
    if cfg.target in cfg.features:
        diags.error("The target is also a feature", cfg.where("features"),
                    f"{cfg.target} is both; the model would learn the answer from itself.",
                    f"Remove {cfg.target} from features.", ctx)
    for f in cfg.features:
        info = t.columns.get(f)
        if info is not None and info.type not in FEATURE_TYPES:
            diags.error("Unsupported feature type", cfg.where("features"),
                        f"{f} is {info.describe()}; features are INT, FLOAT, STRING, BOOL or FLOAT_LIST.",
                        "Transform it first (e.g. one_hot).", ctx)
    _check_hparams(cfg, diags, ctx)


def _check_target(cfg: B.Model, target: ColumnInfo, diags: Diagnostics, ctx: str) -> None:
    if cfg.type == "classification" and target.type is ColumnType.FLOAT:
        diags.error("Classification target is FLOAT", cfg.where("target"),
                    f"{cfg.target} holds continuous values; a classifier needs classes.",
                    'Use type = "regression", or a STRING/INT/BOOL target (bucketize it).', ctx)
    elif cfg.type == "regression" and target.type in (ColumnType.STRING, ColumnType.BOOL):
        diags.error(f"Regression target is {target.type.value}", cfg.where("target"),
                    f"{cfg.target} is not a number; a regression predicts numbers.",
                    'Use type = "classification", or a numeric target.', ctx)
    elif target.type.is_list:
        diags.error("List-valued target", cfg.where("target"), f"{cfg.target} is {target.type.value}.",
                    "Use a scalar column as the target.", ctx)


def _check_hparams(cfg: B.Model, diags: Diagnostics, ctx: str) -> None:
    """A built-in estimator's hparams, each against its declared `Field`; a custom one takes any."""
    spec = None if cfg.custom else ESTIMATORS.get(cfg.estimator)
    if spec is None:
        return
    pos = cfg.where("hparams")
    names = sorted(spec.params)
    takes = f'estimator "{spec.name}" takes ' + (", ".join(names) if names else "no hparams") + "."
    for name, value in sorted(cfg.hparams.items()):
        f = spec.params.get(name)
        if f is None:
            diags.error(f'Unknown hparam "{name}" for estimator "{spec.name}"', pos, takes,
                        did_you_mean(name, names) or f'Remove "{name}" from hparams.', ctx)
        elif value is None:
            diags.error(f'Wrong type for "hparams.{name}"', pos, f'"hparams.{name}" is null.',
                        f"Remove it to use the default, {name} = {hcl(f.default)}", ctx)
        else:
            coerce(f"hparams.{name}", f, value, pos, diags, ctx)

"""One message per cause, and a user's mistake is never an "Internal error".

`mlp apply` runs in-process (typer's CliRunner on the real CLI) over tiny apps, on the
shared Spark session: bad data is reported once, on its source, and the source's other
blocks are skipped because of it; a broken custom transformer or aggregator fails only its
own block (the user's file:line and exception once, no traceback), what depends on it is
skipped, and everything else is built; an OSError on a path names the path and the fix.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from mlp.cli.main import app as cli
from mlp.errors import os_error_help
from mlp.graph.address import Address
from mlp.plan.model import Action

pytestmark = pytest.mark.slow

APP = """\
provider "local" {
  spark_master = "local[2]"
  parallelism  = 1
}

source "d" {
  format  = "csv"
  path    = "data/d.csv"
  missing = "MISSING"
  invalid = "INVALID"
}

raw_column "a" {
  type = "FLOAT"
}
raw_column "b" {
  type = "FLOAT"
}
raw_column "c" {
  type   = "STRING"
  values = ["x", "y"]
}

aggregate "a_mean" {
  aggregator = "mean"
  input      = raw_column.a
}
aggregate "a_sd" {
  aggregator = "stddev"
  input      = raw_column.a
}
aggregator "spread" {
  path        = "code/spread.py"
  output_type = "FLOAT"
}
aggregate "b_spread" {
  aggregator = aggregator.spread
  input      = raw_column.b
}

transformed_column "a_norm" {
  transformer = "normalize"
  inputs      = {
    column = raw_column.a
    mean   = aggregate.a_mean
    stddev = aggregate.a_sd
  }
}
transformed_column "b_scaled" {
  transformer = "normalize"
  inputs      = {
    column = raw_column.b
    mean   = aggregate.a_mean
    stddev = aggregate.b_spread
  }
}
transformer "ratio" {
  path        = "code/ratio.py"
  output_type = "FLOAT"
}
transformed_column "ab_ratio" {
  transformer = transformer.ratio
  inputs      = {
    num = raw_column.a
    den = raw_column.b
  }
}
transformed_column "ratio_clip" {
  transformer = "clip"
  inputs      = { column = transformed_column.ab_ratio }
  args        = { min = 0, max = 5 }
}
transformed_column "b_clip" {
  transformer = "clip"
  inputs      = { column = raw_column.b }
  args        = { max = 4 }
}
"""

ROWS = ["a,b,c,e", "1.0,2.0,x,", "2.0,1.5,y,", "3.5,2.5,x,", "4.0,3.0,y,", "5.5,1.0,x,", "6.0,4.5,y,"]

RATIO = '''"""The ratio of two columns."""


def transform(inputs, args):
    return inputs["num"] / inputs["den"]
'''

SPREAD = '''"""The spread of a column: its max minus its min."""


def aggregate_spark(df, inputs, args):
    row = df.agg({inputs["column"]: "max"}).collect()[0]
    low = df.agg({inputs["column"]: "min"}).collect()[0]
    return float(row[0] - low[0])
'''

BLOCKS = ("source.d", "raw_column.a", "raw_column.b", "raw_column.c", "aggregate.a_mean", "aggregate.a_sd",
          "aggregate.b_spread", "transformed_column.a_norm", "transformed_column.b_scaled",
          "transformed_column.ab_ratio", "transformed_column.ratio_clip", "transformed_column.b_clip")


def write_app(root: Path, *, missing: str = "drop", invalid: str = "fail", rows: list[str] | None = None,
              extra: str = "") -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "code").mkdir(exist_ok=True)
    (root / "app.hcl").write_text(APP.replace("MISSING", missing).replace("INVALID", invalid) + extra)
    (root / "data" / "d.csv").write_text("\n".join(rows or ROWS) + "\n")
    (root / "code" / "ratio.py").write_text(RATIO)
    (root / "code" / "spread.py").write_text(SPREAD)
    return root


def mlp(*args: str) -> tuple[int, str]:
    """Run the CLI in this process: (exit code, stdout and stderr as the terminal shows them)."""
    res = CliRunner().invoke(cli, ["--no-color", *args], env={"MLP_IN_AUTOMATION": "1", "NO_COLOR": "1"})
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, res.output


def apply(app: Path) -> tuple[int, str]:
    return mlp("-C", str(app), "apply", "--auto-approve")


def assert_clean(output: str) -> None:
    for never in ("Traceback", "Internal error", "bug in mlp", "runtime/", "py4j", "PythonException"):
        assert never not in output, output


# -- bad data: once, on the source --------------------------------------------------------------


@dataclass(frozen=True)
class BadData:
    missing: str
    invalid: str
    rows: list[str]
    extra: str
    headline: str
    column_line: str


BAD_DATA = [
    pytest.param(BadData("drop", "fail", [*ROWS, "7.0,1.0,z,"], "",
                         'source "d": rows break the raw column rules',
                         '  raw_column "c" (column "c"): 1 not in values'), id="invalid-value"),
    pytest.param(BadData("fail", "fail", [*ROWS, ",1.0,x,"], "",
                         'source "d": rows break the raw column rules',
                         '  raw_column "a" (column "a"): 1 null (required)'), id="missing-fail"),
    pytest.param(BadData("drop", "fail", ROWS, 'raw_column "e" {\n  type = "FLOAT"\n}\n',
                         'source "d": every row was dropped',
                         "  raw_column.e: 6 of 6 rows are null"), id="all-null-column"),
]


@pytest.mark.parametrize("case", BAD_DATA)
def test_bad_data_is_reported_once_on_the_source(spark: Any, tmp_path: Path, case: BadData) -> None:
    app = write_app(tmp_path / "app", missing=case.missing, invalid=case.invalid, rows=case.rows, extra=case.extra)
    code, out = apply(app)
    assert code == 1
    assert_clean(out)
    assert out.count(case.headline) == 1, out
    assert out.count(case.column_line) == 1, out
    assert out.count("\nError: ") == 1 and "Error: source.d failed\n" in out, out
    others = [b for b in BLOCKS if b != "source.d"] + (["raw_column.e"] if case.extra else [])
    for block in others:
        assert f"  {block}: skipped  because source.d failed\n" in out, out
    assert f"\n{len(others)} blocks skipped: source.d failed (" in out, out
    assert f", 1 failed, {len(others)} skipped in " in out, out


def test_dropped_rows_are_counted_per_column(spark: Any, tmp_path: Path) -> None:
    rows = [*ROWS, ",1.0,x,", "7.0,1.0,z,"]
    app = write_app(tmp_path / "app", invalid="drop", rows=rows)
    code, out = apply(app)
    assert code == 0, out
    assert "  source.d: done" in out
    assert "6 rows, 3 raw columns (2 dropped: raw_column.a: 1 null (required); raw_column.c: 1 not in values)\n" in out, out


# -- broken custom code: its block only --------------------------------------------------------


@dataclass(frozen=True)
class Broken:
    file: str
    code: str
    block: str
    message: str
    skipped: tuple[str, ...]
    trace: tuple[str, ...] = ()        # in the block's log: the user's own traceback
    on_workers: bool = False           # no driver sample run: the error comes from a Python worker
    rebuilt: tuple[str, ...] = field(default=("transformed_column.b_clip",))


# The key is computed, so validate cannot see it (a literal inputs["numerator"] is an error
# at validate since the code's reads are checked: tests/plan/test_appcheck.py); apply meets it.
KEYERROR = RATIO.replace('inputs["num"]', 'inputs["num" + "erator"]')
BROKEN = [
    pytest.param(Broken("ratio.py", KEYERROR, "transformed_column.ab_ratio", "code/ratio.py:5: KeyError: 'numerator'",
                        ("transformed_column.ratio_clip",),
                        ('code/ratio.py", line 5, in transform', "KeyError: 'numerator'")), id="transformer"),
    pytest.param(Broken("ratio.py", KEYERROR, "transformed_column.ab_ratio", "code/ratio.py:5: KeyError: 'numerator'",
                        ("transformed_column.ratio_clip",),
                        ('code/ratio.py", line 5, in transform', "KeyError: 'numerator'"), on_workers=True),
                 id="transformer-on-workers"),
    pytest.param(Broken("ratio.py", RATIO.replace('inputs["num"] / inputs["den"]', 'inputs["num"].head(1)'),
                        "transformed_column.ab_ratio",
                        "code/ratio.py:4: ValueError: transform returned 1 values for 6 rows; "
                        "it must return one per row", ("transformed_column.ratio_clip",)), id="transformer-length"),
    pytest.param(Broken("ratio.py", RATIO.replace('inputs["num"] / inputs["den"]', 'inputs["num"].head(1)'),
                        "transformed_column.ab_ratio",
                        "code/ratio.py:4: ValueError: transform returned 1 values for ",  # rows of a batch
                        ("transformed_column.ratio_clip",), on_workers=True),
                 id="transformer-length-on-workers"),
    pytest.param(Broken("spread.py", SPREAD.replace("return float(", "return 1 / 0 + float("),
                        "aggregate.b_spread", "code/spread.py:7: ZeroDivisionError: division by zero",
                        ("transformed_column.b_scaled",),
                        ('code/spread.py", line 7, in aggregate_spark', "ZeroDivisionError")), id="aggregator"),
]


@pytest.fixture(scope="module")
def built(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app, applied once with working code."""
    app = write_app(tmp_path_factory.mktemp("built") / "app")
    code, out = apply(app)
    assert code == 0, out
    return app


@pytest.fixture
def copy_of_built(built: Path, tmp_path: Path) -> Iterator[Path]:
    app = tmp_path / "app"
    shutil.copytree(built, app, ignore=shutil.ignore_patterns("state.lock*"))
    yield app


@pytest.mark.parametrize("case", BROKEN)
def test_broken_custom_code_fails_its_block_only(copy_of_built: Path, case: Broken,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    app = copy_of_built
    if case.on_workers:
        monkeypatch.setattr("runtime.transforms.PRECHECK_ROWS", 0)
    (app / "code" / case.file).write_text(case.code)
    hcl = app / "app.hcl"
    hcl.write_text(hcl.read_text().replace("args        = { max = 4 }", "args        = { max = 3 }"))
    code, out = apply(app)
    assert code == 1
    assert_clean(out)
    assert out.count(case.message) == 1, out
    assert out.count("\nError: ") == 1 and f"Error: {case.block} failed\n" in out, out
    assert out.count(": failed") == 1 and f"  {case.block}: failed" in out, out
    for block in case.skipped:
        assert f"  {block}: skipped  because {case.block} failed\n" in out, out
    for block in case.rebuilt:  # independent work of the same unit is done
        assert f"  {block}: done" in out, out
    unchanged = set(BLOCKS) - {case.block, *case.skipped, *case.rebuilt}
    for block in unchanged:  # nothing to do: not mentioned at all
        assert f"  {block}: " not in out, out
    log = (app / ".mlp" / "logs" / f"{case.block}.log").read_text()
    for text in case.trace:
        assert text in log, log


def test_fixed_code_picks_up_where_it_stopped(copy_of_built: Path) -> None:
    app = copy_of_built
    ratio = app / "code" / "ratio.py"
    ratio.write_text(KEYERROR)
    assert apply(app)[0] == 1
    ratio.write_text(RATIO.replace('inputs["num"] / inputs["den"]', '(inputs["num"] / inputs["den"]) * 1.0'))
    code, out = apply(app)
    assert code == 0, out
    assert "  transformed_column.ab_ratio: done" in out and "  transformed_column.ratio_clip: " in out, out


# -- an OSError is the user's to fix -------------------------------------------------------------


@dataclass(frozen=True)
class PathCase:
    args: tuple[str, ...]
    block: str        # what stands in the way: a file, relative to the app folder ("" for none)
    backend: str      # a backend block to add
    expected: tuple[str, ...]


PATHS = [
    pytest.param(PathCase(("predict", "d", "--file", "{app}/missing.json"), "", "",
                          ("Cannot read the instances file {app}/missing.json",
                           "{app}/missing.json: No such file or directory", "or pass the instances with --data")),
                 id="predict-missing-file"),
    pytest.param(PathCase(("apply", "--auto-approve"), ".mlp", "",
                          ("Cannot write the state lock", "{app}/.mlp is a file where a folder is expected",
                           "mv {app}/.mlp {app}/.mlp.bak")), id="apply-mlp-is-a-file"),
    pytest.param(PathCase(("plan",), ".mlp", "", ("{app}/.mlp",)), id="plan-mlp-is-a-file"),
    pytest.param(PathCase(("apply", "--auto-approve"), "blocker", 'backend "local" {\n  path = "blocker/state"\n}\n',
                          ("Cannot write the state lock", "{app}/blocker is a file where a folder is expected")),
                 id="apply-backend-under-a-file"),
    pytest.param(PathCase(("apply", "--auto-approve"), ".mlp/logs", "",
                          ("Cannot write the logs", "{app}/.mlp/logs is a file where a folder is expected")),
                 id="apply-logs-is-a-file"),
]


@pytest.mark.parametrize("case", PATHS)
def test_os_errors_name_the_path_and_the_fix(tmp_path: Path, case: PathCase) -> None:
    app = write_app(tmp_path / "app", extra=case.backend)
    if case.block:
        (app / case.block).parent.mkdir(parents=True, exist_ok=True)
        (app / case.block).write_text("not a folder\n")
    code, out = mlp("-C", str(app), *[a.format(app=app) for a in case.args])
    assert code == 1
    assert_clean(out)
    for text in case.expected:
        assert text.format(app=app) in out, out


@pytest.mark.parametrize(("error", "detail", "fix"), [
    pytest.param(OSError(errno.ENOSPC, "No space left on device", "/d/x"), "/d/x: No space left on device",
                 "free some space on the disk that holds /d/x", id="disk-full"),
    pytest.param(OSError(errno.EROFS, "Read-only file system", "/d/x"), "/d/x: Read-only file system",
                 "/d/x is on a read-only file system: use a writable folder", id="read-only"),
    pytest.param(PermissionError(errno.EACCES, "Permission denied", "/d/x"), "/d/x: Permission denied",
                 "give your user write access to /d/x (e.g. chmod u+rwX /d/x), or use a folder you own",
                 id="permission"),
    pytest.param(IsADirectoryError(errno.EISDIR, "Is a directory", "/d/x"), "/d/x: Is a directory",
                 "/d/x is a folder where a file is expected: move it aside (mv /d/x /d/x.bak)", id="is-a-folder"),
])
def test_os_error_help(error: OSError, detail: str, fix: str) -> None:
    assert os_error_help(error) == (detail, fix)


def test_an_os_error_anywhere_is_not_an_internal_error(capsys: pytest.CaptureFixture[str]) -> None:
    from mlp.cli.output import Out, handle_errors

    with pytest.raises(SystemExit) as e, handle_errors(Out(no_color=True)):
        raise PermissionError(errno.EACCES, "Permission denied", "/d/state.json")
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert err.splitlines()[:3] == ["Error: Cannot use /d/state.json", "  /d/state.json: Permission denied",
                                    "  Fix: give your user write access to /d/state.json (e.g. chmod u+rwX "
                                    "/d/state.json), or use a folder you own"]


# -- the summary ---------------------------------------------------------------------------------


def test_summary_groups_skipped_blocks_by_cause(capsys: pytest.CaptureFixture[str]) -> None:
    from mlp.cli.output import Out
    from mlp.cli.summary import print_apply_summary

    changes = [SimpleNamespace(address=Address.parse(a), action=Action.CREATE) for a in BLOCKS]
    res = SimpleNamespace(plan=SimpleNamespace(has_changes=True, changes=changes), built=BLOCKS[:8], reused=(), copied=(),
                          destroyed=(), seconds=1.0, carried=(), models=(), endpoints=(),
                          failed={"transformed_column.ab_ratio": "code/ratio.py:5: KeyError: 'numerator'"},
                          skipped={"transformed_column.ratio_clip": "transformed_column.ab_ratio"})
    print_apply_summary(Out(no_color=True), res)
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "", "Error: transformed_column.ab_ratio failed", "  code/ratio.py:5: KeyError: 'numerator'", "",
        "3 blocks skipped: transformed_column.ab_ratio failed (transformed_column.b_clip, "
        "transformed_column.b_scaled, transformed_column.ratio_clip)",
        "Blocks that finished are kept in the state; run `mlp apply` again to continue."]
    assert captured.out == "\nApply failed. 8 built, 0 reused, 0 destroyed, 1 failed, 3 skipped in 1.0s.\n"


# -- the scheduler: what a failure skips, without Spark -------------------------------------------


class FakeContext:
    """What the scheduler reads of a RunContext: actions, the graph, records, failures, hooks."""

    def __init__(self, deps: dict[str, tuple[str, ...]], tmp: Path) -> None:
        from mlp.engine.events import RecordingHooks

        self.analysis = SimpleNamespace(graph=SimpleNamespace(
            deps={Address.parse(a): tuple(Address.parse(d) for d in ds) for a, ds in deps.items()}),
            app=SimpleNamespace(dir=tmp))
        self.parallelism = 2
        self.hooks = RecordingHooks()
        self.records: dict[str, object] = {}
        self.failed: dict[str, str] = {}
        self.logs: list[tuple[str, str]] = []

    def action(self, addr: Address) -> Action:
        return Action.CREATE

    def log(self, addr: Address | str, line: str, echo: bool = True) -> None:
        self.logs.append((str(addr), line))

    def fail(self, addr: Address, message: str, seconds: float = 0.0) -> None:
        self.failed[str(addr)] = message


GRAPH = {"source.d": (), "raw_column.a": ("source.d",), "transformed_column.t1": ("raw_column.a",),
         "transformed_column.t2": ("raw_column.a",), "transformed_column.t1_clip": ("transformed_column.t1",),
         "model.m1": ("transformed_column.t1",), "model.m2": ("transformed_column.t2",), "api.a1": ("model.m1",)}


def scheduled(tmp: Path, run: Any) -> tuple[FakeContext, Any]:
    from mlp.engine.scheduler import run_units
    from mlp.engine.units import Unit

    ctx = FakeContext(GRAPH, tmp)
    data = tuple(Address.parse(a) for a in GRAPH if not a.startswith(("model.", "api.")))
    units = [Unit("data:source.d", "data", data, ()),
             Unit("model:model.m1", "model", (Address.parse("model.m1"),), ("data:source.d",)),
             Unit("model:model.m2", "model", (Address.parse("model.m2"),), ("data:source.d",)),
             Unit("api:api.a1", "api", (Address.parse("api.a1"),), ("model:model.m1",))]
    return ctx, run_units(ctx, units, run)  # type: ignore[arg-type]


def test_a_failed_block_skips_only_what_needs_it(tmp_path: Path) -> None:
    from mlp.engine.scheduler import fail_block
    from mlp.errors import UserCodeError

    def run(ctx: Any, unit: Any) -> None:
        for a in unit.blocks:
            if str(a) == "transformed_column.t1":
                fail_block(ctx, a, UserCodeError(str(a), "code/t.py", 3, "KeyError", "'x'"))
            elif str(a) != "transformed_column.t1_clip":  # the data unit leaves what needs t1 undone
                ctx.records[str(a)] = object()

    ctx, outcome = scheduled(tmp_path, run)
    assert ctx.failed == {"transformed_column.t1": "code/t.py:3: KeyError: 'x'\n"
                          "Fix: edit code/t.py; its traceback is in `mlp logs transformed_column.t1`"}
    assert outcome.skipped_blocks == {"transformed_column.t1_clip": "transformed_column.t1",
                                      "model.m1": "transformed_column.t1", "api.a1": "transformed_column.t1"}
    assert outcome.skipped == {"model:model.m1": "data:source.d", "api:api.a1": "data:source.d"}
    assert "model.m2" in ctx.records  # its input was built: it ran
    skipped = {e.address: e.cause for e in ctx.hooks.events if e.cause}
    assert skipped == outcome.skipped_blocks


def test_an_unexpected_error_is_reported_once_on_the_first_block_left(tmp_path: Path) -> None:
    def run(ctx: Any, unit: Any) -> None:
        if unit.kind == "data":
            ctx.records["source.d"] = object()
            raise RuntimeError("boom\n\tat org.apache.Spark(Spark.java:1)\nsecond line")
        ctx.records[str(unit.blocks[0])] = object()

    ctx, outcome = scheduled(tmp_path, run)
    assert list(ctx.failed) == ["raw_column.a"]
    assert ctx.failed["raw_column.a"] == ("RuntimeError: boom\nsecond line\n"
                                          "The full error is in the log: mlp logs raw_column.a")
    assert set(outcome.skipped_blocks) == set(GRAPH) - {"source.d", "raw_column.a"}
    assert set(outcome.skipped_blocks.values()) == {"raw_column.a"}
    assert any(line.startswith("Traceback") for a, line in ctx.logs if a == "raw_column.a")


def test_a_backend_that_cannot_be_written_stops_the_apply(tmp_path: Path) -> None:
    from mlp.errors import StateError

    started: list[str] = []

    def run(ctx: Any, unit: Any) -> None:
        started.append(unit.name)
        raise StateError("Cannot write the logs", "x", "y")

    with pytest.raises(StateError, match="Cannot write the logs"):
        scheduled(tmp_path, run)
    assert started == ["data:source.d"]

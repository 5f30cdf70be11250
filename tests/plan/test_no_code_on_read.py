"""Nothing mlp reads from an app folder or its backend runs code, hangs, or crashes it.

mlp keeps caches in the app folder (`.mlp/cache/`), and a pull request can ship any file
there: CI plans that pull request. Each test here first runs validate and plan on a clean
copy of an app, to see which cache files mlp writes and what the right answers are. Then it
plants a hostile file in place of each of them (a pickle whose `__reduce__` would create a
marker file, garbage, binary, JSON of the wrong shape, a FIFO, a device) and proves that
`mlp validate` and `mlp plan`, through `mlp.api` and through the CLI entry `mlp.cli.main`,
never create the marker, never crash, never hang, and still give the right answer.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlp import api
from mlp.cli.main import main
from mlp.errors import DiagnosticsError, MlpError

from .conftest import GOLDEN, analysed, copy_app, mlp_env, record_state, run_mlp, write_app

APP = GOLDEN / "custom_code_change"  # three .hcl files, data and a custom transformer
NOT_THE_APP = ("before", "case.json", "plan.json", "plan.txt", "state.json")
HANG_LIMIT = 20.0  # seconds: far more than a plan of this app takes; a hang fails the test


class Payload:
    """Unpickling this calls open(marker, "w"): the marker file appears if a pickle is loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (self.marker, "w"))


# -- the app and the four ways to run it --------------------------------------------------------


@dataclass(frozen=True)
class Answers:
    """What validate and plan say about the app with honest caches."""

    blocks: int
    plan: dict[str, Any]


class Hung(BaseException):
    """Raised in mlp when it blocks: not an OSError or an Exception, so that nothing in mlp catches it."""


@contextmanager
def no_hang(seconds: float = HANG_LIMIT) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the body blocks, e.g. reading a FIFO."""
    def expire(signum: int, frame: Any) -> None:
        signal.setitimer(signal.ITIMER_REAL, 1.0)  # and again, in case something swallowed it
        raise Hung(f"mlp was still running after {seconds} s: it blocks on something it reads")
    before = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)


def api_validate(app: Path) -> int:
    with no_hang():
        return len(api.validate(app).checked.app.blocks)


def api_plan(app: Path) -> dict[str, Any]:
    with no_hang():
        return api.plan(app).plan.to_json()


class Cli:
    """`mlp -C APP ...` through the CLI entry `mlp.cli.main.main`, in this process."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
        self.capsys, self.monkeypatch = capsys, monkeypatch
        monkeypatch.delenv("MLP_DEBUG", raising=False)
        monkeypatch.delenv("MLP_IN_AUTOMATION", raising=False)

    def __call__(self, app: Path, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        self.monkeypatch.setattr(sys, "argv", ["mlp", "-C", str(app), *args])
        with no_hang(), pytest.raises(SystemExit) as done:
            main()
        out, err = self.capsys.readouterr()
        code = done.value.code
        return (code if isinstance(code, int) else 1), out, err

    def validate(self, app: Path) -> int:
        code, out, err = self(app, "validate", "--json")
        assert "Internal error" not in out + err, err
        assert code == 0, err
        return int(json.loads(out)["blocks"])

    def plan(self, app: Path) -> dict[str, Any]:
        code, out, err = self(app, "plan", "--json")
        assert "Internal error" not in out + err, err
        assert code == 0, err
        return dict(json.loads(out))


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(capsys, monkeypatch)


def make_app(dest: Path) -> Path:
    """A copy of the golden app with a recorded state, so that plan compares against one."""
    app = copy_app(APP, dest, ignore=NOT_THE_APP)
    record_state(analysed(app))
    (app / "code" / "winsorize.py").write_text((app / "code" / "winsorize.py").read_text() + "\n# edited\n")
    return app


def warm(app: Path) -> Answers:
    """Validate and plan once on honest caches: the right answers, and the caches written."""
    return Answers(api_validate(app), api_plan(app))


def cache_files(app: Path) -> list[Path]:
    """Every file mlp keeps under `.mlp/cache/`."""
    return sorted(p for p in (app / ".mlp" / "cache").rglob("*") if p.is_file())


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return make_app(tmp_path / "app")


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "PWNED"


def test_validate_and_plan_keep_caches_in_the_app_folder(app: Path) -> None:
    """The premise of every test below: a plan leaves parse and hash caches in `.mlp/cache/`."""
    warm(app)
    names = [str(p.relative_to(app / ".mlp" / "cache")) for p in cache_files(app)]
    assert any(n.startswith("parse/") for n in names), names
    assert "hashes.json" in names, names
    assert len([n for n in names if n.startswith("parse/")]) == 3  # one entry per .hcl file


# -- what gets planted ----------------------------------------------------------------------------

Make = Callable[[Path, bytes], bytes | None]  # (marker, the file mlp wrote) -> the planted bytes


def _json(original: bytes) -> Any:
    try:
        return json.loads(original)
    except ValueError:
        return None


def _map_leaves(obj: Any, leaf: Callable[[Any], Any]) -> Any:
    if isinstance(obj, dict):
        return {k: _map_leaves(v, leaf) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_map_leaves(v, leaf) for v in obj]
    return leaf(obj)


def _mutated(leaf: Callable[[Any], Any]) -> Make:
    def make(marker: Path, original: bytes) -> bytes | None:
        doc = _json(original)
        return None if doc is None else json.dumps(_map_leaves(doc, leaf)).encode()
    return make


def _without_a_key(marker: Path, original: bytes) -> bytes | None:
    doc = _json(original)
    if not isinstance(doc, dict) or not doc:
        return None
    return json.dumps({k: v for k, v in list(doc.items())[1:]}).encode()


def _other_version(marker: Path, original: bytes) -> bytes | None:
    doc = _json(original)
    if not isinstance(doc, dict) or "version" not in doc:
        return None
    return json.dumps({**doc, "version": 999}).encode()


def _pickle_in_json(marker: Path, original: bytes) -> bytes | None:
    doc = _json(original)
    blob = pickle.dumps(Payload(marker), protocol=0).decode("latin-1")
    if not isinstance(doc, dict):
        return json.dumps({"pickle": blob}).encode()
    return json.dumps(_map_leaves(doc, lambda v: blob if isinstance(v, str) else v)).encode()


PAYLOADS: dict[str, Make] = {
    "pickle": lambda m, o: pickle.dumps(Payload(m), protocol=pickle.HIGHEST_PROTOCOL),
    "pickle_protocol_0": lambda m, o: pickle.dumps(Payload(m), protocol=0),
    "pickle_strings_in_json": _pickle_in_json,
    "empty": lambda m, o: b"",
    "binary": lambda m, o: bytes(range(256)) * 8,
    "not_utf8": lambda m, o: b'{"version": "\xff\xfe"}',
    "truncated": lambda m, o: o[: len(o) // 2],
    "json_null": lambda m, o: b"null",
    "json_list": lambda m, o: b"[1, 2, 3]",
    "json_huge_number": lambda m, o: b"1" + b"0" * 5000,
    "json_nan": lambda m, o: b'{"version": NaN}',
    "json_nested_100000_deep": lambda m, o: b"[" * 100_000 + b"]" * 100_000,
    "json_leaves_as_strings": _mutated(lambda v: str(v)),
    "json_leaves_as_lists": _mutated(lambda v: [v]),
    "json_leaves_as_null": _mutated(lambda v: None),
    "json_leaves_as_true": _mutated(lambda v: True),
    "json_numbers_negated": _mutated(lambda v: -v - 1 if isinstance(v, int) and not isinstance(v, bool) else v),
    "json_without_a_key": _without_a_key,
    "json_other_version": _other_version,
}


def plant(files: list[Path], make: Make, marker: Path) -> int:
    """Replace each of `files` with `make(marker, its text)`; returns how many were replaced."""
    n = 0
    for f in files:
        data = make(marker, f.read_bytes())
        if data is not None:
            f.write_bytes(data)
            n += 1
    return n


# -- planted caches: pickles, garbage and wrong shapes --------------------------------------------


@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_a_planted_cache_file_is_never_trusted(payload: str, app: Path, marker: Path, run_cli: Cli) -> None:
    right = warm(app)
    files = cache_files(app)
    runs: list[Callable[[], object]] = [
        lambda: api_validate(app) == right.blocks or pytest.fail("api.validate gave another answer"),
        lambda: api_plan(app) == right.plan or pytest.fail("api.plan gave another plan"),
        lambda: run_cli.validate(app) == right.blocks or pytest.fail("mlp validate gave another answer"),
        lambda: run_cli.plan(app) == right.plan or pytest.fail("mlp plan gave another plan"),
    ]
    planted = 0
    for run in runs:
        planted = max(planted, plant(files, PAYLOADS[payload], marker))  # mlp repairs what it reads
        run()
        assert not marker.exists(), "a cache file was unpickled"
    if not payload.startswith("json_") or payload in ("json_null", "json_list", "json_huge_number", "json_nan",
                                                      "json_nested_100000_deep"):
        assert planted == len(files)


@pytest.mark.parametrize("via", ["api_validate", "api_plan", "cli_validate", "cli_plan"])
def test_each_cache_file_holding_a_pickle_is_never_loaded(via: str, app: Path, marker: Path, run_cli: Cli) -> None:
    right = warm(app)
    run: Callable[[Path], object] = {"api_validate": api_validate, "api_plan": api_plan,
                                     "cli_validate": run_cli.validate, "cli_plan": run_cli.plan}[via]
    expected = right.blocks if via.endswith("validate") else right.plan
    for f in cache_files(app):
        f.write_bytes(pickle.dumps(Payload(marker)))
        assert run(app) == expected, f.name
        assert not marker.exists(), f"{f.relative_to(app)} was unpickled"


def test_parse_entries_swapped_between_files_are_not_trusted(app: Path) -> None:
    """An entry that is well-formed but caches another file (or another version of it) is re-parsed."""
    right = warm(app)
    entries = [p for p in cache_files(app) if p.parent.name == "parse"]
    texts = [p.read_bytes() for p in entries]
    for p, text in zip(entries, texts[1:] + texts[:1]):
        p.write_bytes(text)
    assert api_validate(app) == right.blocks
    assert api_plan(app) == right.plan


def test_a_parse_entry_of_an_earlier_text_is_not_trusted(app: Path) -> None:
    """The entry of a file's earlier text, planted under the name of its current text, is re-parsed."""
    warm(app)
    entries = {p: p.read_bytes() for p in cache_files(app) if p.parent.name == "parse"}
    hcl = app / "model.hcl"
    hcl.write_text(hcl.read_text().replace("epochs", "epochs    ", 1))  # same meaning, new text
    warm(app)
    new = [p for p in cache_files(app) if p.parent.name == "parse" and p not in entries]
    assert len(new) == 1
    hcl.write_text(hcl.read_text().replace("hidden_units = [16, 8]", "hidden_units = [32, 16]"))
    right = warm(app)
    for p in [p for p in cache_files(app) if p.parent.name == "parse" and p not in entries and p not in new]:
        p.write_bytes(new[0].read_bytes())  # the current text's entry now holds the old parse
    assert api_plan(app) == right.plan


def test_a_data_file_rewritten_with_its_size_and_mtime_kept_is_hashed_again(app: Path) -> None:
    """A hash-cache entry is keyed by path, size, mtime, inode and ctime: an in-place rewrite that
    keeps size and mtime (rsync -t, a restored checkout) still changes ctime, so it is re-hashed."""
    warm(app)
    data = app / "data" / "orders.csv"
    st = data.stat()
    text = data.read_bytes()
    swapped = text.replace(b"de", b"it", 1) if b"de" in text else text[::-1]
    assert len(swapped) == len(text) and swapped != text
    with data.open("r+b") as fh:  # in place: the inode stays
        fh.write(swapped)
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (data.stat().st_size, data.stat().st_mtime_ns, data.stat().st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)
    after = api_plan(app)
    fresh = app.parent / "fresh"
    copy_app(app, fresh)
    (fresh / ".mlp").mkdir()
    os.link(app / ".mlp" / "state.json", fresh / ".mlp" / "state.json")
    assert _fingerprints(after) == _fingerprints(api_plan(fresh))


def _fingerprints(plan_json: dict[str, Any]) -> dict[str, Any]:
    return {c["address"]: c["fingerprint_after"] for c in plan_json["changes"]}


# -- planted special files: FIFOs, devices, folders, symlink loops --------------------------------


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _folder(path: Path) -> None:
    path.mkdir()
    (path / "x").write_text("{}")


def _loop(path: Path) -> None:
    path.symlink_to(path.name)


SPECIAL: dict[str, Callable[[Path], None]] = {
    "fifo": _fifo, "symlink_to_dev_zero": _dev_zero, "folder": _folder, "symlink_loop": _loop,
}


@pytest.mark.parametrize("kind", list(SPECIAL))
def test_a_cache_file_that_is_not_a_regular_file_is_skipped(kind: str, app: Path, run_cli: Cli) -> None:
    right = warm(app)
    for f in cache_files(app):
        f.unlink()
        SPECIAL[kind](f)
    assert api_validate(app) == right.blocks
    assert api_plan(app) == right.plan
    assert run_cli.plan(app) == right.plan


# -- the backend: state files ---------------------------------------------------------------------


def _replaced(make: Callable[[Path], None]) -> Callable[[Path, Path], None]:
    def plant_it(f: Path, marker: Path) -> None:
        f.unlink(missing_ok=True)
        make(f)
    return plant_it


def _bytes(make: Callable[[Path], bytes]) -> Callable[[Path, Path], None]:
    def plant_it(f: Path, marker: Path) -> None:
        f.write_bytes(make(marker))
    return plant_it


STATE_PAYLOADS: dict[str, Callable[[Path, Path], None]] = {
    "pickle": _bytes(lambda m: pickle.dumps(Payload(m))),
    "binary": _bytes(lambda m: bytes(range(256)) * 8),
    "not_utf8": _bytes(lambda m: b'{"version": "\xff"}\n'),
    "nested_100000_deep": _bytes(lambda m: b"[" * 100_000 + b"]" * 100_000 + b"\n"),
    "fifo": _replaced(_fifo),
    "symlink_to_dev_zero": _replaced(_dev_zero),
}


@pytest.mark.parametrize("name", ["state.json", "state.journal"])
@pytest.mark.parametrize("payload", list(STATE_PAYLOADS))
def test_a_bad_state_file_is_an_error_naming_it(name: str, payload: str, app: Path, marker: Path,
                                                run_cli: Cli) -> None:
    """The state is never discarded (that would forget what was built): a bad one stops plan with an
    error that names the file and says how to recover, and nothing in it is run."""
    warm(app)
    path = app / ".mlp" / name
    STATE_PAYLOADS[payload](path, marker)
    if name == "state.journal" and path.is_file() and not path.is_symlink():
        with path.open("ab") as fh:  # a last line without its newline is a torn append, and ignored
            fh.write(b"\n")
    with no_hang(), pytest.raises(MlpError) as err:
        api.plan(app)
    assert not isinstance(err.value, DiagnosticsError)
    assert name in err.value.summary + err.value.detail
    code, out, stderr = run_cli(app, "plan")
    assert code == 1
    assert "Internal error" not in stderr
    assert name in stderr
    assert not marker.exists()


@pytest.mark.parametrize("payload", ["pickle", "binary", "not_utf8", "fifo"])
def test_a_bad_lock_file_is_an_error_naming_it(payload: str, app: Path, marker: Path, run_cli: Cli) -> None:
    warm(app)
    STATE_PAYLOADS[payload](app / ".mlp" / "state.lock", marker)
    with no_hang(), pytest.raises(MlpError) as err:
        api.unlock(app, "0" * 32)
    assert "state.lock" in err.value.detail
    code, out, stderr = run_cli(app, "state", "unlock", "0" * 32)
    assert code == 1 and "Internal error" not in stderr
    assert not marker.exists()


# -- user code is never run by validate or plan ---------------------------------------------------


def _creates(marker: Path, what: str) -> str:
    return f"open({str(marker)!r} + {what!r}, 'w').close()  # runs if this module is ever imported\n"


def user_code_app(root: Path, marker: Path) -> Path:
    return write_app(root, {
        "app.hcl": """\
provider "local" {}

source "orders" {
  format = "csv"
  path   = "data/orders.csv"
}

raw_column "amount" { type = "FLOAT" }
raw_column "items" { type = "INT" }

aggregator "top" {
  path        = "code/top.py"
  output_type = "FLOAT"
}
transformer "cap" {
  path        = "code/cap.py"
  output_type = "FLOAT"
}
estimator "net" { path = "code/net.py" }

aggregate "amount_top" {
  aggregator = aggregator.top
  input      = raw_column.amount
}
transformed_column "amount_capped" {
  transformer = transformer.cap
  inputs      = { column = raw_column.amount, limit = aggregate.amount_top }
}
model "m" {
  type      = "regression"
  estimator = estimator.net
  target    = raw_column.amount
  features  = [transformed_column.amount_capped, raw_column.items]
}
""",
        "data/orders.csv": "amount,items\n12.5,1\n3.0,2\n",
        "code/top.py": _creates(marker, ".aggregator") + "def aggregate_spark(df, inputs, args):\n    return 1.0\n",
        "code/cap.py": _creates(marker, ".transformer") + "def transform(inputs, args):\n    return inputs['column']\n",
        "code/net.py": _creates(marker, ".estimator") + "def create_model(features, target, hparams):\n    raise X\n",
        # Files named like modules that mlp imports lazily, in case the app folder were on sys.path.
        **{f"{name}.py": _creates(marker, f".{name}") for name in
           ("hcl2", "lark", "typer", "rich", "pandas", "numpy", "pyspark", "tensorflow", "sitecustomize")},
        "code/__init__.py": _creates(marker, ".package"),
    })


def markers(marker: Path) -> list[str]:
    return sorted(p.name for p in marker.parent.glob(marker.name + "*"))


def test_validate_and_plan_run_no_user_code(tmp_path: Path, marker: Path, run_cli: Cli) -> None:
    app = user_code_app(tmp_path / "app", marker)
    api_validate(app)
    planned = api_plan(app)
    assert {c["address"] for c in planned["changes"]} >= {"aggregate.amount_top", "model.m"}
    run_cli.validate(app)
    run_cli.plan(app)
    assert markers(marker) == []


def test_the_mlp_command_run_in_the_app_folder_runs_no_user_code(tmp_path: Path, marker: Path) -> None:
    """With the app folder as the working directory, as CI runs it."""
    app = user_code_app(tmp_path / "app", marker)
    for args in (["validate"], ["plan"], ["fmt", "--check"]):
        res = run_mlp(*args, cwd=app, env=mlp_env(), timeout=60)
        assert "Internal error" not in res.stderr, res.stderr
        assert res.returncode in (0, 3), res.stderr
    assert markers(marker) == []


# -- sources and code that name a FIFO, a device or a socket --------------------------------------

SOURCE_APP = """\
provider "local" {}

source "orders" {
  format = "csv"
  path   = "PATH"
}

raw_column "amount" { type = "FLOAT" }
"""
CSV = "amount\n12.5\n3.0\n"
FIFO = "a FIFO (named pipe)"
CHAR = "a character device"
SOCKET = "a socket"


def _link_to_fifo(path: Path) -> None:
    os.mkfifo(path.with_name("pipe"))
    path.symlink_to("pipe")


def _socket(path: Path) -> None:
    import socket

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))  # the file stays when the socket is closed
    s.close()


@dataclass(frozen=True)
class Special:
    path: str  # the source's `path`
    make: Callable[[Path], None]  # builds the data under the app folder
    what: str
    where: str  # the offending file, as the diagnostic names it


def _in(rel: str, make: Callable[[Path], None], *regular: str) -> Callable[[Path], None]:
    def build(app: Path) -> None:
        for r in regular:
            (app / r).parent.mkdir(parents=True, exist_ok=True)
            (app / r).write_text(CSV)
        (app / rel).parent.mkdir(parents=True, exist_ok=True)
        make(app / rel)
    return build


SPECIAL_SOURCES = {
    "dev_zero": Special("/dev/zero", lambda app: None, CHAR, "/dev/zero"),
    "fifo": Special("data/orders.csv", _in("data/orders.csv", _fifo), FIFO, "data/orders.csv"),
    "symlink_to_dev_zero": Special("data/orders.csv", _in("data/orders.csv", _dev_zero), CHAR, "data/orders.csv"),
    "symlink_to_fifo": Special("data/orders.csv", _in("data/orders.csv", _link_to_fifo), FIFO, "data/orders.csv"),
    "fifo_in_a_folder": Special("data", _in("data/b.csv", _fifo, "data/a.csv", "data/c.csv"), FIFO, "data/b.csv"),
    "fifo_deep_in_a_folder": Special("data", _in("data/2026/01/b.csv", _fifo, "data/a.csv"), FIFO,
                                     "data/2026/01/b.csv"),
    "socket_in_a_folder": Special("data", _in("data/s.csv", _socket, "data/a.csv"), SOCKET, "data/s.csv"),
    "fifo_matched_by_a_glob": Special("data/*.csv", _in("data/b.csv", _fifo, "data/a.csv"), FIFO, "data/b.csv"),
    "device_matched_by_a_glob": Special("data/*.csv", _in("data/b.csv", _dev_zero, "data/a.csv"), CHAR,
                                        "data/b.csv"),
}


@pytest.mark.parametrize("case", [pytest.param(c, id=i) for i, c in SPECIAL_SOURCES.items()])
def test_a_source_that_names_a_fifo_or_a_device_is_refused(case: Special, tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", {"app.hcl": SOURCE_APP.replace("PATH", case.path)})
    case.make(app)
    with no_hang(), pytest.raises(DiagnosticsError) as err:
        api.plan(app)
    [d] = err.value.diagnostics.errors()
    assert (d.summary, str(d.pos)) == (f"source.orders would read {case.what}: {case.where}", "app.hcl:5:3")
    assert d.detail == (f'"{case.where}" is {case.what}, not a regular file. mlp reads regular files and folders '
                        "of regular files only (symlinks are followed): reading anything else could block "
                        "or never end.")
    assert d.hint == f'Point "path" at regular files, or move "{case.where}" out of the way.'


def test_the_mlp_command_refuses_a_fifo_source_without_hanging(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", {"app.hcl": SOURCE_APP.replace("PATH", "data"), "data/a.csv": CSV})
    os.mkfifo(app / "data" / "b.csv")
    res = run_mlp("-C", app, "plan", timeout=60)
    assert res.returncode == 1
    assert f"Error: source.orders would read {FIFO}: data/b.csv\n  on app.hcl:5:3" in res.stderr


def test_hidden_files_in_a_source_folder_are_not_looked_at(tmp_path: Path) -> None:
    """Spark skips files starting with `.` or `_`, so mlp neither hashes nor refuses them."""
    app = write_app(tmp_path / "app", {"app.hcl": SOURCE_APP.replace("PATH", "data"), "data/a.csv": CSV})
    os.mkfifo(app / "data" / ".b.csv")
    os.mkfifo(app / "data" / "_SUCCESS")
    assert api_plan(app)["changes"]


CODE_APP = SOURCE_APP.replace("PATH", "data/orders.csv") + """
transformer "cap" {
  path        = "code/cap.py"
  output_type = "FLOAT"
}
"""


@pytest.mark.parametrize(("make", "what"), [
    pytest.param(_fifo, FIFO, id="fifo"),
    pytest.param(_dev_zero, CHAR, id="symlink_to_dev_zero"),
])
def test_a_code_file_that_is_a_fifo_or_a_device_is_refused(make: Callable[[Path], None], what: str,
                                                           tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", {"app.hcl": CODE_APP, "data/orders.csv": CSV})
    (app / "code").mkdir()
    make(app / "code" / "cap.py")
    with no_hang(), pytest.raises(DiagnosticsError) as err:
        api.plan(app)
    [d] = err.value.diagnostics.errors()
    assert (d.summary, str(d.pos)) == (f"transformer.cap would read {what}: code/cap.py", "app.hcl:11:3")


@pytest.mark.parametrize(("make", "what"), [
    pytest.param(_fifo, FIFO, id="fifo"),
    pytest.param(_dev_zero, CHAR, id="symlink_to_dev_zero"),
])
def test_an_hcl_file_that_is_a_fifo_or_a_device_is_reported_not_read(make: Callable[[Path], None], what: str,
                                                                      tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", {"app.hcl": 'provider "local" {}\n'})
    make(app / "x.hcl")
    with no_hang(), pytest.raises(DiagnosticsError) as err:
        api.validate(app)
    [d] = err.value.diagnostics.errors()
    assert (d.summary, str(d.pos)) == ("Cannot read x.hcl", "x.hcl")
    assert d.detail == f"It is {what}, not a regular file: mlp does not read it, since that could block."


# -- parse entries of for_each, locals, templates, indexes and splats -----------------------------

FOR_EACH_FILES = {
    "app.hcl": """\
provider "local" {}

variable "prefix" { default = "" }

source "orders" {
  format = "csv"
  path   = "data/orders.csv"
}

locals {
  columns = { amount = { type = "FLOAT" }, items = { type = "INT" } }
}
""",
    "features.hcl": """\
raw_column "in" {
  for_each = local.columns
  column   = "${var.prefix}${each.key}"
  type     = each.value.type
}
raw_column "label" { type = "FLOAT" }

aggregate "mean" {
  for_each   = toset(["amount", "items"])
  aggregator = "mean"
  input      = raw_column.in[each.key]
}
transformed_column "norm" {
  for_each    = toset(["amount", "items"])
  transformer = "fill_missing"
  inputs      = { column = raw_column.in["${var.prefix}${each.key}"], value = aggregate.mean[each.key] }
}
model "m" {
  type      = "regression"
  estimator = "linear"
  target    = raw_column.label
  features  = transformed_column.norm[*]
}
""",
    "data/orders.csv": "amount,items,label\n12.5,1,3.0\n3.0,2,1.0\n",
}


def _map_dicts(obj: Any, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    if isinstance(obj, dict):
        return fn({k: _map_dicts(v, fn) for k, v in obj.items()})
    if isinstance(obj, list):
        return [_map_dicts(v, fn) for v in obj]
    return obj


def _reshaped(fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Make:
    """Each value of one of the new kinds given another shape; None when the file holds none."""
    def make(marker: Path, original: bytes) -> bytes | None:
        doc = _json(original)
        changed = _map_dicts(doc, fn)
        return None if changed == doc else json.dumps(changed).encode()
    return make


def _swap(d: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    return {**d, key: value} if key in d else d


RESHAPED: dict[str, Make] = {
    "splat_false": _reshaped(lambda d: _swap(d, "splat", False)),
    "splat_and_index": _reshaped(lambda d: {**d, "index": "a"} if "splat" in d else d),
    "index_a_number": _reshaped(lambda d: _swap(d, "index", 1)),
    "index_a_list": _reshaped(lambda d: _swap(d, "index", ["amount"])),
    "template_of_text_only": _reshaped(lambda d: _swap(d, "template", ["amount"])),
    "template_of_adjacent_texts": _reshaped(lambda d: _swap(d, "template", ["a", "b"] + d.get("template", []))),
    "template_of_a_map": _reshaped(lambda d: _swap(d, "template", [{"map": {}}])),
    "call_of_another_function": _reshaped(lambda d: _swap(d, "call", "concat")),
    "call_without_args": _reshaped(lambda d: {k: v for k, v in d.items() if k != "args"} if "call" in d else d),
}


@pytest.mark.parametrize("payload", [*RESHAPED, "pickle", "pickle_strings_in_json", "json_leaves_as_strings",
                                     "json_leaves_as_lists", "json_leaves_as_true", "json_other_version"])
def test_a_planted_parse_entry_of_the_new_values_is_never_trusted(payload: str, tmp_path: Path,
                                                                  marker: Path) -> None:
    app = write_app(tmp_path / "app", FOR_EACH_FILES)
    record_state(analysed(app))  # so that plan compares against one (and its lineage stays)
    right = warm(app)
    assert right.blocks == 1 + 2 + 1 + 2 + 2 + 1
    entries = [p for p in cache_files(app) if p.parent.name == "parse"]
    make = RESHAPED.get(payload) or PAYLOADS[payload]
    planted = plant(entries, make, marker)
    assert planted >= 1
    assert api_validate(app) == right.blocks
    assert api_plan(app) == right.plan
    assert not marker.exists()

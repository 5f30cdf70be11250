"""The `mlp` command, run as a user runs it: the installed binary in a subprocess.

Only commands that stop before any job runs are exercised here (init, validate, plan,
show, graph, state unlock, and the ways apply refuses to start), so no Spark and no
TensorFlow start.
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlp.plan.model import format_seconds
from mlp.scaffold import scaffold

from .conftest import ANSI, MLP, analysed, backend, mlp_env, record_state, run_mlp


@pytest.fixture(scope="module")
def starter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The starter app `mlp init` writes (test_init runs the command itself), parsed once:
    its parse cache lets each command below skip loading the HCL grammar."""
    app = tmp_path_factory.mktemp("starter") / "app"
    scaffold(app, None)
    analysed(app)
    return app


@pytest.fixture
def app(starter: Path, tmp_path: Path) -> Path:
    """A fresh copy of the starter app, without state."""
    shutil.copytree(starter, tmp_path / "app")
    (tmp_path / "app" / ".mlp" / "cache" / "hashes.json").unlink(missing_ok=True)
    return tmp_path / "app"


@pytest.fixture
def applied_app(app: Path) -> Path:
    """The starter app with a state as if it had been applied."""
    record_state(analysed(app))
    return app


def ok(res: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    return res


def refused(res: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit code 1, a message holding `words`, and no traceback; returns stderr."""
    assert res.returncode == 1, res.stdout + res.stderr
    for w in words:
        assert w in res.stderr, res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    return res.stderr


# -- init, validate, plan ---------------------------------------------------------------------


@pytest.mark.parametrize(("args", "app_name", "blocks"), [
    pytest.param([], "app", 10, id="basic"),
    pytest.param(["--example", "iris"], "iris", 17, id="iris"),
])
def test_init_then_validate_and_plan(args: list[str], app_name: str, blocks: int, tmp_path: Path) -> None:
    init = ok(run_mlp("-C", "app", "init", *args, cwd=tmp_path)).stdout
    assert "  created app/app.hcl\n" in init
    assert init.endswith("Initialised an app in app. Next: mlp -C app plan\n")
    assert ok(run_mlp("-C", "app", "validate", cwd=tmp_path)).stdout == \
        f'Success! The app "{app_name}" is valid ({blocks} blocks).\n'
    plan = ok(run_mlp("-C", "app", "plan", cwd=tmp_path)).stdout
    assert plan.startswith(f'mlp will perform these actions on app "{app_name}":\n')
    assert plan.endswith(f"Plan: {blocks} to create, 0 to rebuild, 0 to reuse, 0 to update, 0 to destroy.\n")
    assert not (tmp_path / "app" / ".mlp" / "state.json").exists()  # plan writes no state


def test_init_refuses_a_folder_with_an_app(app: Path) -> None:
    refused(run_mlp("-C", app, "init"), "already holds an app", "--force")


def test_plan_detailed_exitcode(app: Path) -> None:
    assert run_mlp("-C", app, "plan", "--detailed-exitcode").returncode == 2
    record_state(analysed(app))
    res = ok(run_mlp("-C", app, "plan", "--detailed-exitcode", "--refresh=false"))
    assert res.stdout == "No changes. The app matches its state.\n"
    # with refresh (the default), the recorded api has no server: that is a change
    res = run_mlp("-C", app, "plan", "--detailed-exitcode")
    assert res.returncode == 2 and "api.price" in res.stdout and "update: not_running" in res.stdout


def test_plan_detailed_exitcode_is_1_on_error(app: Path) -> None:
    (app / "app.hcl").write_text((app / "app.hcl").read_text() + 'raw_column "x" {\n')
    refused(run_mlp("-C", app, "plan", "--detailed-exitcode"), "Invalid HCL syntax")


def test_plan_json(applied_app: Path) -> None:
    (applied_app / "app.hcl").write_text((applied_app / "app.hcl").read_text().replace("epochs = 50", "epochs = 60"))
    doc = json.loads(ok(run_mlp("-C", applied_app, "plan", "--json")).stdout)
    assert doc["format_version"] == "1.0"
    assert (doc["backend_move"], doc["notes"]) == (None, [])  # the backend is the one last used
    estimate = doc["summary"].pop("estimated_seconds")
    assert doc["summary"] == {"create": 0, "rebuild": 2, "reuse": 0, "copy": 0, "update": 0, "destroy": 0, "may_skip": 0,
                              "text": "Plan: 0 to create, 2 to rebuild, 0 to reuse, 0 to update, 0 to destroy.",
                              "detail": f"Estimated time: {format_seconds(estimate)}."}
    assert estimate > 0  # the model's and the api's last runs, from the state
    model = next(c for c in doc["changes"] if c["address"] == "model.price")
    assert (model["action"], model["reason"], model["details"]) == (
        "rebuild", "config_changed", ["training.epochs: 50 -> 60"])
    assert set(model) == {"address", "kind", "action", "reason", "details", "fingerprint_before",
                          "fingerprint_after", "may_skip", "estimated_seconds"}
    assert model["may_skip"] is False and model["estimated_seconds"] > 0
    again = json.loads(ok(run_mlp("-C", applied_app, "plan", "--format", "json")).stdout)
    assert again["changes"] == doc["changes"]


def test_plan_json_on_error_is_json(app: Path) -> None:
    (app / "app.hcl").write_text((app / "app.hcl").read_text().replace("raw_column.price", "raw_column.prize"))
    res = run_mlp("-C", app, "plan", "--json")
    assert res.returncode == 1
    doc = json.loads(res.stdout)
    assert doc["valid"] is False
    assert [(d["summary"], d["file"], d["line"]) for d in doc["diagnostics"]] == [
        ('Unknown reference "raw_column.prize"', "app.hcl", 52)]


def test_plan_markdown(app: Path) -> None:
    md = ok(run_mlp("-C", app, "plan", "--format", "markdown")).stdout
    lines = md.splitlines()
    assert lines[0] == "### mlp plan for `app`"
    assert "| | block | action | reason | details |" in lines
    assert "| `+` | `model.price` | create | new |  |" in lines
    assert lines[-1] == "**Plan: 10 to create, 0 to rebuild, 0 to reuse, 0 to update, 0 to destroy.**"


def test_plan_unknown_format(app: Path) -> None:
    refused(run_mlp("-C", app, "plan", "--format", "yaml"), "Unknown --format", "'yaml'")


def test_plan_out_then_show(app: Path, tmp_path: Path) -> None:
    saved = tmp_path / "saved.plan"
    text = ok(run_mlp("-C", app, "plan", "--out", saved)).stdout
    assert text.endswith(f"\nSaved the plan to {saved}. Apply it with: mlp apply {saved}\n")
    shown = ok(run_mlp("-C", app, "show", saved)).stdout
    assert shown == text[: text.index("\nSaved the plan")]
    doc = json.loads(ok(run_mlp("-C", app, "show", "--json", saved)).stdout)
    on_disk = json.loads(saved.read_text())
    assert on_disk.pop("planfile") == "mlp-plan"
    # the digests of settings outside fingerprints: in the file for apply, not in the view
    assert list(on_disk.pop("extras")) == ["api.price"]
    assert doc == on_disk
    assert doc["summary"]["create"] == 10


def test_show_refuses_what_is_not_a_plan(app: Path) -> None:
    refused(run_mlp("-C", app, "show", app / "app.hcl"), "Cannot read the plan file")
    refused(run_mlp("-C", app, "show", app / "nothing.plan"), "No plan file at")


def test_show_state(applied_app: Path) -> None:
    text = ok(run_mlp("-C", applied_app, "show")).stdout
    assert text.startswith('App "app": state serial 1, lineage ')
    assert "  model.price" in text
    doc = json.loads(ok(run_mlp("-C", applied_app, "show", "--json")).stdout)
    assert (doc["app"], doc["serial"], len(doc["blocks"])) == ("app", 1, 10)
    assert all(b["status"] == "done" and b["in_app"] for b in doc["blocks"])


@pytest.mark.parametrize("command", ["plan", "graph"])
def test_out_file_in_a_missing_folder_is_a_user_error(command: str, app: Path, tmp_path: Path) -> None:
    """A path the user typed wrong is the user's to fix, not an internal error."""
    target = tmp_path / "no" / "such" / "folder" / "out"
    err = refused(run_mlp("-C", app, command, "--out", target), str(target.parent))
    assert "Internal error" not in err
    assert "This is a bug in mlp" not in err


# -- colour ----------------------------------------------------------------------------------


def run_on_terminal(args: list[str | Path], env: dict[str, str]) -> bytes:
    """Run mlp with its stdout on a pseudo-terminal, so that colour is on unless turned off."""
    master, slave = pty.openpty()
    try:
        res = subprocess.run([str(MLP), *map(str, args)], stdin=subprocess.DEVNULL, stdout=slave,
                             stderr=subprocess.PIPE, env=env, timeout=60)
    finally:
        os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: the other end is closed and drained
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert res.returncode == 0, res.stderr
    return out


TERMINAL = {"TERM": "xterm-256color"}


@pytest.fixture(scope="module")
def coloured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A starter app and its plan as printed on a terminal, colours and all."""
    app = tmp_path_factory.mktemp("coloured") / "app"
    scaffold(app, None)
    analysed(app)
    text = run_on_terminal(["-C", app, "plan"], mlp_env(**TERMINAL)).decode()
    assert ANSI.search(text), "colour is on on a terminal (or the tests below prove nothing)"
    return app, text.replace("\r\n", "\n")


@pytest.mark.parametrize(("args", "env"), [
    pytest.param(["plan", "--no-color"], {}, id="plan--no-color"),
    pytest.param(["--no-color", "plan"], {}, id="--no-color-plan"),
    pytest.param(["plan"], {"NO_COLOR": "1"}, id="NO_COLOR"),
])
def test_no_color(args: list[str], env: dict[str, str], coloured: tuple[Path, str]) -> None:
    app, text = coloured
    plain = run_on_terminal(["-C", app, *args], mlp_env(**TERMINAL, **env)).decode().replace("\r\n", "\n")
    assert not ANSI.search(plain)
    assert plain == ANSI.sub("", text)


def test_no_color_when_not_a_terminal(app: Path) -> None:
    assert not ANSI.search(ok(run_mlp("-C", app, "plan")).stdout)


# -- graph -----------------------------------------------------------------------------------


def test_graph_dot(app: Path) -> None:
    dot = ok(run_mlp("-C", app, "graph")).stdout
    assert dot.startswith('digraph "app" {\n')
    assert '  "raw_column.size_m2" -> "aggregate.size_mean";\n' in dot
    assert '  "model.price" -> "api.price";\n' in dot
    assert dot.rstrip().endswith("}")


def test_graph_svg(app: Path, tmp_path: Path) -> None:
    out = tmp_path / "graph.svg"
    res = run_mlp("-C", app, "graph", "--format", "svg", "--out", out)
    if shutil.which("dot", path=mlp_env().get("PATH")):
        ok(res)
        assert "<svg" in out.read_text()
    else:
        err = refused(res, "Graphviz", "Install Graphviz (apt-get install graphviz), or use --format dot.")
        assert err.count("Fix:") == 1
        assert not out.exists()


# -- state and apply refusing ------------------------------------------------------------------


def test_destroy_counts_what_it_removed(applied_app: Path) -> None:
    blocks = len(backend(applied_app).read_state().blocks)
    artifacts = len(backend(applied_app).artifacts().keys())
    assert artifacts == blocks - 1  # every block but the api left one
    out = ok(run_mlp("-C", applied_app, "destroy", "--auto-approve")).stdout
    assert out.strip().endswith(f"Destroy complete: {blocks} blocks removed, {artifacts} artifacts deleted.")
    assert backend(applied_app).artifacts().keys() == []
    assert backend(applied_app).read_state().blocks == {}
    again = ok(run_mlp("-C", applied_app, "destroy", "--auto-approve")).stdout
    assert "Nothing to destroy: the state is empty." in again


def test_state_unlock_when_not_locked(applied_app: Path) -> None:
    refused(run_mlp("-C", applied_app, "state", "unlock", "WRONGID"), "The state is not locked")


def test_state_unlock_wrong_id(applied_app: Path) -> None:
    held = backend(applied_app)
    info = held.lock("mlp apply")
    try:
        err = refused(run_mlp("-C", applied_app, "state", "unlock", "WRONGID"), "The lock ID does not match")
        assert f"Its ID is {info.id}, not WRONGID." in err
        assert f"mlp state unlock {info.id}" in err
        assert held.current_lock() == info
        ok(run_mlp("-C", applied_app, "state", "unlock", info.id))
        assert held.current_lock() is None
    finally:
        if held.current_lock() is not None:
            held.unlock(info.id)


@pytest.mark.parametrize("env", [{}, {"MLP_IN_AUTOMATION": "1"}], ids=["no_terminal", "MLP_IN_AUTOMATION"])
def test_apply_without_approval_refuses(env: dict[str, str], app: Path) -> None:
    res = run_mlp("-C", app, "apply", env=mlp_env(**env))
    refused(res, "Apply needs approval", "--auto-approve")
    assert "Plan: 10 to create" in res.stdout  # it shows what it would have done
    assert not (app / ".mlp" / "state.json").exists()
    assert backend(app).current_lock() is None


def test_apply_in_automation_refuses_even_on_a_terminal(app: Path) -> None:
    master, slave = pty.openpty()
    try:
        res = subprocess.run([str(MLP), "-C", str(app), "apply"], stdin=slave, capture_output=True, text=True,
                             env=mlp_env(MLP_IN_AUTOMATION="1"), timeout=60)
    finally:
        os.close(slave)
        os.close(master)
    refused(res, "Apply needs approval", "--auto-approve")


def test_apply_while_locked_names_the_holder(applied_app: Path) -> None:
    held = backend(applied_app)
    info = held.lock("mlp apply")
    try:
        err = refused(run_mlp("-C", applied_app, "apply", "--auto-approve"), "The state is locked")
        assert f"(pid {os.getpid()})" in err
        assert f"mlp state unlock {info.id}" in err
        assert held.current_lock() == info  # the refused apply left the lock alone
    finally:
        held.unlock(info.id)


def test_apply_saved_plan_refuses_extra_options(app: Path, tmp_path: Path) -> None:
    refused(run_mlp("-C", app, "apply", tmp_path / "p.plan", "--target", "model.price"),
            "A saved plan is applied as it is")


# -- -C ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["relative", "absolute"])
def test_chdir_from_another_folder(how: str, app: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = os.path.relpath(app, elsewhere) if how == "relative" else str(app)
    ok(run_mlp("-C", target, "validate", cwd=elsewhere))
    res = run_mlp("-C", target, "plan", "--detailed-exitcode", cwd=elsewhere)
    assert res.returncode == 2, res.stderr
    assert list(elsewhere.iterdir()) == []  # nothing written where the command ran
    assert (app / ".mlp" / "cache").is_dir()


def test_without_chdir_the_current_folder_is_the_app(app: Path) -> None:
    ok(run_mlp("validate", cwd=app))
    refused(run_mlp("validate", cwd=app.parent), "No .hcl files in")


@pytest.mark.parametrize(("words", "cword", "expected"), [
    ("mlp pl", 1, "plan"), ("mlp plan --det", 2, "--detailed-exitcode"), ("mlp builtins", 1, "builtins"),
], ids=["command", "option", "builtins"])
def test_shell_completion_completes(words: str, cword: int, expected: str) -> None:
    res = run_mlp(env=mlp_env(_MLP_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(cword)))
    assert res.returncode == 0 and expected in res.stdout.split(), res.stdout + res.stderr


# -- the command line without typer --------------------------------------------------------------
#
# `mlp.cli.spec.parse` reads the plain command lines itself, so that they run without importing
# typer; typer reads the rest. Both must call the same command with the same values.


def typer_call(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """What typer's app calls for `argv`: the root options, the command's name and its values."""
    from typer.testing import CliRunner

    from mlp.cli import commands
    from mlp.cli.typer_app import app as typer_app

    seen: dict[str, Any] = {}
    monkeypatch.setattr(commands, "_root", lambda **kw: seen.update(root=kw))
    for path, cmd in commands.COMMANDS.commands.items():
        monkeypatch.setattr(commands, cmd.func.__name__,
                            lambda _name=" ".join(path), **kw: seen.update(command=_name, kwargs=kw))
    res = CliRunner().invoke(typer_app, argv)
    assert res.exit_code == 0 and "command" in seen, res.output
    return seen["root"], seen["command"], seen["kwargs"]


def listed(values: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in values.items()}


PLAIN = [
    ["plan"], ["-C", "app", "plan"], ["--chdir", "app", "--no-color", "validate", "--json"],
    ["--chdir=app", "plan", "--no-color", "-v", "--format", "markdown", "--target", "model.a", "--target=api.b"],
    ["plan", "--refresh=false", "--var", "a=1", "--var=b=x=y", "--sample", "10", "--out", "p.plan"],
    ["plan", "--sample", "-5", "--detailed-exitcode", "--replace", 'aggregate.m["k"]', "--json"],
    ["plan", "--format", "text", "--format", "json"], ["plan", "--var", "--weird=1"], ["plan", "--sample", "-0"],
    ["apply", "--parallelism", "123456789012345678"], ["-C", "--no-color", "plan"], ["-C", "a", "-C", "b", "fmt"],
    ["show"], ["show", "model.m", "--json"], ["show", "--verbose", "p.plan"], ["show", "-"],
    ["apply", "--auto-approve", "--parallelism", "3", "--refresh", "false"], ["apply", "p.plan"],
    ["destroy", "--auto-approve", "--no-color"], ["init", "--example", "iris", "--force"], ["fmt", "--check"],
    ["logs", "model.m", "-f"], ["output", "--json"], ["predict", "iris", "--data", '{"a": 1}'],
    ["predict", "api.iris", "--file", "x.json"], ["builtins"], ["builtins", "normalize"],
    ["graph", "--format", "svg", "--out", "g.svg"], ["state", "unlock", "ID"],
]


@pytest.mark.parametrize("argv", PLAIN, ids=[" ".join(a) for a in PLAIN])
def test_a_plain_command_line_means_what_it_means_to_typer(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from mlp.cli.commands import COMMANDS
    from mlp.cli.spec import parse, with_callbacks

    call = parse(argv, COMMANDS)
    assert call is not None and COMMANDS.root is not None, "read without typer"
    mine = (listed(with_callbacks(COMMANDS.root, call.root)), " ".join(call.command.path),
            listed(with_callbacks(call.command, call.kwargs)))
    root, name, kwargs = typer_call(argv, monkeypatch)
    assert mine == (root, name, listed(kwargs))


LEFT_TO_TYPER = [
    [], ["--help"], ["plan", "--help"], ["-h"], ["--no-color"], ["bogus"], ["plan", "--bogus"], ["plan", "-x"],
    ["plan", "--json=1"], ["plan", "--out"], ["plan", "--out="], ["plan", "--sample", "abc"],
    ["plan", "--sample", "007"], ["plan", "--sample", "1.0"], ["plan", "-vx"], ["-Capp", "plan"],
    ["plan", "--", "x"], ["validate", "extra"], ["logs"], ["state"], ["state", "unlock"], ["state", "--help"],
    ["--install-completion"], ["--show-completion", "bash"], ["plan", "-C", "app"], ["show", "a", "b"],
    ["show", "-5"], ["-C", "", "plan"],
]


@pytest.mark.parametrize("argv", LEFT_TO_TYPER, ids=[" ".join(a) or "nothing" for a in LEFT_TO_TYPER])
def test_any_other_command_line_is_left_to_typer(argv: list[str]) -> None:
    from mlp.cli.commands import COMMANDS
    from mlp.cli.spec import parse

    assert parse(argv, COMMANDS) is None


def test_the_version_is_read_without_typer_as_typer_reads_it() -> None:
    from mlp.cli.commands import COMMANDS
    from mlp.cli.spec import parse

    for argv in (["--version"], ["-C", "x", "--version", "plan", "--bogus"], ["--no-color", "--version"]):
        call = parse(argv, COMMANDS)
        assert call is not None and call.root["version"] is True, argv
    assert parse(["--version", "--bogus"], COMMANDS) is None  # typer refuses the unknown option first


def test_the_declarations_are_what_typer_makes_of_them() -> None:
    """Each parameter's kind, as the parser reads it, is the option typer builds from the declaration."""
    import typer.main

    from mlp.cli import spec
    from mlp.cli.commands import COMMANDS
    from mlp.cli.typer_app import app as typer_app

    group = typer.main.get_command(typer_app)
    assert COMMANDS.root is not None
    declared = {(): COMMANDS.root, **COMMANDS.commands}
    for path, cmd in declared.items():
        click_cmd = group
        for word in path:
            click_cmd = click_cmd.commands[word]  # type: ignore[attr-defined]
        params = {p.name: p for p in click_cmd.params if p.name not in ("install_completion", "show_completion")}
        assert list(params) == [p.name for p in cmd.params], path
        for p in cmd.params:
            made = params[p.name]
            annotation = made.type_descriptor.annotation
            kind = {bool: spec.FLAG, int: spec.INT, Path: spec.PATH, str: spec.STR}.get(annotation, spec.MULTI)
            assert (kind, made.multiple) == (p.kind, p.kind == spec.MULTI), (path, p.name)
            if isinstance(p.spec, spec.Opt):
                assert (set(made.opts) | set(made.secondary_opts), made.is_flag) == \
                    (set(p.spec.decls), p.kind == spec.FLAG), (path, p.name)
            else:
                assert made.required == (p.spec.default is ...), (path, p.name)


@pytest.mark.parametrize("args", [["--version"], ["-C", "nowhere", "builtins", "normalize"]])
def test_a_plain_command_does_not_import_typer(args: list[str]) -> None:
    code = ("import atexit, sys\n"
            "atexit.register(lambda: sys.stderr.write('\\nimported: ' + ' '.join(sorted(\n"
            "    m for m in ('typer', 'click', 'pydantic', 'rich') if m in sys.modules)) + '\\n'))\n"
            f"sys.argv = ['mlp', *{args!r}]\n"
            "from mlp.cli.main import main\n"
            "main()\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=mlp_env(), timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stderr.rstrip().endswith("imported:"), res.stderr

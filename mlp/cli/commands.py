"""The `mlp` commands: parse arguments, call `mlp.api`, render. Nothing else lives here.

Each command is declared once, here: its options and arguments are `option(...)` and
`argument(...)`, which take what `typer.Option` and `typer.Argument` take (`mlp.cli.spec`).
`mlp.cli.main` runs them; typer is imported only when it is needed (help, completion, a
command line that is not plainly well formed, a prompt).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Optional

from mlp.cli.output import Exit, Out, fail, handle_errors
from mlp.cli.spec import Registry, argument, option

COMMANDS = Registry(groups={"state": "Manage the state."})
HELP = "Plan and apply machine-learning apps written in HCL."


class Ctx:
    dir: Path = Path(".")
    no_color: bool = False


def _version(value: bool) -> None:
    if value:
        from mlp import __version__

        sys.stdout.write(f"mlp {__version__}\n")
        raise Exit(0)


@COMMANDS.callback
def _root(chdir: Path = option(Path("."), "-C", "--chdir", help="Run as if in DIR (the app folder)."),
          no_color: bool = option(False, "--no-color", help="Turn colour off."),
          version: bool = option(False, "--version", help="Print mlp's version.", is_eager=True,
                                       callback=_version)) -> None:
    Ctx.dir = chdir
    Ctx.no_color = no_color or Ctx.no_color


_REFRESH_HELP = "false: trust the state; skip checking that artifacts exist and apis serve."


def _flag(out: Out, name: str, value: str) -> bool:
    """A Terraform-style boolean option value: --refresh=false."""
    text = value.strip().lower()
    if text not in ("true", "false", "1", "0", "yes", "no"):
        fail(out, f"Invalid {name} value {value!r}", f"{name} takes true or false.", f"Write {name}=false")
    return text in ("true", "1", "yes")


def _out(no_color: bool = False) -> Out:
    return Out(no_color=no_color or Ctx.no_color)


@COMMANDS.command("init")
def init(example: Optional[str] = option(None, "--example", help="Scaffold a full example, e.g. iris."),
         force: bool = option(False, "--force", help="Write into a folder that has .hcl files.")) -> None:
    """Scaffold an app in the folder."""
    from mlp.scaffold import scaffold

    with handle_errors(_out()):
        written = scaffold(Ctx.dir, example, force)
        out = _out()
        for p in written:
            out.line(f"  created {p}")
        out.line(f"Initialised an app in {Ctx.dir}. Next: mlp -C {Ctx.dir} plan", "green")


@COMMANDS.command("validate")
def validate(var: list[str] = option([], "--var", help="Set a variable: NAME=VALUE."),
             json_out: bool = option(False, "--json", help="Machine-readable result.")) -> None:
    """Parse and type-check the app; no state, no jobs."""
    from mlp import api

    out = _out()
    with handle_errors(out, json_out=json_out):
        res = api.validate(Ctx.dir, var)
        out.diagnostics(res.diagnostics)
        n = sum(1 for a in res.checked.app.blocks)
        if json_out:
            out.json({"valid": True, "blocks": n,
                      "diagnostics": [d.to_json() for d in res.diagnostics.items]})
        else:
            out.line(f"Success! The app \"{res.checked.app.name}\" is valid ({n} blocks).", "green")


@COMMANDS.command("fmt")
def fmt(check: bool = option(False, "--check", help="Only report files that need formatting (exit 3).")) -> None:
    """Rewrite the app's HCL files in canonical form."""
    from mlp.config.fmt import format_app

    out = _out()
    with handle_errors(out):
        changed, diags = format_app(Ctx.dir, write=not check)
        for f in changed:
            out.line(f.name)
        if diags.has_errors():
            from mlp.errors import DiagnosticsError

            raise DiagnosticsError(diags)
        if check and changed:
            raise Exit(3)


@COMMANDS.command("plan")
def plan(out_file: Optional[Path] = option(None, "--out", help="Save the plan to apply it later."),
         json_out: bool = option(False, "--json", help="The plan as JSON."),
         fmt_: str = option("text", "--format", help="text, json or markdown."),
         verbose: bool = option(False, "--verbose", "-v", help="List unchanged blocks too."),
         detailed_exitcode: bool = option(False, "--detailed-exitcode",
                                                help="Exit 0: no changes, 1: error, 2: changes."),
         target: list[str] = option([], "--target", help="Plan only ADDR and what it needs."),
         replace: list[str] = option([], "--replace", help="Rebuild ADDR even if unchanged."),
         sample: Optional[int] = option(None, "--sample", help="Use a seeded sample of N rows."),
         var: list[str] = option([], "--var", help="Set a variable: NAME=VALUE."),
         refresh: str = option("true", "--refresh", help=_REFRESH_HELP, metavar="true|false"),
         no_color: bool = option(False, "--no-color", help="Turn colour off.")) -> None:
    """Show what apply would build, rebuild, reuse or destroy, and why."""
    from mlp import api
    from mlp.plan.planfile import write_plan

    fmt_ = "json" if json_out else fmt_
    if fmt_ not in ("text", "json", "markdown"):
        fail(_out(), "Unknown --format", f"{fmt_!r} is not one of text, json, markdown.", "")
    out = _out(no_color)
    if out_file is not None and not out_file.parent.is_dir():
        fail(out, f"Cannot write the plan to {out_file}", f"The folder {out_file.parent} does not exist.",
             "Create it, or give another --out path.")
    with handle_errors(out, json_out=fmt_ == "json"):
        _transfers(api)
        res = api.plan(Ctx.dir, variables=var, targets=target, replace=replace, sample=sample,
                       refresh=_flag(out, "--refresh", refresh))
        out.diagnostics(res.diagnostics)
        infra = res.infrastructure
        shown = res.plan.to_json()
        if fmt_ == "json" and (infra.changes or infra.note):
            shown = {**shown, "infrastructure": api.infrastructure_json(infra)}
        out.plan(shown, fmt_, verbose)
        if fmt_ != "json":
            out.infrastructure(res.analysis.app.provider.kind, infra, fmt_)
        if out_file is not None:
            write_plan(res.plan, out_file)
            if fmt_ == "text":
                out.line(f"\nSaved the plan to {out_file}. Apply it with: mlp apply {out_file}")
    if detailed_exitcode and (res.plan.has_changes or res.infrastructure.changes):
        raise Exit(2)  # an infrastructure change alone (a node_type edit) is a change too


@COMMANDS.command("show")
def show(what: Optional[str] = argument(None, metavar="[PLANFILE|ADDRESS]",
                                           help="A saved plan, or a block address (model.dnn); none: the state."),
         json_out: bool = option(False, "--json"),
         verbose: bool = option(False, "--verbose", "-v")) -> None:
    """Show a saved plan, one block, or each block of the state."""
    from mlp.plan.planfile import read_plan

    out = _out()
    with handle_errors(out, json_out=json_out):
        if what is not None and (Path(what).is_file() or not _looks_like_address(what)):
            p = read_plan(Path(what))
            out.plan(p.to_json(), "json" if json_out else "text", verbose)
            return
        from mlp import api

        if what is None:
            out.state(api.show(Ctx.dir), json_out)
            return
        view = api.show_block(Ctx.dir, what)
        if json_out:
            out.json(view.to_json())
            return
        from mlp.cli.views import render_block

        for text, style in render_block(view):
            out.line(text, style)


def _transfers(api: Any) -> None:
    """Bars (on a terminal) or lines (elsewhere) for artifacts moved to or from a bucket."""
    from mlp.cli.transfers import transfer_hook

    api.on_transfer(transfer_hook(_interactive()))


def _looks_like_address(text: str) -> bool:
    kind, dot, name = text.partition(".")
    return bool(dot and name) and kind.isidentifier() and "/" not in text


def _interactive() -> bool:
    return sys.stdin.isatty() and not os.environ.get("MLP_IN_AUTOMATION")


def _confirm_plan(out: Out, verbose: bool) -> Any:
    def confirm(p: Any) -> bool:
        out.plan(p.to_json(), "text", verbose)
        if not _interactive():
            fail(out, "Apply needs approval", "There is no terminal to ask (or MLP_IN_AUTOMATION is set).",
                 "Pass --auto-approve, or apply a saved plan: mlp plan --out FILE && mlp apply FILE")
        import typer

        answer = typer.prompt("\nDo you want to apply this plan? Only 'yes' will be accepted", default="")
        return answer.strip() == "yes"
    return confirm


@COMMANDS.command("apply")
def apply(planfile: Optional[Path] = argument(None, help="A plan saved with mlp plan --out."),
          auto_approve: bool = option(False, "--auto-approve", help="Apply without asking."),
          target: list[str] = option([], "--target", help="Apply only ADDR and what it needs."),
          replace: list[str] = option([], "--replace", help="Rebuild ADDR even if unchanged."),
          sample: Optional[int] = option(None, "--sample", help="Use a seeded sample of N rows."),
          parallelism: Optional[int] = option(None, "--parallelism", help="Jobs run at once."),
          var: list[str] = option([], "--var", help="Set a variable: NAME=VALUE."),
          refresh: str = option("true", "--refresh", help=_REFRESH_HELP, metavar="true|false"),
          verbose: bool = option(False, "--verbose", "-v"),
          no_color: bool = option(False, "--no-color", help="Turn colour off.")) -> None:
    """Build what the plan says, recording each block as it finishes."""
    from mlp import api
    from mlp.cli.progress import make_progress
    from mlp.cli.summary import print_apply_summary

    out = _out(no_color)
    if planfile is not None and (target or replace or sample is not None or var):
        fail(out, "A saved plan is applied as it is", "--target, --replace, --sample and --var go to `mlp plan`.",
             "Make a new plan with those options, then apply it.")
    confirm = None if (auto_approve or planfile is not None) else _confirm_plan(out, verbose)
    progress: Any = None
    with handle_errors(out):
        _transfers(api)

        class _Lazy:
            """Starts the progress view once the plan is confirmed."""

            def _p(self) -> Any:
                nonlocal progress
                if progress is None:
                    progress = make_progress(out, verbose)
                return progress

            def block(self, e: Any) -> None:
                self._p().block(e)

            def log(self, a: str, line: str) -> None:
                self._p().log(a, line)
        try:
            res = api.apply(Ctx.dir, plan_file=planfile, variables=var, targets=target, replace=replace,
                            sample=sample, parallelism=parallelism, hooks=_Lazy(), confirm=confirm,
                            refresh=_flag(out, "--refresh", refresh))
        finally:
            if progress is not None:
                progress.close()
        print_apply_summary(out, res)
        if not res.ok:
            raise Exit(1)


@COMMANDS.command("destroy")
def destroy(auto_approve: bool = option(False, "--auto-approve", help="Destroy without asking."),
            no_color: bool = option(False, "--no-color")) -> None:
    """Stop the app's APIs, remove its blocks from state and delete its artifacts."""
    from mlp import api

    out = _out(no_color)

    def confirm(blocks: tuple[str, ...]) -> bool:
        for b in blocks:
            out.line(f"  - {b}", "red")
        out.line(f"\nPlan: {len(blocks)} to destroy.", "bold")
        if not _interactive():
            fail(out, "Destroy needs approval", "There is no terminal to ask (or MLP_IN_AUTOMATION is set).",
                 "Pass --auto-approve.")
        import typer

        return typer.prompt("Do you really want to destroy the app? Only 'yes' will be accepted",
                            default="").strip() == "yes"
    with handle_errors(out):
        res = api.destroy(Ctx.dir, None if auto_approve else confirm)
        for w in res.warnings:
            out.line(f"Warning: {w}", "yellow", err=True)
        if not res.blocks:
            out.line("Nothing to destroy: the state is empty.")
            return
        apis = len(res.apis_stopped)
        out.line(f"Destroy complete: {_count(len(res.blocks), 'block')} removed, "
                 f"{_count(res.artifacts, 'artifact')} deleted"
                 + (f", {apis} API{'s' if apis != 1 else ''} stopped." if apis else "."), "green")


@COMMANDS.command("logs")
def logs(address: str = argument(..., help="A block address, e.g. model.dnn"),
         follow: bool = option(False, "--follow", "-f", help="Keep printing new lines.")) -> None:
    """Print a block's logs: samples, metrics, errors."""
    import time

    from mlp import api

    out = _out()
    with handle_errors(out):
        path = api.logs(Ctx.dir, address)
        with path.open() as fh:
            sys.stdout.write(fh.read())
            sys.stdout.flush()
            while follow:
                chunk = fh.read()
                if chunk:
                    sys.stdout.write(chunk)
                    sys.stdout.flush()
                else:
                    time.sleep(0.3)


@COMMANDS.command("output")
def output(json_out: bool = option(False, "--json")) -> None:
    """API endpoints and model metrics."""
    from mlp import api

    out = _out()
    with handle_errors(out):
        res = api.outputs(Ctx.dir)
        if json_out:
            out.json(res)
            return
        for addr, info in res["apis"].items():
            out.line(f"{addr} = {info.get('url')}", "bold")
        for addr, metrics in res["models"].items():
            shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()) if isinstance(v, (int, float)))
            out.line(f"{addr}: {shown}")
        if not res["apis"] and not res["models"]:
            out.line("No outputs yet. Run `mlp apply`.")


@COMMANDS.command("predict")
def predict(api_name: str = argument(..., metavar="API", help="The api, e.g. iris or api.iris"),
            data: Optional[str] = option(None, "--data", help="JSON: one instance, a list, or {instances: [...]}"),
            file: Optional[Path] = option(None, "--file", help="A JSON file of the same.")) -> None:
    """Send instances to a running API and print its answer."""
    from mlp import api

    out = _out()
    with handle_errors(out):
        if (data is None) == (file is None):
            fail(out, "Give the instances with --data or --file", "Exactly one of them is needed.",
                 "e.g. mlp predict iris --data '{\"sepal_length\": 5.1, ...}'")
        text = data if data is not None else _read_instances(file)  # type: ignore[arg-type]
        status, body = api.predict(Ctx.dir, api_name, text)
        out.json(body)
        if status != 200:
            raise Exit(1)


def _read_instances(file: Path) -> str:
    """The text of `predict --file`; a file that cannot be read is the user's to fix."""
    from mlp.errors import UsageError, os_error_help

    try:
        return file.read_text(encoding="utf-8")
    except OSError as e:
        detail, fix = os_error_help(e)
        raise UsageError(f"Cannot read the instances file {file}", detail,
                         f"{fix}, or pass the instances with --data") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"The instances file {file} is not UTF-8 text", f"{file}: byte {e.start}: {e.reason}",
                         "Save it as UTF-8 JSON.") from None


@COMMANDS.command("builtins")
def builtins(name: Optional[str] = argument(None, help="One built-in, e.g. normalize.")) -> None:
    """The built-in aggregators, transformers and estimators: inputs, args, types, examples."""
    from mlp.builtins import reference

    out = _out()
    with handle_errors(out):
        if name is None:
            lines = reference.overview_lines()
        else:
            specs = reference.lookup(name)
            if not specs:
                from mlp.config.values import did_you_mean
                from mlp.errors import UsageError

                raise UsageError(f"No built-in named {name!r}", "`mlp builtins` lists them all.",
                                 did_you_mean(name, reference.names()))
            lines = [ln for i, spec in enumerate(specs) for ln in ([""] if i else []) + reference.entry_lines(spec)]
        for line in lines:
            out.line(line)


@COMMANDS.command("state", "unlock")
def state_unlock(lock_id: str = argument(..., help="The id the lock error printed.")) -> None:
    """Release a lock left by a command that died."""
    from mlp import api

    out = _out()
    with handle_errors(out):
        api.unlock(Ctx.dir, lock_id)
        out.line("The state is unlocked.", "green")


@COMMANDS.command("state", "list")
def state_list() -> None:
    """List every block address the state records."""
    from mlp import api

    out = _out()
    with handle_errors(out):
        for address in api.state_list(Ctx.dir):
            out.line(address)


@COMMANDS.command("state", "show")
def state_show(address: str = argument(..., help="A block address, e.g. model.dnn"),
               json_out: bool = option(False, "--json")) -> None:
    """Show one block's record in the state."""
    from mlp import api

    out = _out()
    with handle_errors(out, json_out=json_out):
        view = api.show_block(Ctx.dir, address)
        if json_out:
            out.json(view.to_json())
            return
        from mlp.cli.views import render_block

        for text, style in render_block(view):
            out.line(text, style)


@COMMANDS.command("state", "pull")
def state_pull() -> None:
    """Print the stored state (as JSON) to standard output."""
    from mlp import api

    out = _out()
    with handle_errors(out):
        sys.stdout.write(api.state_pull(Ctx.dir))


@COMMANDS.command("state", "push")
def state_push(state_file: Path = argument(..., help="A state file, as `mlp state pull` writes it."),
               force: bool = option(False, "--force", help="Replace a newer stored state.")) -> None:
    """Store a state file in the app's backend (under the lock)."""
    from mlp import api

    out = _out()
    with handle_errors(out):
        serial = api.state_push(Ctx.dir, state_file, force)
        out.line(f"The state is stored (serial {serial}).", "green")


@COMMANDS.command("render")
def render(out_dir: Path = argument(..., help="The folder to write the manifests to.")) -> None:
    """Write the provider's manifests (Kubernetes objects) to files, like `helm template`."""
    from mlp import api

    out = _out()
    with handle_errors(out):
        written = api.render(Ctx.dir, out_dir)
        out.line(f"Wrote {_count(len(written), 'manifest')} to {out_dir}")


@COMMANDS.command("graph")
def graph(fmt_: str = option("dot", "--format", help="dot, svg or png."),
          out_file: Optional[Path] = option(None, "--out")) -> None:
    """The block graph as DOT text, or SVG/PNG through Graphviz's `dot`."""
    from mlp import api

    out = _out()
    with handle_errors(out):
        result = api.graph(Ctx.dir, fmt_, out_file)
        if isinstance(result, str):
            sys.stdout.write(result)
        else:
            out.line(f"Wrote {out_file}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"

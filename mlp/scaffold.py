"""`mlp init`: write a starter app (or a full example) into a folder."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from mlp.errors import UsageError

EXAMPLES = ("basic", "iris", "churn")


def scaffold(target: Path, example: str | None, force: bool = False) -> list[Path]:
    name = example or "basic"
    if name not in EXAMPLES:
        raise UsageError(f"Unknown example {name!r}", "Examples: " + ", ".join(EXAMPLES) + ".",
                         "Use e.g. mlp init --example iris")
    target.mkdir(parents=True, exist_ok=True)
    if any(target.glob("*.hcl")) and not force:
        raise UsageError(f"{target} already holds an app", "It has .hcl files; init would overwrite them.",
                         "Use an empty folder, or pass --force.")
    root = resources.files("mlp") / "templates" / name
    written: list[Path] = []
    with resources.as_file(root) as src:
        for path in sorted(Path(src).rglob("*")):
            rel = path.relative_to(src)
            if path.is_file() and not any(part.startswith((".", "__")) for part in rel.parts):
                dest = target / path.relative_to(src)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)
                written.append(dest)
    return written

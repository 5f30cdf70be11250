"""What apply prints without a terminal: one line per block, a closing line per model and
the endpoints; epochs and sample rows only with -v (they are always in `mlp logs`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlp import api
from tests.plan.test_for_each import FEATURES, WINE_FEATURES

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _cli(app: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlp", "-C", str(app), *args], capture_output=True, text=True,
                          timeout=600, cwd=ROOT, env={**os.environ, "MLP_IN_AUTOMATION": "1", "NO_COLOR": "1"})


def test_apply_prints_a_line_per_block_and_a_closing_line_per_model(tmp_path: Path) -> None:
    app = tmp_path / "iris"
    shutil.copytree(ROOT / "examples" / "iris", app, ignore=shutil.ignore_patterns(".mlp"))
    try:
        proc = _cli(app, "apply", "--auto-approve", "--var", "epochs=12")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        lines = proc.stdout.splitlines()
        run = [ln for ln in lines if ln.strip()]
        assert len(lines) < 60 and not any(re.search(r"epoch \d+/\d+|sample:", ln) for ln in lines), proc.stdout
        assert any(re.fullmatch(r"  source\.iris: done \[[\d.]+s\]  150 rows, 5 raw columns", ln) for ln in run)
        blocks = [ln for ln in run if re.match(r"  \S+: (done|cached)", ln)]
        assert len(blocks) == 17 - 5  # the raw columns are counted on their source's line
        assert re.search(r"^model\.dnn: accuracy [\d.]+ \(new model\)(, .*)?; best epoch \d+ of 12$", proc.stdout,
                         re.M), proc.stdout
        assert re.search(r"^api\.iris: http://127\.0\.0\.1:\d+ serves model\.dnn \([0-9a-f]{12}\)$", proc.stdout, re.M)
        assert run[-1].startswith("Apply complete! 17 built, 0 reused, 0 destroyed, 0 failed, 0 skipped in ")

        again = _cli(app, "apply", "--auto-approve", "--var", "epochs=13", "-v")
        assert again.returncode == 0, again.stderr
        assert "  model.dnn: epoch 13/13" in again.stdout and "  model.dnn: running" in again.stdout
        assert re.search(r"^model\.dnn: accuracy [\d.]+ \([+-]\d\.\d{4} against [\d.]+ before\)", again.stdout, re.M)
        assert "epoch 1/12" in (app / ".mlp" / "logs" / "model.dnn.log").read_text()  # the first run's epochs
    finally:
        api.destroy(app)


def _wine_like(path: Path, rows: int = 178) -> None:
    """A seeded data set shaped like the wine one: 13 numeric features, three cultivars."""
    import numpy as np

    rng = np.random.default_rng(7)
    labels = rng.integers(0, 3, rows)
    centres = rng.normal(0, 1, (3, len(FEATURES)))
    scale = np.array([13, 2.3, 2.4, 19, 100, 2.3, 2.0, 0.36, 1.6, 5, 0.96, 2.6, 746])
    values = (centres[labels] + rng.normal(0, 0.6, (rows, len(FEATURES)))) * 0.1 * scale + scale
    lines = [",".join(["cultivar", *FEATURES])]
    lines += [",".join([f"c{label}", *(f"{v:.4f}" for v in row)]) for label, row in zip(labels, values)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


WINE_APP = """
provider "local" {}

source "wine" {
  format = "csv"
  path   = "data/wine.csv"
}

raw_column "cultivar" { type = "STRING" }

model "wine" {
  type      = "classification"
  estimator = "dnn"
  target    = raw_column.cultivar
  features  = transformed_column.norm[*]
  hparams   = { hidden_units = [16] }
  training {
    epochs = 15
  }
}

api "wine" { model = model.wine }
""" + WINE_FEATURES


def test_a_wine_sized_app_applies_in_under_sixty_lines(tmp_path: Path) -> None:
    """The issue's held-out size: 13 normalised features (54 blocks) and a dnn, served."""
    app = tmp_path / "wine"
    app.mkdir()
    (app / "app.hcl").write_text(WINE_APP)
    _wine_like(app / "data" / "wine.csv")
    try:
        proc = _cli(app, "apply", "--auto-approve")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        lines = proc.stdout.splitlines()
        assert len(lines) < 60, f"{len(lines)} lines:\n{proc.stdout}"
        assert not any(re.search(r"epoch \d+/\d+|sample:", ln) for ln in lines), proc.stdout
        assert re.search(r"^model\.wine: accuracy [\d.]+ \(new model\)", proc.stdout, re.M), proc.stdout
        assert re.search(r"^api\.wine: http://127\.0\.0\.1:\d+ serves model\.wine", proc.stdout, re.M), proc.stdout
        assert lines[-1].startswith("Apply complete! 56 built, 0 reused"), proc.stdout
    finally:
        api.destroy(app)

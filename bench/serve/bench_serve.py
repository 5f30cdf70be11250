"""Latency and throughput of the prediction API beside a bare FastAPI endpoint, same run.

    python bench/serve/bench_serve.py [--requests 7000] [--rounds 7] [--batches 500] [--seconds 5]

Trains the iris model (`python -m runtime.train`) and writes three bundles: `iris` (the
example's API: four raw columns, three normalized by the pytransform built-ins),
`iris-raw` (the same kind of model fed the raw columns, no transforms, to separate the
transforms' cost from the API's own) and `penguins` (a seeded penguins-like data set: two
string columns, one of them nullable, through `index_string`, and `min_max_scale`, `log`
and `bucketize` on the numeric ones). Each is served by `runtime.localserve.start` (a
real uvicorn process); `bench/serve/bare_app.py` (a FastAPI endpoint returning a constant,
the baseline of the ratios) and `bench/serve/bare_asgi.py` (the same constant from a plain
ASGI callable: the HTTP stack's floor) are started the same way. A keep-alive
`http.client` connection (a light client, so the numbers are the servers') then sends single-instance requests one after another (p50,
p99, requests/s) in rounds that take turns between the servers, and the ratio to the bare
endpoint is taken round by round; then batches of 100 (p50, p99, instances/s), and
batches of 100 from 4 concurrent clients (instances/s). The API's RSS is read from /proc
after the run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench import results as bench_results  # noqa: E402
from runtime import localserve  # noqa: E402
from runtime.bundle import write_bundle  # noqa: E402

IRIS = REPO / "examples" / "iris" / "data" / "iris.csv"
BARE = "bare FastAPI"
ASGI = "bare ASGI"
RAW = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
NORM = RAW[:3]


def _train(tmp: Path, name: str, features: list[str], df: pd.DataFrame) -> dict[str, Any]:
    (tmp / name).mkdir()
    df.to_parquet(tmp / name / "part-0.parquet", index=False)
    spec = {"model": f"model.{name}", "fingerprint": name, "type": "classification",
            "estimator": "dnn", "custom_path": None,
            "features": [{"name": f, "type": "FLOAT"} for f in features],
            "target": {"name": "class", "type": "STRING"}, "hparams": {"hidden_units": [16, 8]},
            "training": {"epochs": 100, "batch_size": 16, "learning_rate": 0.01},
            "balance": "none", "data": str(tmp / name), "out_dir": str(tmp / f"{name}-model")}
    (tmp / f"{name}.json").write_text(json.dumps(spec))
    subprocess.run([sys.executable, "-m", "runtime.train", str(tmp / f"{name}.json")],
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return dict(json.loads((tmp / f"{name}-model" / "result.json").read_text()))


def bundles(tmp: Path) -> dict[str, Path]:
    df = pd.read_csv(IRIS)
    aggs: dict[str, float] = {}
    for c in NORM:
        aggs[f"{c}_mean"], aggs[f"{c}_stddev"] = float(df[c].mean()), float(df[c].std())
        df[f"{c}_norm"] = (df[c] - aggs[f"{c}_mean"]) / aggs[f"{c}_stddev"]
    raw = [{"name": c, "type": "FLOAT", "required": True, "min": 0, "max": 10, "values": None}
           for c in RAW]
    norm = [{"name": f"{c}_norm", "transformer": "normalize", "args": {}, "custom_path": None,
             "output_type": "FLOAT",
             "inputs": {"column": {"kind": "column", "name": c},
                        "mean": {"kind": "aggregate", "name": f"{c}_mean"},
                        "stddev": {"kind": "aggregate", "name": f"{c}_stddev"}}} for c in NORM]
    out = {}
    for name, features, transforms in (("iris", [f"{c}_norm" for c in NORM] + ["petal_width"],
                                         norm), ("iris-raw", RAW, [])):
        result = _train(tmp, name, features, df)
        spec = {"model": f"model.{name}", "fingerprint": name, "type": "classification",
                "raw_columns": raw, "transforms": transforms, "aggregates": aggs,
                "features": features, "labels": result["labels"], "metrics": result["metrics"]}
        out[name] = write_bundle(tmp / f"bundle-{name}", spec, tmp / f"{name}-model" / "saved_model")
    out["penguins"] = penguin_bundle(tmp)
    return out


PENGUIN_RAW = [("island", "STRING", True), ("sex", "STRING", False), ("bill_length_mm", "FLOAT", True),
               ("bill_depth_mm", "FLOAT", True), ("flipper_length_mm", "FLOAT", True), ("body_mass_g", "FLOAT", True)]


def penguins(n: int = 344, seed: int = 0) -> pd.DataFrame:
    """Penguins-like rows: the species decides the island mix and the measurements."""
    rng = np.random.default_rng(seed)
    species = rng.choice(["Adelie", "Chinstrap", "Gentoo"], n, p=[0.44, 0.2, 0.36])
    isl = {"Adelie": [0.3, 0.35, 0.35], "Chinstrap": [0.0, 1.0, 0.0], "Gentoo": [1.0, 0.0, 0.0]}
    base = {"Adelie": (38.8, 18.3, 190.0, 3700.0), "Chinstrap": (48.8, 18.4, 196.0, 3730.0),
            "Gentoo": (47.5, 15.0, 217.0, 5080.0)}
    rows = []
    for sp in species:
        bill, depth, flip, mass = (v * rng.normal(1, 0.05) for v in base[sp])
        sex = rng.choice(["male", "female"]) if rng.random() > 0.03 else None
        rows.append({"island": rng.choice(["Biscoe", "Dream", "Torgersen"], p=isl[sp]), "sex": sex,
                     "bill_length_mm": bill, "bill_depth_mm": depth, "flipper_length_mm": flip,
                     "body_mass_g": mass, "species": sp})
    return pd.DataFrame(rows)


def _col(kind: str, name: str) -> dict[str, str]:
    return {"kind": kind, "name": name}


def penguin_bundle(tmp: Path) -> Path:
    from mlp.builtins.pytransform import apply_chain
    from runtime.bundle import _step

    df = penguins()
    aggs: dict[str, Any] = {
        "island_vocab": df["island"].value_counts().index.tolist(),
        "sex_vocab": df["sex"].dropna().value_counts().index.tolist(),
        "bill_min": float(df["bill_length_mm"].min()), "bill_max": float(df["bill_length_mm"].max()),
        "flipper_bounds": [float(q) for q in df["flipper_length_mm"].quantile([0.25, 0.5, 0.75])]}
    steps = [
        {"name": "island_idx", "transformer": "index_string", "output_type": "INT", "args": {},
         "inputs": {"column": _col("column", "island"), "vocabulary": _col("aggregate", "island_vocab")}},
        {"name": "sex_idx", "transformer": "index_string", "output_type": "INT", "args": {},
         "inputs": {"column": _col("column", "sex"), "vocabulary": _col("aggregate", "sex_vocab")}},
        {"name": "bill_scaled", "transformer": "min_max_scale", "output_type": "FLOAT", "args": {},
         "inputs": {"column": _col("column", "bill_length_mm"), "min": _col("aggregate", "bill_min"),
                    "max": _col("aggregate", "bill_max")}},
        {"name": "mass_log", "transformer": "log", "output_type": "FLOAT", "args": {},
         "inputs": {"column": _col("column", "body_mass_g")}},
        {"name": "flipper_bucket", "transformer": "bucketize", "output_type": "INT", "args": {},
         "inputs": {"column": _col("column", "flipper_length_mm"), "boundaries": _col("aggregate", "flipper_bounds")}}]
    for st in steps:
        st["custom_path"] = None
    df = apply_chain(df, [_step(tmp, st) for st in steps], aggs)  # type: ignore[arg-type]
    cats = {"island_idx": len(aggs["island_vocab"]) + 1, "sex_idx": len(aggs["sex_vocab"]) + 1,
            "flipper_bucket": len(aggs["flipper_bounds"]) + 1}
    features = [{"name": f, "type": "INT", "categorical": True, "categories": c} for f, c in cats.items()] + [
        {"name": f, "type": "FLOAT"} for f in ("bill_scaled", "mass_log", "bill_depth_mm")]
    (tmp / "penguins").mkdir()
    df[[f["name"] for f in features] + ["species"]].to_parquet(tmp / "penguins" / "part-0.parquet", index=False)
    spec = {"model": "model.penguins", "fingerprint": "penguins", "type": "classification", "estimator": "dnn",
            "custom_path": None, "features": features, "target": {"name": "species", "type": "STRING"},
            "hparams": {"hidden_units": [16, 8]}, "training": {"epochs": 40, "batch_size": 16},
            "balance": "none", "data": str(tmp / "penguins"), "out_dir": str(tmp / "penguins-model")}
    (tmp / "penguins.json").write_text(json.dumps(spec))
    subprocess.run([sys.executable, "-m", "runtime.train", str(tmp / "penguins.json")],
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result = json.loads((tmp / "penguins-model" / "result.json").read_text())
    raw = [{"name": n, "type": t, "required": r, "min": None, "max": None, "values": None} for n, t, r in PENGUIN_RAW]
    bundle = {"model": "model.penguins", "fingerprint": "penguins", "type": "classification", "raw_columns": raw,
              "transforms": steps, "aggregates": aggs, "features": [f["name"] for f in features],
              "labels": result["labels"], "metrics": result["metrics"]}
    return write_bundle(tmp / "bundle-penguins", bundle, tmp / "penguins-model" / "saved_model")


def start_bare(tmp: Path, script: str = "bare_app.py") -> localserve.ServerHandle:
    port = localserve.free_port()
    proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "serve" / script),
                             "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=open(tmp / f"{script}.log", "wb"), start_new_session=True)
    handle = localserve.ServerHandle(proc.pid, port, f"http://127.0.0.1:{port}")
    while not localserve.is_running(proc.pid, port):
        time.sleep(0.1)
    return handle


def _post(conn: http.client.HTTPConnection, body: bytes) -> bytes:
    conn.request("POST", "/predict", body, {"content-type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {data[:200]!r}")
    return data


def latencies(port: int, body: bytes, n: int) -> np.ndarray:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(min(200, n)):
        _post(conn, body)
    out = np.empty(n)
    for i in range(n):
        t = time.perf_counter()
        _post(conn, body)
        out[i] = time.perf_counter() - t
    conn.close()
    return out


def concurrent_rate(port: int, body: bytes, clients: int, seconds: float) -> float:
    """Requests per second from `clients` keep-alive connections for `seconds`."""
    counts = [0] * clients
    stop = time.perf_counter() + seconds

    def run(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        while time.perf_counter() < stop:
            _post(conn, body)
            counts[i] += 1
        conn.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bodies(server: str = "") -> tuple[bytes, bytes]:
    """One instance and 100, of the server's own inputs (iris for the bare endpoint)."""
    if server.endswith("penguins"):
        raw = [n for n, _, _ in PENGUIN_RAW]
        rows = [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
                for r in penguins()[raw].to_dict("records")]
    else:
        df = pd.read_csv(IRIS)
        rows = [{c: float(v) for c, v in zip(RAW, r)} for r in df[RAW].to_numpy()]
    return (json.dumps({"instances": rows[:1]}).encode(),
            json.dumps({"instances": (rows * 2)[:100]}).encode())


def measure(servers: dict[str, localserve.ServerHandle], args: argparse.Namespace
            ) -> dict[str, dict[str, Any]]:
    """Single-instance latencies in `args.rounds` rounds that take turns between the servers
    (a slow spell of this shared machine then hits them all alike), then batches."""
    body = {name: bodies(name) for name in servers}
    per_round = max(1, args.requests // args.rounds)
    single: dict[str, list[np.ndarray]] = {name: [] for name in servers}
    for _ in range(args.rounds):
        for name, handle in servers.items():
            single[name].append(latencies(handle.port, body[name][0], per_round))
    results: dict[str, dict[str, Any]] = {}
    for name, handle in servers.items():
        lat = np.concatenate(single[name])
        batch = latencies(handle.port, body[name][1], args.batches)
        rate = concurrent_rate(handle.port, body[name][1], 4, args.seconds)
        results[name] = {
            "p50_1_ms": 1e3 * float(np.median(lat)),
            "p99_1_ms": 1e3 * float(np.percentile(lat, 99)),
            "rps_1": float(1 / lat.mean()),
            "round_p50s_ms": [1e3 * float(np.median(r)) for r in single[name]],
            "p50_100_ms": 1e3 * float(np.median(batch)),
            "p99_100_ms": 1e3 * float(np.percentile(batch, 99)),
            "inst_s_100": float(100 / batch.mean()),
            "inst_s_100_x4": 100 * rate,
            "rss_mb": rss_mb(handle.pid)}
    bare = results[BARE]["round_p50s_ms"]
    for r in results.values():
        ratios = [a / b for a, b in zip(r["round_p50s_ms"], bare)]
        r["ratio_p50_1"] = float(np.median(ratios))
        r["ratio_rounds"] = [round(x, 2) for x in ratios]
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=7000,
                        help="single-instance requests per server, over all rounds")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batches", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", default=str(REPO / "bench" / "out" / "serve.json"))
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mlp-bench-serve-"))
    made = bundles(tmp)
    servers = {BARE: start_bare(tmp)}
    try:
        servers[ASGI] = start_bare(tmp, "bare_asgi.py")
        for name, path in made.items():
            servers[f"mlp {name}"] = localserve.start(path, None, tmp / f"{name}.log")
        results = measure(servers, args)
    finally:
        for handle in servers.values():
            localserve.stop(handle.pid)
        shutil.rmtree(tmp, ignore_errors=True)
    bench_results.write(args.out, results)
    print(table(results))


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| server | p50 1 (ms) | p99 1 (ms) | req/s 1 | p50 100 (ms) | p99 100 (ms) | "
             "inst/s 100 | inst/s 100 x4 clients | p50 1 vs bare | RSS (MB) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['p50_1_ms']:.2f} | {r['p99_1_ms']:.2f} | {r['rps_1']:.0f} | "
                     f"{r['p50_100_ms']:.2f} | {r['p99_100_ms']:.2f} | {r['inst_s_100']:.0f} | "
                     f"{r['inst_s_100_x4']:.0f} | {r['ratio_p50_1']:.2f}x | {r['rss_mb']:.0f} |")
    lines += ["", "p50 1 vs bare: the median over the rounds of the server's p50 over bare's p50 "
              "in the same round. Per round:"]
    lines += [f"- {name}: {r['ratio_rounds']}" for name, r in results.items() if name != BARE]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

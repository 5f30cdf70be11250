"""A cluster of one machine: the pods of the Jobs and Deployments mlp creates, run as local
processes with their manifests' own commands and environment.

`LocalPods` is a `RecordingKubeApi` (it keeps and records every object) whose Jobs and
Deployments really run: each pod's init containers one after the other, then its main
container, with the `command`, `args` and `env` of the document mlp sent, exactly. Only what
cannot be the same outside a pod differs, and `Pod` is the one place that says what:

- a volume's mountPath is a folder of this machine (an emptyDir a fresh one, a ConfigMap's
  the folder its files are written into). Every mountPath in a command, a variable or a file
  mlp wrote for the pod (the ConfigMap's files; the job file the runtime is handed, which the
  stage container pulled from the bucket) names that folder instead. The image's WORKDIR,
  /work, is the work volume's folder too;
- a containerPort is a free port of this machine (a pod has a network of its own, these
  share the machine's);
- what the image gives every container (python and java on PATH) is this machine's.

Nothing else of the machine's environment reaches a container: the Secret an `envFrom`
names (`secrets`) is where a pod's storage credentials come from, as on a cluster. A Job's
log is its main container's stdout and stderr, as `kubectl logs` shows it (the stage
container's, when the main one never started); a Job has succeeded when its main container
exited 0; a Deployment is available once its pod answers GET /healthz with 200, and a new
pod template replaces its pod.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlp_kubernetes.kubeapi import JOB_NAME
from mlp_kubernetes.manifest import Kind, Manifest, ObjectRef
from mlp_kubernetes.names import Selector
from mlp_kubernetes.recording import RecordingKubeApi

IMAGE_WORKDIR = "/work"  # runtime/Dockerfile's WORKDIR
TIMEOUT = 600.0          # seconds a container may take, and a log may wait for its pod
STOPPED = 143            # a container stopped by SIGTERM, as the kubelet reports it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def image_env() -> dict[str, str]:
    """What the image gives every container: python (this venv's) and java on PATH."""
    env = {"PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
           "LANG": "C.UTF-8"}
    if os.environ.get("JAVA_HOME"):
        env["JAVA_HOME"] = os.environ["JAVA_HOME"]
    return env


@dataclass(frozen=True)
class Ran:
    """One container as it ran here: its manifest's document, and its argv, environment and
    working folder on this machine."""

    container: Mapping[str, Any]
    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str


@dataclass
class Pod:
    """One pod of a Job or a Deployment, run on this machine."""

    name: str
    spec: Mapping[str, Any]
    folder: Path
    config_maps: Mapping[str, Mapping[str, str]]
    secrets: Mapping[str, Mapping[str, str]]
    image_env: Mapping[str, str]
    mounts: dict[str, Path] = field(default_factory=dict)   # mountPath -> its folder here
    ports: dict[int, int] = field(default_factory=dict)     # containerPort -> its port here
    ran: list[Ran] = field(default_factory=list)
    exits: dict[str, int] = field(default_factory=dict)     # container -> its exit code
    seconds: dict[str, float] = field(default_factory=dict)   # container -> how long it ran
    lines: list[str] = field(default_factory=list)          # the main container's log
    init_lines: list[str] = field(default_factory=list)
    main_started: bool = False
    started: threading.Event = field(default_factory=threading.Event)  # main started, or the pod ended
    ended: threading.Event = field(default_factory=threading.Event)
    _began: dict[str, float] = field(default_factory=dict)
    _proc: subprocess.Popen[str] | None = None
    _stopping: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- what differs outside a pod --------------------------------------------------------------

    def localize(self, text: str) -> str:
        """`text` with every mountPath (where a path starts) naming its folder here."""
        for path in sorted(self.mounts, key=len, reverse=True):
            text = re.sub(rf"(?<![\w.-]){re.escape(path)}(?![\w.-])", str(self.mounts[path]), text)
        return text

    def in_pod(self, text: str) -> str:
        """A value as the pod sees it: this machine's folders and ports back to the manifest's."""
        for path, folder in sorted(self.mounts.items(), key=lambda kv: len(str(kv[1])), reverse=True):
            text = text.replace(str(folder), path)
        return {str(here): str(inside) for inside, here in self.ports.items()}.get(text, text)

    def environ(self, container: Mapping[str, Any]) -> dict[str, str]:
        env = dict(self.image_env)
        for source in container.get("envFrom") or ():
            ref = source["secretRef"]
            if ref["name"] in self.secrets:
                env.update(self.secrets[ref["name"]])
            else:
                assert ref.get("optional"), f"{self.name}: the Secret {ref['name']} is missing"
        for var in container.get("env") or ():
            assert "value" in var, f"{self.name}: {var['name']} is filled in by a cluster"
            env[var["name"]] = self.localize(str(var["value"]))
        return env

    def argv(self, container: Mapping[str, Any]) -> list[str]:
        ports = {str(inside): str(here) for inside, here in self.ports.items()}
        return [ports.get(w, self.localize(w)) for w in (*container.get("command", ()), *container.get("args", ()))]

    def _prepare(self) -> None:
        volumes: dict[str, Path] = {}
        for v in self.spec.get("volumes") or ():
            assert "emptyDir" in v or "configMap" in v, f"{self.name}: no such volume here: {v}"
            volumes[v["name"]] = self.folder / v["name"]
            volumes[v["name"]].mkdir(parents=True)
        for c in [*(self.spec.get("initContainers") or ()), *self.spec["containers"]]:
            for m in c.get("volumeMounts") or ():
                where = self.mounts.setdefault(m["mountPath"], volumes[m["name"]])
                assert where == volumes[m["name"]], f"{self.name}: {m['mountPath']} is two volumes"
            for p in c.get("ports") or ():
                self.ports[int(p["containerPort"])] = free_port()
        for v in self.spec.get("volumes") or ():
            for name, text in self.config_maps.get(v.get("configMap", {}).get("name", ""), {}).items():
                (volumes[v["name"]] / name).write_text(self.localize(text))

    def _localize_job_file(self, main: Mapping[str, Any]) -> None:
        """The job file the runtime is handed (the main command's last argument), as the stage
        container pulled it from the bucket, names the pod's paths."""
        words = [*main.get("command", ()), *main.get("args", ())]
        path = Path(self.localize(words[-1])) if words and words[-1].endswith(".json") else None
        if path is not None and path.is_file():
            path.write_text(self.localize(path.read_text()))

    # -- running it --------------------------------------------------------------------------------

    def start(self) -> None:
        self._prepare()
        threading.Thread(target=self._run, name=f"pod {self.name}", daemon=True).start()

    def _run(self) -> None:
        try:
            for c in self.spec.get("initContainers") or ():
                proc = self._spawn(c)
                if proc is None:
                    return
                out, _ = proc.communicate(timeout=TIMEOUT)
                self.init_lines += out.splitlines()
                if self._ended(c, proc) != 0:
                    return
            [main] = self.spec["containers"]
            self._localize_job_file(main)
            proc = self._spawn(main)
            if proc is None:
                return
            self.main_started = True
            self.started.set()
            assert proc.stdout is not None
            for line in proc.stdout:
                self.lines.append(line.rstrip("\n"))
            self._ended(main, proc)
        finally:
            self.started.set()
            self.ended.set()

    def _spawn(self, c: Mapping[str, Any]) -> subprocess.Popen[str] | None:
        argv, env, cwd = self.argv(c), self.environ(c), self.localize(IMAGE_WORKDIR)
        with self._lock:
            if self._stopping:
                return None
            self._proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        self.ran.append(Ran(c, tuple(argv), env, cwd))
        self._began[c["name"]] = time.monotonic()
        return self._proc

    def _ended(self, c: Mapping[str, Any], proc: subprocess.Popen[str]) -> int:
        code = proc.wait()
        self.seconds[c["name"]] = time.monotonic() - self._began[c["name"]]
        self.exits[c["name"]] = STOPPED if code < 0 else code
        return self.exits[c["name"]]

    @property
    def code(self) -> int | None:
        """The pod's outcome once it ended: its main container's exit code, or the failed init
        container's."""
        if not self.ended.is_set():
            return None
        main = self.spec["containers"][0]["name"]
        return next((code for code in self.exits.values() if code != 0), self.exits.get(main, STOPPED))

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    # -- talking to it -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        [port] = self.ports.values()
        return f"http://127.0.0.1:{port}"

    def healthy(self) -> bool:
        if not self.main_started or self.ended.is_set():
            return False
        try:
            return self.get("/healthz")[0] == 200
        except OSError:
            return False

    def get(self, path: str) -> tuple[int, Any]:
        return _request(self.url + path)

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        return _request(self.url + path, json.dumps(body).encode())


def _request(url: str, data: bytes | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, data, {"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return int(r.status), json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return int(e.code), json.loads(e.read() or b"null")


class LocalPods(RecordingKubeApi):
    """The KubeApi of a cluster whose pods are this machine's processes, in folders under `root`."""

    def __init__(self, root: Path, secrets: Mapping[str, Mapping[str, str]] | None = None,
                 context: str = "local-pods", spark_master: str | None = None) -> None:
        super().__init__(context)
        self.root = root
        # the master a data unit's job file names, as this machine has it (None: as rendered)
        self.spark_master = spark_master
        self.secrets = {k: dict(v) for k, v in (secrets or {}).items()}
        self.image_env = image_env()  # as the machine is now: what this process sets later stays out
        self.pods: dict[ObjectRef, Pod] = {}
        self.history: list[Pod] = []  # every pod started, in order

    def pod(self, kind: Kind, name: str) -> Pod:
        """The object's pod (its latest)."""
        return next(p for r, p in self.pods.items() if (r.kind, r.name) == (kind, name))

    def sent(self, kind: Kind, name: str) -> Mapping[str, Any]:
        """The last document mlp sent for the object."""
        return next(c.doc for c in reversed(self.calls) if c.kind is kind and c.target == name and c.doc is not None)

    def close(self) -> None:
        """Stop every pod's processes."""
        for pod in self.history:
            pod.stop()

    # -- KubeApi -------------------------------------------------------------------------------------

    def create(self, manifest: Manifest) -> None:
        super().create(manifest)
        self._start(manifest)

    def patch(self, manifest: Manifest) -> None:
        old = self.objects.get(manifest.ref)
        super().patch(manifest)
        if old is None or old.get("spec") != manifest.doc.get("spec"):
            self._start(manifest)

    def delete(self, ref: ObjectRef) -> None:
        super().delete(ref)
        self._stop(ref)

    def delete_by_label(self, kind: Kind, namespace: str, selector: Selector) -> None:
        before = set(self.objects)
        super().delete_by_label(kind, namespace, selector)
        for ref in before - set(self.objects):
            self._stop(ref)

    def logs(self, namespace: str, pods: Selector, container: str) -> Iterator[str]:
        self._call("logs", None, str(pods))
        pod = self.pods[ObjectRef.of(Kind.JOB, namespace, dict(pods.labels).get(JOB_NAME, ""))]
        assert pod.started.wait(TIMEOUT), f"{pod.name} did not start"
        if not pod.main_started:
            yield from pod.init_lines
            return
        seen = 0
        while True:
            ended = pod.ended.wait(0.05)
            fresh = pod.lines[seen:]
            seen += len(fresh)
            yield from fresh
            if ended and seen == len(pod.lines):
                return

    # -- the cluster's side --------------------------------------------------------------------------

    def _start(self, manifest: Manifest) -> None:
        if manifest.kind not in (Kind.JOB, Kind.DEPLOYMENT):
            return
        self._stop(manifest.ref)
        maps = {r.name: {k: self._here(v) for k, v in (d.get("data") or {}).items()}
                for r, d in self.objects.items() if r.kind is Kind.CONFIG_MAP}
        name = f"{manifest.name}-{len(self.history) + 1}"
        pod = Pod(name, manifest.doc["spec"]["template"]["spec"], self.root / name, maps, self.secrets, self.image_env)
        self.pods[manifest.ref] = pod
        self.history.append(pod)
        pod.start()

    def _here(self, text: str) -> str:
        """A ConfigMap's file as this machine runs it: a data job's master replaced, when asked."""
        if self.spark_master is None or '"spark_master"' not in text:
            return text
        job = json.loads(text)
        return json.dumps({**job, "spark_master": self.spark_master})

    def _stop(self, ref: ObjectRef) -> None:
        pod = self.pods.pop(ref, None)
        if pod is not None:
            pod.stop()

    def _settle(self, doc: dict[str, Any]) -> dict[str, Any]:
        kind, meta = doc["kind"], doc["metadata"]
        if kind not in (Kind.JOB.value, Kind.DEPLOYMENT.value):
            return super()._settle(doc)
        meta.setdefault("generation", 1)
        pod = getattr(self, "pods", {}).get(ObjectRef.of(Kind(kind), meta["namespace"], meta["name"]))
        if kind == Kind.JOB.value:
            code = pod.code if pod is not None else None
            doc["status"] = {"active": int(code is None), "succeeded": int(code == 0),
                             "failed": int(code is not None and code != 0)}
        else:
            up = int(pod is not None and pod.healthy())
            doc["status"] = {"observedGeneration": meta["generation"], "replicas": 1, "updatedReplicas": 1,
                             "readyReplicas": up, "availableReplicas": up}
        return doc

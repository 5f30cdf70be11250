"""A source's data unit on the cluster: its Spark driver as a Job.

The driver's container runs the runtime's own entry, `python -m runtime.data /jobs/job.json`,
which builds its Spark session itself (`runtime.sparkenv`); docs/kubernetes.md says why
this is neither spark-submit's launcher pod nor the Spark Operator. Its ConfigMap, mounted at
/jobs, holds:

    job.json              the `runtime.jobs.DataJob`: the app and the saved plan (staged
                          from the bucket into /work), the backend, the unit, the master
    spark-defaults.conf   read through SPARK_CONF_DIR=/jobs before the driver JVM starts
    executor.yaml         the executor pod template, when the unit has executors

With `executors = 0` Spark runs inside the driver pod on `local[N]`. With executors, the
master is the cluster's API server: Spark creates that many executor pods from the
template, owned by the driver pod (so they go when it goes), and the driver and executors
share the artifact cache on `cache_claim`.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from mlp_kubernetes import pods
from mlp_kubernetes.manifest import Kind, Manifest
from mlp_kubernetes.names import Owner, dns_name
from mlp_kubernetes.quantity import whole_cores
from mlp_kubernetes.rbac import driver_account, uses_executors, workload_account
from mlp_kubernetes.specs import AppSpec, DataUnit, Resources
from mlp_kubernetes.storage import APP, PLAN

JOBS = "/jobs"
IN_CLUSTER_MASTER = "k8s://https://kubernetes.default.svc:443"
DRIVER_PORT, BLOCK_MANAGER_PORT = 7078, 7079
HEAP_SHARE = 0.75  # of the driver container's memory, for the JVM heap; the rest is Python's


def data_manifests(spec: AppSpec, unit: DataUnit) -> list[Manifest]:
    owner = Owner(spec.name, unit.source, "data")
    name = spec.object_name("data", unit.name)
    files = {"job.json": job_json(spec, unit), "spark-defaults.conf": spark_defaults(spec, unit)}
    if uses_executors(spec):
        files["executor.yaml"] = yaml.safe_dump(executor_template(spec, unit), sort_keys=False)
    config = Manifest.build(Kind.CONFIG_MAP, spec.namespace, name, owner, {"data": files})
    return [config, Manifest.build(Kind.JOB, spec.namespace, name, owner, _job_body(spec, unit, owner, name))]


def driver_resources(spec: AppSpec) -> Resources:
    return Resources(spec.settings.driver_cpu, spec.settings.driver_memory)


def master(spec: AppSpec) -> str:
    return IN_CLUSTER_MASTER if uses_executors(spec) else f"local[{whole_cores(spec.settings.driver_cpu)}]"


def job_json(spec: AppSpec, unit: DataUnit) -> str:
    from runtime.jobs import BackendRef, DataJob

    job = DataJob(f"file://{pods.WORK}/app", f"file://{pods.WORK}/plan/plan.json",
                  BackendRef(spec.storage.kind, dict(spec.storage.settings)), unit.unit, master(spec))
    return json.dumps(job.to_json(), indent=1, sort_keys=True) + "\n"


def spark_defaults(spec: AppSpec, unit: DataUnit) -> str:
    heap = int(spec.settings.driver_memory.bytes * HEAP_SHARE) // 2**20
    conf = {**spec.storage.spark_conf(), "spark.driver.memory": f"{heap}m", "spark.pyspark.python": "python"}
    if uses_executors(spec):
        conf.update(_executor_conf(spec, unit))
    return "".join(f"{k}={v}\n" for k, v in sorted(conf.items()))


def _executor_conf(spec: AppSpec, unit: DataUnit) -> dict[str, str]:
    s = spec.settings
    return {
        "spark.kubernetes.namespace": spec.namespace,
        "spark.kubernetes.container.image": spec.image,
        "spark.kubernetes.executor.podTemplateFile": f"{JOBS}/executor.yaml",
        "spark.kubernetes.executor.podTemplateContainerName": "executor",
        "spark.kubernetes.executor.podNamePrefix": dns_name(spec.name, "exec", unit.name, limit=47),
        "spark.kubernetes.executor.deleteOnTermination": "true",
        "spark.kubernetes.driver.service.deleteOnTermination": "false",
        "spark.executor.instances": str(s.executors),
        "spark.executor.cores": str(s.executor_cores),
        "spark.executor.memory": s.executor_memory.spark,
        "spark.kubernetes.executor.request.cores": str(s.executor_cores),
        "spark.executorEnv.MLP_CACHE_DIR": pods.CACHE,
        "spark.driver.bindAddress": "0.0.0.0",
        "spark.driver.port": str(DRIVER_PORT),
        "spark.blockManager.port": str(BLOCK_MANAGER_PORT),
    }


def executor_template(spec: AppSpec, unit: DataUnit) -> dict[str, Any]:
    """The pod Spark starts each executor from (it adds the image, command and sizes)."""
    container = {"name": "executor", "env": pods.env(spec, ("PYSPARK_PYTHON", "python")),
                 "envFrom": pods.env_from(spec), "securityContext": pods.container_security(),
                 "volumeMounts": pods.work_mounts(cache=True)}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"labels": pods.pod_labels(spec, Owner(spec.name, unit.source, "executor"))},
            "spec": {"serviceAccountName": workload_account(spec), "automountServiceAccountToken": False,
                     "securityContext": pods.pod_security(), "containers": [container],
                     "volumes": pods.work_volumes(spec, spec.settings.cache_claim)}}


def _driver_env(spec: AppSpec) -> list[dict[str, Any]]:
    out = pods.env(spec, ("SPARK_CONF_DIR", JOBS), ("PYSPARK_PYTHON", "python"))
    if not uses_executors(spec):
        return out
    # Kubernetes expands $(VAR) from the variables before it: executors call the driver back
    # at its pod's IP, and the executors are owned by the driver pod.
    return out + [
        {"name": "MLP_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "MLP_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "PYSPARK_SUBMIT_ARGS", "value": "--conf spark.driver.host=$(MLP_POD_IP) "
                                                 "--conf spark.kubernetes.driver.pod.name=$(MLP_POD_NAME) pyspark-shell"},
    ]


def _job_body(spec: AppSpec, unit: DataUnit, owner: Owner, name: str) -> dict[str, Any]:
    shared = uses_executors(spec)
    driver = {"name": "driver", "image": spec.image, "command": ["python", "-m", "runtime.data", f"{JOBS}/job.json"],
              "env": _driver_env(spec), "envFrom": pods.env_from(spec),
              "resources": driver_resources(spec).to_doc(), "securityContext": pods.container_security(),
              "volumeMounts": [*pods.work_mounts(cache=shared), {"name": "job", "mountPath": JOBS, "readOnly": True}]}
    if shared:
        driver["ports"] = [{"name": "driver", "containerPort": DRIVER_PORT},
                           {"name": "blockmanager", "containerPort": BLOCK_MANAGER_PORT}]
    stage = pods.stage_container(spec, (pods.Pull(APP, f"{pods.WORK}/app"),
                                        pods.Pull(PLAN, f"{pods.WORK}/plan/plan.json")), cache=shared)
    pod = pods.pod_spec(spec, driver_account(spec), [driver], [stage], "Never",
                        cache_claim=spec.settings.cache_claim if shared else "", token=shared)
    pod["volumes"].append({"name": "job", "configMap": {"name": name}})
    return {"spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": spec.settings.job_ttl_seconds,
                     "template": {"metadata": {"labels": pods.pod_labels(spec, owner)}, "spec": pod}}}

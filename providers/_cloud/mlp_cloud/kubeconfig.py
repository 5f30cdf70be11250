"""A kubeconfig for one cluster whose credentials come from a command (`aws eks get-token`,
`gke-gcloud-auth-plugin`), so the file holds no secret: the cloud's CLI finds the caller's
own credentials each time a token is needed. Written as JSON, which is YAML too."""

from __future__ import annotations

import json
from collections.abc import Sequence

EXEC_API = "client.authentication.k8s.io/v1beta1"


def exec_kubeconfig(name: str, server: str, ca_data: str, command: str, args: Sequence[str] = (),
                    provide_cluster_info: bool = False, hint: str = "") -> str:
    user = {"exec": {"apiVersion": EXEC_API, "command": command, "args": list(args),
                     "interactiveMode": "Never", "provideClusterInfo": provide_cluster_info,
                     **({"installHint": hint} if hint else {})}}
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": name, "preferences": {},
           "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": ca_data}}],
           "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
           "users": [{"name": name, "user": user}]}
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"

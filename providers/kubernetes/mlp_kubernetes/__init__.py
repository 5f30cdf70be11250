"""mlp's Kubernetes provider: an app's Spark data units, training and apis on any cluster.

    provider "kubernetes" { kubeconfig, context, namespace, image, parallelism }

The modules, in the order data flows through them:

    settings     the provider block, read and checked (`KubeSettings`); `metadata` checks
                 its labels and annotations (workload identity)
    specs        the app's workloads as typed values (`AppSpec`); `appspec` makes one
    manifests    every Kubernetes object of an app (`Manifest`), built by `rbac`,
                 `datajob` (a source's Spark driver), `runjob` (training, predictions, the
                 rollout gate), `serving` (apis)
    render       `render(app_dir, out_dir)`: the manifests as YAML files, like `helm template`
    kubeapi      the seam to a cluster (`KubeApi`); `client` on the kubernetes client,
                 `recording` in memory
    cluster      `apply_manifests`, `destroy`: the cluster made to hold what was rendered
    podruns      a runtime job's Job run: inputs to the bucket, its log followed; `training`
                 and `modeljobs` (predictions, the gate) around it
    provider     `KubernetesProvider`, mlp's provider interface on all of the above
    stage        what a pod runs around the runtime's commands: inputs in, outputs out

Importing the package (as mlp does at validate, through its entry point) loads none of them:
the kubernetes client is imported only when a cluster is asked something, PyYAML only when
manifests are written. `mlp render DIR` is `mlp_kubernetes.render.render`.
"""

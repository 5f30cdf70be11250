"""What mlp's cloud providers share: `provider "aws"`, `"gcp"` and `"azure"` are each a Pulumi
program (a cluster, its node pools, a bucket, an identity, a registry) run through the
Automation API, and then the Kubernetes workload layer on the cluster it made.

The modules, in the order data flows through them:

    settings     the provider block's `cluster { node_type, max_nodes, gpu_node_type }`
    infra        `Infra`: what a cloud's program is built from (the app's name, sizes, GPUs)
    stack        `StackRef`: one stack per app and provider, its state in the app's backend
    driver       the seam to Pulumi (`PulumiDriver`), and the Pulumi CLI's absence
    automation   `AutomationDriver`: the seam on `pulumi.automation`
    recording    `RecordingDriver`: records what would be sent, answers scripted events
    events       the engine's per-resource steps as mlp's `InfraChange`s
    handoff      the stack's outputs made into a bound `KubernetesProvider`
    provider     `CloudProvider`: mlp's provider interface; each cloud subclasses it
    mocks        for tests: a program run under `pulumi.runtime.set_mocks`, recorded

Importing a cloud's provider module (as mlp does at validate, through its entry point)
imports no Pulumi package: they are imported by the functions that run a program.
"""

"""What every cloud provider shares: the stack's name and backend URL, the engine's steps as
infrastructure changes, the block's sizes, and the Automation API driver without a CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlp.config.blocks import BackendConfig
from mlp.errors import UsageError
from mlp.providers import InfraChange
from mlp_cloud.driver import Step
from mlp_cloud.events import changes_of, steps_of
from mlp_cloud.infra import resource_name
from mlp_cloud.settings import ClusterSize
from mlp_cloud.stack import StackRef, backend_url
from mlp_cloud.testing import step_event, summary_event, urn


@pytest.mark.parametrize(("kind", "settings", "url"), [
    ("s3", {"bucket": "b", "prefix": "apps/iris", "region": "eu-west-1", "endpoint": ""},
     "s3://b/apps/iris/pulumi?region=eu-west-1"),
    ("s3", {"bucket": "b", "prefix": "", "region": "us-east-1", "endpoint": "http://127.0.0.1:9000"},
     "s3://b/pulumi?region=us-east-1&endpoint=http%3A%2F%2F127.0.0.1%3A9000&s3ForcePathStyle=true"),
    ("gcs", {"bucket": "b", "prefix": "/apps/iris/"}, "gs://b/apps/iris/pulumi"),
    ("azurerm", {"account": "acct", "container": "c", "prefix": "apps/iris"},
     "azblob://c/apps/iris/pulumi?storage_account=acct"),
], ids=["s3", "s3 endpoint", "gcs", "azurerm"])
def test_the_stack_state_is_under_the_backend_prefix(kind: str, settings: dict[str, str], url: str) -> None:
    assert backend_url(BackendConfig(kind, None, settings), Path("/apps/iris")) == url


def test_a_local_backend_keeps_the_stack_in_the_app_folder(tmp_path: Path) -> None:
    assert backend_url(BackendConfig("local", None, {"path": ".mlp"}), tmp_path) == f"file://{tmp_path}/.mlp/pulumi"


def test_steps_become_one_change_per_resource_sorted_and_same_is_left_out() -> None:
    s = "iris-aws"
    events = [step_event("same", urn(s, "aws:ec2/vpc:Vpc", "iris-vpc")),
              step_event("delete-replaced", urn(s, "aws:s3/bucket:Bucket", "iris-data")),
              step_event("replace", urn(s, "aws:s3/bucket:Bucket", "iris-data"), keys=("bucket",)),
              step_event("update", urn(s, "aws:eks/cluster:Cluster", "iris-cluster"), diffs=("version", "tags")),
              step_event("read", urn(s, "aws:iam/role:Role", "existing")),
              step_event("import", urn(s, "aws:ecr/repository:Repository", "iris-runtime")),
              summary_event()]
    assert changes_of(steps_of(events)) == (
        InfraChange("aws:ecr/repository:Repository::iris-runtime", "create", "imported"),
        InfraChange("aws:eks/cluster:Cluster::iris-cluster", "update", "changed (tags, version)"),
        InfraChange("aws:s3/bucket:Bucket::iris-data", "replace", "replace_needed (bucket)"),
    )


def test_a_step_is_named_by_the_last_part_of_its_urn() -> None:
    step = Step(urn("s", "aws:s3/bucket:Bucket", "iris-data", "mlp:aws:Cluster"), "aws:s3/bucket:Bucket", "create")
    assert step.name == "iris-data"


@pytest.mark.parametrize(("app", "name"), [("iris", "iris"), ("Churn_Model v2", "churn-model-v2"),
                                           ("a" * 30, "a" * 20), ("___", "app")],
                         ids=["plain", "mixed", "long", "nothing left"])
def test_resource_names_are_short_dns_labels(app: str, name: str) -> None:
    assert resource_name(app) == name


def test_cluster_sizes_default_per_cloud_when_the_block_leaves_them_out() -> None:
    defaults = ClusterSize("m5.xlarge", 5, "g4dn.xlarge")
    assert ClusterSize.of({}, defaults) == defaults
    assert ClusterSize.of({"cluster": {"max_nodes": 2}}, defaults) == ClusterSize("m5.xlarge", 2, "g4dn.xlarge")


def test_the_automation_api_without_the_cli_is_the_install_message(tmp_path: Path) -> None:
    """The real driver, on this machine (no Pulumi CLI): what the Automation API raises."""
    from mlp_cloud.automation import AutomationDriver
    from mlp_cloud.driver import pulumi_cli

    assert pulumi_cli() is None, "this test expects a machine without the Pulumi CLI"
    ref = StackRef("iris-aws", f"file://{tmp_path}/pulumi", {"aws:region": "eu-west-1"}, work_dir=str(tmp_path / "ws"))
    with pytest.raises(UsageError) as err:
        AutomationDriver("aws").outputs(ref)
    assert err.value.summary == "The aws provider cannot read its stack without the Pulumi CLI"


def test_importing_the_providers_imports_no_pulumi() -> None:
    code = ("import sys, mlp_cloud.provider, mlp_aws.provider, mlp_gcp.provider, mlp_azure.provider; "
            "print(sorted(m for m in sys.modules if m.startswith('pulumi')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_pulumi_failure_is_an_error_naming_the_stack_and_its_log(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The real Automation API, against a stand-in `pulumi` that reports its version and
    refuses everything else, as a CLI without credentials for the backend would."""
    from mlp_cloud.automation import AutomationDriver
    from mlp_cloud.driver import PulumiError

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    cli = bin_dir / "pulumi"
    cli.write_text('#!/bin/sh\nif [ "$1" = version ]; then echo v3.272.0; exit 0; fi\n'
                   'echo "error: could not open bucket s3://mlp-state: NoCredentialProviders" >&2\nexit 255\n')
    cli.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    ref = StackRef("iris-aws", "s3://mlp-state/apps/iris/pulumi?region=eu-west-1", {"aws:region": "eu-west-1"},
                   work_dir=str(tmp_path / "ws"))
    with pytest.raises(PulumiError) as err:
        AutomationDriver("aws").preview(ref, lambda: None)
    assert err.value.summary == "Pulumi's preview of the stack iris-aws failed"
    assert "NoCredentialProviders" in err.value.detail
    assert err.value.hint == f"See {tmp_path / 'ws' / 'preview.log'}"

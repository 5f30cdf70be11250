"""`AwsProvider`: an app on EKS, through its Pulumi stack and the Kubernetes layer."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mlp_cloud.driver import Program
from mlp_cloud.infra import Infra
from mlp_cloud.provider import Cloud, CloudProvider
from mlp_cloud.settings import ClusterSize, Shape

if TYPE_CHECKING:
    from mlp.config.blocks import ProviderConfig
    from mlp.diagnostics import Diagnostics

REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
INSTANCE = Shape(re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$"), "m5.xlarge")
CLOUD = Cloud("aws", "s3", ClusterSize("m5.xlarge", 5, "g4dn.xlarge"), INSTANCE, Shape(INSTANCE.pattern, "g4dn.xlarge"),
              {"aws": "pulumi-aws"})


class AwsProvider(CloudProvider):
    cloud = CLOUD

    @property
    def region(self) -> str:
        return str(self.config.settings.get("region") or "")

    def stack_config(self) -> Mapping[str, str]:
        return {"aws:region": self.region}

    def program(self, infra: Infra) -> Program:
        region = self.region

        def run() -> None:
            from mlp_aws.program import program

            program(infra, region)

        return run

    def check_place(self, config: ProviderConfig, diags: Diagnostics) -> None:
        region = str(config.settings.get("region") or "")
        if not REGION.match(region):
            diags.error(f'"{region}" is not an AWS region', config.pos, "The cluster and its bucket are made there.",
                        'Use e.g. region = "eu-west-1"', 'in provider "aws"')


__all__ = ["AwsProvider"]

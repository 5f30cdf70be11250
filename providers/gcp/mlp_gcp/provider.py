"""`GcpProvider`: an app on GKE, through its Pulumi stack and the Kubernetes layer."""

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

PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
REGION = re.compile(r"^[a-z]+-[a-z]+\d+$")
CLOUD = Cloud("gcp", "gcs", ClusterSize("e2-standard-4", 5, "nvidia-tesla-t4"),
              Shape(re.compile(r"^[a-z][a-z0-9]*-[a-z0-9-]+$"), "e2-standard-4"),
              Shape(re.compile(r"^nvidia-[a-z0-9-]+$"), "nvidia-tesla-t4"), {"gcp": "pulumi-gcp"})
WHERE = 'in provider "gcp"'


class GcpProvider(CloudProvider):
    cloud = CLOUD

    @property
    def project(self) -> str:
        return str(self.config.settings.get("project") or "")

    @property
    def region(self) -> str:
        return str(self.config.settings.get("region") or "")

    def stack_config(self) -> Mapping[str, str]:
        return {"gcp:project": self.project, "gcp:region": self.region}

    def program(self, infra: Infra) -> Program:
        project, region = self.project, self.region

        def run() -> None:
            from mlp_gcp.program import program

            program(infra, project, region)

        return run

    def check_place(self, config: ProviderConfig, diags: Diagnostics) -> None:
        s = config.settings
        project, region = str(s.get("project") or ""), str(s.get("region") or "")
        if not PROJECT.match(project):
            diags.error(f'"{project}" is not a Google Cloud project id', config.pos,
                        "A project id is 6 to 30 lower-case letters, digits and '-', starting with a letter.",
                        'Use the id, not the name: e.g. project = "ml-platform-123"', WHERE)
        if not REGION.match(region):
            diags.error(f'"{region}" is not a Google Cloud region', config.pos,
                        "The cluster, its bucket and its registry are made there (a region, not a zone).",
                        'Use e.g. region = "europe-west1"', WHERE)


__all__ = ["GcpProvider"]

"""`terraform plan` and `terraform version` for readiness, on top of the drill's Terraform driver.

Planning never changes infrastructure; `-lock=false` also keeps a daily readiness run from holding
the state lock a drill's apply may need at the same moment (plan writes no state). The plan's human
output (-no-color) is returned for drill.readiness.parse_plan; it is not streamed to a log.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from drivers.provisioner import TerraformCli


@dataclass(frozen=True)
class PlanRun:
    exit_code: int  # 0 = no changes, 2 = changes proposed (-detailed-exitcode)
    stdout: str


class PlanningTerraform(TerraformCli):
    def plan(self, targets: Sequence[str] = ()) -> PlanRun:
        """The plan (of `targets` and their dependencies only, with -target)."""
        self.init()
        res = self._run(
            ["plan", "-detailed-exitcode", "-input=false", "-no-color", "-lock=false", *(f"-target={t}" for t in targets)],
            stream=False, ok_codes=(0, 2),
        )
        return PlanRun(res.returncode, self.mask(res.stdout))

    def version(self) -> str:
        res = self._run(["version"], stream=False)
        return (res.stdout.strip().splitlines() or [""])[0]

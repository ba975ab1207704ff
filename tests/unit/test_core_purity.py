"""The core package imports no cloud SDK, Locust or pytest: auditors read it, tests need no lab."""
from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("boto3", "botocore", "moto", "azure", "kubernetes", "locust", "gevent", "httpx", "pytest", "lab", "drivers")


def test_core_modules_import_no_sdk() -> None:
    code = (
        "import sys\n"
        "import drill, drill.config, drill.timeline, drill.classify, drill.ledger, drill.evidence, drill.preflight\n"
        "import drill.runbook, drill.checklist\n"
        "import drill.bundle, drill.attestation, drill.chain, drill.seal, drill.history, drill.history_chart\n"
        "import drill.junit_properties, drill.finalize\n"
        "import drill.vantages, drill.clocks\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

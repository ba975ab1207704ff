"""The `drill` command line: the composition root that wires the core, the drivers and the lab together.

Why a package of its own, outside `drill/`: `drill/` is the SDK-free core (timeline, ledger, evidence,
checklist, report, attestation, …) that auditors read and unit tests import without a lab; the
command line is what puts that core to work with the drivers (boto3, the Azure SDK, kubernetes,
Locust) and the embedded lab — `drill lab up` starts the lab, `drill unwind` replays a ledger through
drivers.actions, `drill unlock` takes drivers.safety's lock. Inside `drill/` it was the one core
module importing `lab` and `drivers`, so the core's purity test had to leave it out; out here the
core has no exception (tests/unit/test_core_purity.py checks every module of `drill/`), and
the dependency points one way only: drill_cli → drill, drivers, lab; never the reverse. pytest's
composition root is the other one: conftest.py and steps/.

Why `drill_cli` and not `cli`: the package is installed at the top level of site-packages beside
`drill`, `drivers` and `lab`, where a bare `cli` is a name other distributions use too.

  drill …                    the console script (pyproject.toml [project.scripts]: drill_cli.main:main)
  python -m drill_cli …      the same, from a checkout without the script on PATH (tests use this)

drill_cli/main.py holds the subcommands and the argument parser. It may import anything, yet it
still imports the drivers and the lab inside the subcommands that need them: importing it loads no
cloud SDK, Locust or matplotlib (tests/unit/test_chart.py checks it), so `drill verify` and
`drill history --verify` on an auditor's copy do not pay for them.
"""

"""`python -m drill_cli …`: the `drill` command without its console script on PATH."""
from drill_cli.main import main

raise SystemExit(main())

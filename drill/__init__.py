"""dr-drill core: target configuration, timeline maths, rollback ledger and evidence.

Nothing here imports a cloud SDK, Locust or pytest: the core is the part an auditor can read
and the part every test can exercise without a lab.
"""

__version__ = "0.1.0"

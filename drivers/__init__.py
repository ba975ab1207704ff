"""Drivers: one module per outside system, built on the field's SDKs. No pytest imports here.

The same driver code runs against real AWS/Azure and against the lab: only the target's
endpoints and credentials differ.
"""

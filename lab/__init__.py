"""The embedded lab: a local copy of the seed topology that the same drill runs against.

Each part emulates one cloud service faithfully enough that the production SDKs cannot tell;
`lab.topologies (one assembly per topology)` starts, watches and stops them all.
"""

"""Contract suites: one per protocol, run against every implementation of it.

Each suite lists its implementations as factories; a new backend joins by adding one factory.
"""

"""simulator: the world and its traffic.

The :class:`~simulator.world.World` protocol and the synthetic world that implements it,
the logged-traffic schema and its validating reader, arrivals, logging policies, the simpy
engine, replay of logged arrivals, generation of logged traffic, and converters of public
log formats.

Layer 2 of ``core → simulator → models → abtest → benchmarks``: may import ``core``.
"""

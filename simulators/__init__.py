"""A simulated park: real Modbus TCP devices on loopback, deterministic from a seed, with ground truth.

definition.py (park YAML, checked) -> park.py + physics.py (the model) -> registers.py (profile
encoding) -> engine.py (ticks, faults, ground-truth rows) -> runner.py (pymodbus servers, tick loop,
thread runner) ; ground_truth.py (log and reader) ; edge_configs.py ; cli.py (``parkmon sim``).
See docs/simulator.md.
"""

"""A simulated park: real Modbus TCP devices on loopback, deterministic from a seed, with ground truth."""

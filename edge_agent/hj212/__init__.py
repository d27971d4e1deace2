"""HJ 212-2017 on the gateway: a TCP server data loggers dial into (drivers/hj212.py reads it) and a
forwarder that acts as a data logger towards a regulator's platform (forwarder.py)."""

"""The MQTT side of ingest: the consumer (broker -> store), its settings, the broker parkmon starts for the
demo and tests, and the logins / ACL it generates for production."""

"""Ingest: MQTT consumer, storage and the HTTP API (the 数据感知平台 and 数据存储中心)."""

"""IEC 60870-5-104 controlling station (client): apci.py frames, asdu.py types, link.py one connection with
its timers and windows, driver.py the gateway's driver and its config (docs/iec104.md)."""

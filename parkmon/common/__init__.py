"""The ground floor every layer shares: the wire contract, the metric vocabulary, quality codes, the
HJ 212 codec and its validity rules, the clock, secrets masking and small helpers. Imports nothing of parkmon."""

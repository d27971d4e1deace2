"""Analytics: the indicators (``analytics.indicators``: one module each, its pure computation and its feed
from the store, in one registry), the targets and factors they use, the meters they read (``meters``,
``counters``, ``rollup_feed``), the reports, the Grafana boards' hourly feed and the alerts."""

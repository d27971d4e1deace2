"""Grafana dashboards as code (issue 8). Nothing here yet: the live share is on the API and the demo's terminal."""

"""The Grafana dashboard and the alert rules of deploy/: every query names metrics that
/metrics exposes (or the delivery-lag metrics announced for destinations) and parses as
PromQL; panels do not overlap. The rules' own behaviour is tested by promtool (make test).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask.testing import FlaskClient

from app.ops import health

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "data-streams.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
# Metrics a panel may show before they exist: destinations (issue 14) add them.
ANNOUNCED = {"ds_delivery_lag_versions", "ds_delivery_lag_seconds"}
# Grafana's variables, replaced by values Prometheus accepts.
VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "6h", "$stream": ".*"}
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count"),
            "gauge": ("",)}


def panels() -> list[dict[str, Any]]:
    return [panel for panel in json.loads(DASHBOARD.read_text())["panels"]
            if panel["type"] != "row"]


def queries() -> dict[str, str]:
    """Return {where: expression} of every panel target and every alert rule."""
    found = {f"panel {panel['title']!r} {target['refId']}": target["expr"]
             for panel in panels() for target in panel["targets"]}
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        found.update({f"alert {rule['alert']}": rule["expr"] for rule in group["rules"]})
    return found


def exposed(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Return every series name /metrics can expose, from its TYPE lines."""
    monkeypatch.setattr(health, "consumers", lambda celery_app, timeout: {"fetch": []})
    text = client.get("/metrics").get_data(as_text=True)
    names = {"up"}  # Prometheus's own, per scrape target
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        base = name.removesuffix("_total")
        names.update(base + suffix for suffix in SUFFIXES.get(kind, ("",)))
    return names


def test_every_query_names_metrics_that_exist(client: FlaskClient,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    names = exposed(client, monkeypatch) | ANNOUNCED
    for where, expr in queries().items():
        used = set(re.findall(r"\b(ds_[a-z0-9_]+|up(?=\{))", expr))
        assert used, where
        assert used <= names, f"{where} names unknown metrics {used - names}"


def test_every_panel_is_described_uses_the_datasource_variable_and_has_room() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in panels():
        assert len(panel["description"]) > 40, panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        box = panel["gridPos"]
        cells = {(box["x"] + dx, box["y"] + dy) for dx in range(box["w"]) for dy in range(box["h"])}
        assert box["x"] + box["w"] <= 24 and not cells & taken, f"{panel['title']} overlaps"
        taken |= cells


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool missing (make test installs Debian's prometheus)")
def test_every_query_parses_as_promql(tmp_path: Path) -> None:
    rules = []
    for index, expr in enumerate(queries().values()):
        for variable, value in VARIABLES.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"check:query{index}", "expr": expr})
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "queries", "rules": rules}]}))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr

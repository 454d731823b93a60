"""Ready-made monitoring: the Grafana dashboard and the Prometheus alert rules use only metric names
the bot serves (read from a real `/metrics` of the real services), take the gauges every process
reads alike from the database with `max`, never `sum`; the rules file follows Prometheus's rule-file
format (promtool is not on PyPI: the schema below is written from Prometheus's documentation of
recording and alerting rules); the compose profile `monitoring` starts both, scraping every bot."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import DATABASE_GAUGES, Metrics
from bot.models import Failure, NewJob
from bot.product import Mode
from bot.store import Store
from tests.wiring import make_services, make_settings

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "stembot.json"
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"

# PromQL's functions, aggregations and keywords (what is not a metric name in an expression).
PROMQL_WORDS = frozenset(
    """sum min max avg count stddev stdvar topk bottomk quantile count_values group by without on
    ignoring group_left group_right and or unless offset bool rate irate increase delta idelta deriv
    histogram_quantile clamp_min clamp_max clamp abs ceil floor round exp ln log2 log10 sqrt time
    vector scalar absent absent_over_time avg_over_time max_over_time min_over_time sum_over_time
    count_over_time last_over_time label_replace label_join sort sort_desc predict_linear resets
    changes timestamp humanize humanizeDuration inf nan""".split()
)
PROMETHEUS_OWN = frozenset({"up"})  # made by Prometheus for every target, not served by the bot


def expressions() -> list[tuple[str, str]]:
    """(where, PromQL) of every dashboard panel target and every alert rule."""
    found = []
    for panel in json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]:
        for target in panel["targets"]:
            found.append((f"panel {panel['title']!r}", target["expr"]))
    for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]:
        for rule in group["rules"]:
            found.append((f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]))
    return found


def metric_names(expr: str) -> set[str]:
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", text)  # grouping labels
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges
    text = re.sub(r"\boffset\s+\d+[smhdwy]", " ", text)
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text))
    return {w for w in words if w not in PROMQL_WORDS}


async def served_names(tmp_path: Path) -> set[str]:
    """Every sample name a real bot's `/metrics` serves, after some real work (a split that
    failed, one that is still running), as Prometheus would read them."""
    metrics = Metrics()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = await Store.open(tmp_path / "metrics.db")
    try:
        async with aiohttp.ClientSession() as session:
            services = make_services(
                store, session, make_settings(callback_port=port, monthly_budget=5000), metrics=metrics
            )
            job = (
                await store.reservations.reserve(NewJob(1, 2, 3, Mode.SEPARATE_VOCAL, "t", "a", 10, "cb"))
            ).job
            assert job is not None
            await store.reservations.settle(job.id, succeeded=False, failure=Failure.SEPARATION_FAILED)
            await store.reservations.reserve(NewJob(1, 2, 3, Mode.SPLIT_STEM, "t", "b", 50, "cb2"))
            metrics.api_call("record-info", 500)
            metrics.callbacks.labels(verdict="invalid").inc()
            metrics.delivery_lag.observe(1.0)
            metrics.credits.labels(kind="reserved").inc(10)
            metrics.set_account_credits(1234, sandbox=False)
            await services.web.start()
            try:
                async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                    assert response.status == 200
                    text = await response.text()
            finally:
                await services.web.stop()
            await services.operations.stop()
    finally:
        await store.close()
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


async def test_every_metric_the_dashboard_and_the_rules_use_is_served(tmp_path: Path) -> None:
    served = await served_names(tmp_path)
    used = {name for _, expr in expressions() for name in metric_names(expr)}

    assert used - PROMETHEUS_OWN, "no metric found: the name extraction is broken"
    assert sorted(used - served - PROMETHEUS_OWN) == []
    for needed in (
        "stembot_keeps_unfinished",
        "stembot_monthly_budget",
        "stembot_job_takeovers_total",
        "stembot_jobs_held",
        "stembot_api_account_credits",
        "stembot_oldest_unfinished_job_age_seconds",
    ):
        assert needed in used and needed in served, needed


def test_the_api_errors_alert_leaves_out_the_advisory_track_lookups() -> None:
    """`/split` with a task id alone and the `audio_id` suggestions look tasks up ("tracks"); a
    task the API does not know answers code 400, which is a member's typo or another account's
    task, not the API failing (the lookup is advisory and counted by its own metric). Counted as
    failed calls, a few such lookups in a quiet hour would fire "a quarter of the calls to the
    separation API fail"."""
    rules = {
        rule.get("alert"): rule["expr"]
        for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
    }
    expr = rules["StemBotApiErrors"]
    uses = re.findall(r"stembot_api_calls_total(\{[^}]*\})?", expr)
    assert len(uses) == 2, expr  # the failed calls over all calls
    for matchers in uses:
        assert 'endpoint!="tracks"' in matchers, expr


def test_the_name_extraction_finds_names_and_skips_functions_and_labels() -> None:
    expr = 'histogram_quantile(0.95, sum by (le) (rate(stembot_x_bucket{code!="200"}[5m]))) > up offset 1h'
    assert metric_names(expr) == {"stembot_x_bucket", "up"}


@pytest.mark.parametrize(("where", "expr"), expressions(), ids=lambda v: v if len(v) < 40 else None)
def test_gauges_every_process_reads_alike_are_taken_with_max_never_sum(where: str, expr: str) -> None:
    for name in metric_names(expr) & DATABASE_GAUGES:
        for match in re.finditer(rf"\b{name}\b", expr):
            before = expr[: match.start()]
            assert re.search(r"\bmax(\s+by\s*\([^)]*\))?\s*\(\s*(delta\(\s*)?$", before), (
                f"{where}: {name} must be aggregated across processes with max(): {expr}"
            )


# -- the rule file, against Prometheus's documented format ------------------------------------------

DURATION = re.compile(r"^(?!$)(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
GROUP_KEYS = {"name", "interval", "limit", "query_offset", "labels", "rules"}
ALERT_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
RECORD_KEYS = {"record", "expr", "labels"}


def rule_file_problems(document: Any) -> list[str]:
    """What Prometheus would refuse in a rule file (`rule_files:`), as its documentation describes
    it: `groups:` of uniquely named groups, each with `rules:` that are either recording rules
    (`record`, `expr`, `labels`) or alerting rules (`alert`, `expr`, `for`, `keep_firing_for`,
    `labels`, `annotations`); durations like `5m`; label names like metric names; string values."""
    problems: list[str] = []
    if (
        not isinstance(document, dict)
        or set(document) != {"groups"}
        or not isinstance(document["groups"], list)
    ):
        return ["the file must be a mapping with one key, groups: a list"]
    names: set[str] = set()
    for g, group in enumerate(document["groups"]):
        if not isinstance(group, dict) or not isinstance(group.get("name"), str) or not group["name"]:
            problems.append(f"group {g}: needs a name")
            continue
        if group["name"] in names:
            problems.append(f"group {group['name']}: the name is used twice")
        names.add(group["name"])
        problems += [f"group {group['name']}: unknown key {k}" for k in set(group) - GROUP_KEYS]
        if "interval" in group and not DURATION.match(str(group["interval"])):
            problems.append(f"group {group['name']}: interval is not a duration")
        if not isinstance(group.get("rules"), list):
            problems.append(f"group {group['name']}: rules must be a list")
            continue
        for r, rule in enumerate(group["rules"]):
            where = f"group {group['name']} rule {r}"
            if not isinstance(rule, dict):
                problems.append(f"{where}: must be a mapping")
                continue
            if ("alert" in rule) == ("record" in rule):
                problems.append(f"{where}: exactly one of alert and record")
                continue
            allowed = ALERT_KEYS if "alert" in rule else RECORD_KEYS
            problems += [f"{where}: unknown key {k}" for k in set(rule) - allowed]
            name = rule.get("alert", rule.get("record"))
            if not isinstance(name, str) or not name:
                problems.append(f"{where}: the name must be a string")
            elif "record" in rule and not re.match(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$", name):
                problems.append(f"{where}: a recorded name must be a metric name")
            if not isinstance(rule.get("expr"), str) or not rule["expr"].strip():
                problems.append(f"{where}: expr must be a PromQL expression")
            for key in ("for", "keep_firing_for"):
                if key in rule and not DURATION.match(str(rule[key])):
                    problems.append(f"{where}: {key} is not a duration")
            for key in ("labels", "annotations"):
                values = rule.get(key, {})
                if not isinstance(values, dict):
                    problems.append(f"{where}: {key} must be a mapping")
                    continue
                for label, value in values.items():
                    if not isinstance(label, str) or not LABEL_NAME.match(label):
                        problems.append(f"{where}: {key} name {label!r} is not valid")
                    if not isinstance(value, str):
                        problems.append(f"{where}: {key} {label} must be a string")
    return problems


def test_the_alert_rules_follow_prometheus_rule_file_format() -> None:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    assert rule_file_problems(document) == []
    alerts = {rule["alert"] for group in document["groups"] for rule in group["rules"]}
    assert {
        "StemBotProcessDown",
        "StemBotSplitsPaused",
        "StemBotApiCreditsLow",
        "StemBotFailuresRising",
        "StemBotCallbacksFailing",
        "StemBotJobStuck",
    } <= alerts


@pytest.mark.parametrize(
    ("broken", "problem"),
    [
        (
            {"groups": [{"name": "a", "rules": [{"alert": "X", "expr": "up", "for": "5 minutes"}]}]},
            "duration",
        ),
        ({"groups": [{"name": "a", "rules": [{"alert": "X", "record": "y", "expr": "up"}]}]}, "exactly one"),
        (
            {"groups": [{"name": "a", "rules": [{"alert": "X", "expr": "up", "labels": {"bad-name": "x"}}]}]},
            "not valid",
        ),
        (
            {"groups": [{"name": "a", "rules": [{"record": "y", "expr": "up", "annotations": {}}]}]},
            "unknown key",
        ),
        ({"groups": [{"name": "a", "rules": []}, {"name": "a", "rules": []}]}, "used twice"),
        ({"rules": []}, "groups"),
    ],
)
def test_the_rule_file_check_refuses_what_prometheus_would(broken: Any, problem: str) -> None:
    assert any(problem in p for p in rule_file_problems(broken))


# -- the dashboard and the compose profile ----------------------------------------------------------


def test_the_dashboard_reads_the_provisioned_prometheus() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    source = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = source["datasources"][0]["uid"]
    assert dashboard["uid"] == "stembot" and dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == uid and panel["targets"], panel["title"]
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in (
        "jobs by state",
        "delivery lag",
        "api calls",
        "callbacks",
        "keeps",
        "budget",
        "leases",
        "takeovers",
    ):
        assert topic in titles, topic


def test_the_monitoring_profile_scrapes_every_bot_and_loads_the_rules_and_the_dashboard() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    bots = [name for name, s in services.items() if s.get("build") == "."]
    assert services["prometheus"]["profiles"] == ["monitoring"] == services["grafana"]["profiles"]
    mounts = services["prometheus"]["volumes"] + services["grafana"]["volumes"]
    for local in (
        "deploy/prometheus/prometheus.yml",
        "deploy/prometheus/alerts.yml",
        "deploy/grafana/stembot.json",
    ):
        assert any(m.startswith(f"./{local}:") for m in mounts) and (ROOT / local).exists(), local
    config = yaml.safe_load(PROMETHEUS.read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    targets = [t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    assert sorted(targets) == sorted(f"{bot}:8080" for bot in bots)
    # Each bot's web server listens on 8080 in its container (the image's CALLBACK_PORT).
    assert all(p.endswith(":8080") for bot in bots for p in services[bot]["ports"])
    for name in ("prometheus", "grafana"):
        assert all(p.startswith("127.0.0.1:") for p in services[name]["ports"]), name

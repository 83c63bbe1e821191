#!/usr/bin/env python3
"""Checks deploy/prometheus and deploy/grafana beyond what promtool checks
by itself:

- every alert in rules.yaml has a unit test in rules_test.yaml where it
  fires and one where it does not;
- every PromQL expression of the Grafana dashboard (panel targets, and the
  metric selectors of its label_values() variables), with the dashboard
  variables replaced by sample values, parses: they are written into a
  rules file of recording rules that `promtool check rules` must accept;
- the dashboard itself: unique panel ids, every target on the datasource
  variable, panels that do not overlap.

Which metric names the expressions may use is checked against a real
server's /metrics by tests/it/deploy_files.rs.

usage: check_monitoring.py DEPLOY_DIR PROMTOOL
"""

import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

# Sample values for Grafana's variables, as Grafana would expand them.
VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "30s",
    "__range": "6h",
    "job": "tresor",
    "instance": ".*",
    "operation": ".*",
}


def expand(expr):
    def value(match):
        name = match.group(1) or match.group(2)
        if name not in VARIABLES:
            raise KeyError(f"unknown dashboard variable ${name} in {expr}")
        return VARIABLES[name]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def all_panels(panels):
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def check_alert_tests(deploy, problems):
    with open(os.path.join(deploy, "prometheus/rules.yaml")) as f:
        rules = yaml.safe_load(f)
    with open(os.path.join(deploy, "prometheus/rules_test.yaml")) as f:
        tests = yaml.safe_load(f)
    alerts = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
    records = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    fired, quiet = set(), set()
    for test in tests["tests"]:
        for case in test.get("alert_rule_test", []):
            (fired if case.get("exp_alerts") else quiet).add(case["alertname"])
    for alert in alerts:
        if alert not in fired:
            problems.append(f"rules_test.yaml: no test where {alert} fires")
        if alert not in quiet:
            problems.append(f"rules_test.yaml: no test where {alert} does not fire")
    for name in (fired | quiet) - set(alerts):
        problems.append(f"rules_test.yaml: tests {name}, which rules.yaml does not define")
    for group in rules["groups"]:
        for rule in group["rules"]:
            for used in re.findall(r"\btresor:[a-z0-9_:]+", rule["expr"]):
                if used not in records:
                    problems.append(f"rules.yaml: {rule.get('alert') or rule.get('record')} uses {used}, never recorded")
            if "alert" in rule:
                labels, annotations = rule.get("labels", {}), rule.get("annotations", {})
                if labels.get("severity") not in ("critical", "warning"):
                    problems.append(f"rules.yaml: {rule['alert']} has no severity critical|warning")
                if not annotations.get("summary") or not annotations.get("description"):
                    problems.append(f"rules.yaml: {rule['alert']} lacks a summary or a description")
    return len(alerts)


def dashboard_expressions(deploy, problems):
    with open(os.path.join(deploy, "grafana/tresor.json")) as f:
        dashboard = json.load(f)
    expressions = []
    ids = set()
    boxes = []
    for panel in all_panels(dashboard["panels"]):
        where = f"panel {panel.get('id')} {panel.get('title')!r}"
        if panel.get("id") in ids:
            problems.append(f"tresor.json: {where}: duplicate id")
        ids.add(panel.get("id"))
        grid = panel["gridPos"]
        box = (grid["x"], grid["y"], grid["x"] + grid["w"], grid["y"] + grid["h"])
        if box[2] > 24:
            problems.append(f"tresor.json: {where}: wider than the 24-column grid")
        for other_where, other in boxes:
            if box[0] < other[2] and other[0] < box[2] and box[1] < other[3] and other[1] < box[3]:
                problems.append(f"tresor.json: {where} overlaps {other_where}")
        boxes.append((where, box))
        if panel["type"] not in ("row", "text") and not panel.get("targets"):
            problems.append(f"tresor.json: {where}: no query")
        for target in panel.get("targets", []):
            if target.get("datasource", {}).get("uid") != "${datasource}":
                problems.append(f"tresor.json: {where} {target.get('refId')}: not on the $datasource variable")
            expressions.append((f"{where} {target['refId']}", target["expr"]))
    for var in dashboard["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
        if not m:
            problems.append(f"tresor.json: variable {var['name']}: not label_values(SELECTOR, LABEL): {query}")
            continue
        expressions.append((f"variable {var['name']}", m.group(1)))
    return expressions


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    deploy, promtool = sys.argv[1], sys.argv[2]
    problems = []
    alert_count = check_alert_tests(deploy, problems)
    expressions = dashboard_expressions(deploy, problems)
    rules = []
    for i, (where, expr) in enumerate(expressions):
        try:
            rules.append({"record": f"grafana:expression_{i}", "expr": expand(expr),
                          "labels": {"panel": where}})
        except KeyError as e:
            problems.append(f"tresor.json: {where}: {e}")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump({"groups": [{"name": "grafana-dashboard", "rules": rules}]}, f)
        generated = f.name
    result = subprocess.run([promtool, "check", "rules", generated], capture_output=True, text=True)
    os.unlink(generated)
    if result.returncode != 0:
        problems.append("promtool rejects dashboard expressions:\n" + result.stdout + result.stderr)
    for problem in problems:
        print(f"FAIL {problem}")
    if problems:
        sys.exit(1)
    print(f"ok: {alert_count} alerts each tested firing and not firing; "
          f"{len(expressions)} dashboard expressions parse (promtool check rules)")


if __name__ == "__main__":
    main()

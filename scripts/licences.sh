#!/usr/bin/env bash
# The licences of the dependencies in Cargo.lock (normal, build and dev),
# grouped by licence expression, from `cargo metadata --offline --locked`
# (no network). By default only the packages of the host platform (what a
# build here downloads); ALL_TARGETS=1 lists every platform's, which needs
# them all in the local cargo cache (`cargo fetch`).
#
# Usage: scripts/licences.sh                 a Markdown table
#        scripts/licences.sh --check         also exit 1 if any package's
#                                            licence expression cannot be
#                                            met with the allow-list
#        ALLOW=FILE scripts/licences.sh ...  another allow-list (default
#                                            scripts/licences-allowed.txt)
#        ALL_TARGETS=1 scripts/licences.sh   every platform's packages
# An expression is met when it evaluates true with each allowed SPDX id
# true: `A OR B` needs one, `A AND B` both; `/` is the old spelling of OR.
# The workspace's own package is left out. Needs python3.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ALLOW="${ALLOW:-scripts/licences-allowed.txt}"
CHECK="${1:-}"
PROGRAM=$(cat <<'PY'
import json
import re
import sys
from collections import defaultdict

allow_file, check = sys.argv[1], sys.argv[2] == "--check"
allowed = {
    line.strip()
    for line in open(allow_file, encoding="utf-8")
    if line.strip() and not line.startswith("#")
}
meta = json.load(sys.stdin)
members = set(meta["workspace_members"])


def tokens(expr):
    expr = expr.replace("/", " OR ")
    return re.findall(r"\(|\)|[A-Za-z0-9.+-]+", expr)


def met(expr):
    """Evaluates an SPDX expression: OR < AND < WITH, parentheses."""
    toks = tokens(expr)
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else None

    def take():
        nonlocal pos
        pos += 1
        return toks[pos - 1]

    def atom():
        if peek() == "(":
            take()
            value = any_of()
            if take() != ")":
                raise ValueError(expr)
            return value
        name = take()
        if peek() == "WITH":
            take()
            name = f"{name} WITH {take()}"
        return name in allowed

    def chain(op, operand, combine):
        value = operand()
        while peek() == op:
            take()
            value = combine(operand(), value)
        return value

    def all_of():
        return chain("AND", atom, lambda a, b: a and b)

    def any_of():
        return chain("OR", all_of, lambda a, b: a or b)

    value = any_of()
    if pos != len(toks):
        raise ValueError(expr)
    return value


groups = defaultdict(list)
for package in meta["packages"]:
    if package["id"] in members:
        continue
    licence = package["license"] or "(none declared)"
    groups[licence].append(f"{package['name']} {package['version']}")

bad = []
print("| licence | allowed | packages |")
print("|---|---|---|")
for licence in sorted(groups, key=lambda l: (-len(groups[l]), l)):
    names = sorted(groups[licence])
    try:
        ok = licence != "(none declared)" and met(licence)
    except (ValueError, IndexError):
        ok = False
    if not ok:
        bad.extend(f"{n}: {licence}" for n in names)
    print(f"| {licence} | {'yes' if ok else '**NO**'} | {len(names)}: {', '.join(names)} |")

if bad:
    print(f"\n{len(bad)} package(s) with a licence outside {allow_file}:", file=sys.stderr)
    for line in bad:
        print(f"  {line}", file=sys.stderr)
    if check:
        sys.exit(1)
PY
)
FILTER=()
if [[ -z "${ALL_TARGETS:-}" ]]; then
    FILTER=(--filter-platform "$(rustc -vV | sed -n 's/^host: //p')")
fi
"${CARGO:-cargo}" metadata --format-version 1 --offline --locked "${FILTER[@]}" |
    python3 -c "$PROGRAM" "$ALLOW" "$CHECK"

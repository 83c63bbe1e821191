#!/usr/bin/env python3
"""Checks the Kubernetes objects that `kubectl kustomize` rendered, beyond
their schema (kubernetes-validate does that):

- every tresor flag in a container's args, and in a probe that runs
  `tresor health`, is one that `tresor serve --help` (or `tresor health
  --help`) lists;
- every file a flag names is inside a volume mounted in that container, and
  what tresor writes (--data-dir, --audit-file, --backup-dir) is on a
  writable mount (the root file system is read-only);
- the pod meets the "restricted" Pod Security Standard the namespace
  enforces, and is in the Guaranteed QoS class;
- readiness asks the whole server, liveness only `tresor.v1.Admin` (which
  stays SERVING while sealed: a liveness probe must never restart a sealed
  server);
- Service, NetworkPolicy and flag ports match the container's named ports.

usage: check_rendered.py TRESOR_BINARY RENDERED.yaml...
Exits 1 and lists every problem found.
"""

import re
import subprocess
import sys

import yaml

HELP_FLAG = re.compile(r"^\s+(?:-[a-zA-Z], )?(--[a-z0-9][a-z0-9-]*)", re.M)

# Restricted Pod Security Standard: allowed volume types.
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
    "persistentVolumeClaim", "projected", "secret",
}
# Flags whose value is a path tresor writes below.
WRITTEN = {"--data-dir", "--audit-file", "--backup-dir"}


def help_flags(binary, subcommand):
    text = subprocess.run(
        [binary, subcommand, "--help"], check=True, capture_output=True, text=True
    ).stdout
    flags = set(HELP_FLAG.findall(text))
    if len(flags) < 5:
        sys.exit(f"`tresor {subcommand} --help` listed too few flags: {sorted(flags)}")
    return flags


def split_flags(argv):
    """(flag, value or None) for each --flag in argv, `--f=v` or `--f v`."""
    out = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--"):
            if "=" in arg:
                flag, value = arg.split("=", 1)
            elif i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                flag, value = arg, argv[i + 1]
                i += 1
            else:
                flag, value = arg, None
            out.append((flag, value))
        i += 1
    return out


def file_path(value):
    if value is None:
        return None
    if value.startswith("unix://"):
        return value[len("unix://"):]
    if value.startswith("/"):
        return value
    return None


def under(path, mount):
    return path == mount or path.startswith(mount.rstrip("/") + "/")


class Checker:
    def __init__(self, binary):
        self.flags = {
            "serve": help_flags(binary, "serve"),
            "health": help_flags(binary, "health"),
        }
        self.problems = []
        self.checked_flags = 0

    def problem(self, where, message):
        self.problems.append(f"{where}: {message}")

    def tresor_command(self, where, argv, container, volumes):
        """argv without the program: SUBCOMMAND --flag... ."""
        if not argv or argv[0] not in self.flags:
            self.problem(where, f"not a tresor serve/health command: {argv}")
            return []
        known = self.flags[argv[0]]
        pairs = split_flags(argv[1:])
        mounts = container.get("volumeMounts", [])
        for flag, value in pairs:
            self.checked_flags += 1
            if flag not in known:
                self.problem(where, f"`tresor {argv[0]}` has no flag {flag}")
            path = file_path(value)
            if path is None:
                continue
            mount = next((m for m in mounts if under(path, m["mountPath"])), None)
            if mount is None:
                self.problem(where, f"{flag}={value}: no volume is mounted there")
                continue
            if mount["name"] not in volumes:
                self.problem(where, f"{flag}: mount {mount['name']} has no volume")
            if flag in WRITTEN and mount.get("readOnly"):
                self.problem(where, f"{flag}={value}: tresor writes there, but the mount is read-only")
        return pairs

    def pod(self, where, spec, claim_templates):
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for name in claim_templates:
            volumes[name] = {"name": name, "persistentVolumeClaim": {}}
        for name, volume in volumes.items():
            kinds = set(volume) - {"name"}
            if not kinds <= RESTRICTED_VOLUMES:
                self.problem(where, f"volume {name}: {kinds} not allowed by the restricted profile")
        pod_sc = spec.get("securityContext", {})
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(key):
                self.problem(where, f"{key} is set")
        if pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            self.problem(where, "pod seccompProfile is not RuntimeDefault")
        if pod_sc.get("runAsNonRoot") is not True:
            self.problem(where, "pod securityContext.runAsNonRoot is not true")
        if pod_sc.get("runAsUser") == 0:
            self.problem(where, "runs as uid 0")

        containers = spec.get("containers", [])
        all_containers = spec.get("initContainers", []) + containers
        for c in all_containers:
            cw = f"{where} container {c['name']}"
            sc = c.get("securityContext", {})
            if sc.get("allowPrivilegeEscalation") is not False:
                self.problem(cw, "allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                self.problem(cw, "privileged")
            if sc.get("readOnlyRootFilesystem") is not True:
                self.problem(cw, "root file system is not read-only")
            caps = sc.get("capabilities", {})
            if "ALL" not in caps.get("drop", []):
                self.problem(cw, "capabilities are not all dropped")
            if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
                self.problem(cw, f"adds capabilities {caps['add']}")
            resources = c.get("resources", {})
            for kind in ("cpu", "memory"):
                request = resources.get("requests", {}).get(kind)
                limit = resources.get("limits", {}).get(kind)
                if request is None or request != limit:
                    self.problem(cw, f"{kind} request {request} != limit {limit} (not Guaranteed QoS)")
            for mount in c.get("volumeMounts", []):
                if mount["name"] not in volumes:
                    self.problem(cw, f"mounts unknown volume {mount['name']}")
                if mount.get("subPath"):
                    self.problem(cw, f"{mount['mountPath']}: subPath mounts never see Secret updates")

        tresor = [c for c in containers if re.search(r"(^|/)tresor(:|@|$)", c.get("image", ""))]
        if len(tresor) != 1:
            self.problem(where, f"expected one tresor container, found {len(tresor)}")
            return
        c = tresor[0]
        cw = f"{where} container {c['name']}"
        if c.get("command"):
            self.problem(cw, "overrides the image's ENTRYPOINT (/usr/local/bin/tresor)")
        pairs = self.tresor_command(f"{cw} args", c.get("args", []), c, volumes)
        if not c.get("args") or c["args"][0] != "serve":
            self.problem(cw, "args do not start with `serve`")
        values = {}
        for flag, value in pairs:
            values.setdefault(flag, value)
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        for flag, port_name in (("--listen", "grpc"), ("--metrics-listen", "metrics")):
            listen = values.get(flag)
            if listen is None or not listen.startswith("0.0.0.0:"):
                self.problem(cw, f"{flag} {listen}: must listen on 0.0.0.0 in a pod")
            elif int(listen.rsplit(":", 1)[1]) != ports.get(port_name):
                self.problem(cw, f"{flag} {listen} is not the {port_name} port {ports.get(port_name)}")

        for probe_kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = c.get(probe_kind)
            pw = f"{cw} {probe_kind}"
            if probe is None:
                self.problem(pw, "missing")
                continue
            if "tcpSocket" in probe:
                if probe["tcpSocket"]["port"] not in ports and probe["tcpSocket"]["port"] not in ports.values():
                    self.problem(pw, "tcpSocket port is not a container port")
                continue
            command = probe.get("exec", {}).get("command", [])
            if not command or not command[0].endswith("/tresor") or command[1:2] != ["health"]:
                self.problem(pw, f"not an exec probe running `tresor health`: {command}")
                continue
            probe_pairs = dict(self.tresor_command(pw, command[1:], c, volumes))
            service = probe_pairs.get("--service", "")
            if probe_kind == "readinessProbe" and service not in ("", "tresor.v1.Crypto"):
                self.problem(pw, f"asks {service}: readiness must follow the seal (whole server)")
            if probe_kind in ("livenessProbe", "startupProbe") and service != "tresor.v1.Admin":
                self.problem(pw, f"asks {service or 'the whole server'}: would restart a sealed server (use --service=tresor.v1.Admin)")
            timeout = probe_pairs.get("--timeout", "3s")
            seconds = float(timeout[:-2]) / 1000 if timeout.endswith("ms") else float(timeout.rstrip("s"))
            if seconds >= probe.get("timeoutSeconds", 1):
                self.problem(pw, f"--timeout {timeout} is not below timeoutSeconds {probe.get('timeoutSeconds', 1)}")
        self.pod_ports = ports

    def run(self, files):
        objects = []
        for path in files:
            with open(path) as f:
                objects += [(path, o) for o in yaml.safe_load_all(f) if o]
        workloads = [(p, o) for p, o in objects if o["kind"] in ("StatefulSet", "Deployment")]
        if not workloads:
            self.problem("input", "no StatefulSet or Deployment rendered")
        for path, o in workloads:
            where = f"{path}: {o['kind']}/{o['metadata']['name']}"
            self.pod_ports = {}
            claims = [t["metadata"]["name"] for t in o["spec"].get("volumeClaimTemplates", [])]
            self.pod(where, o["spec"]["template"]["spec"], claims)
            ports = self.pod_ports
            for p2, other in objects:
                if p2 != path:
                    continue
                ow = f"{p2}: {other['kind']}/{other['metadata']['name']}"
                if other["kind"] == "Service":
                    for port in other["spec"]["ports"]:
                        if port["targetPort"] not in ports:
                            self.problem(ow, f"targetPort {port['targetPort']} is not a named container port")
                if other["kind"] == "NetworkPolicy":
                    for rule in other["spec"].get("ingress", []):
                        for port in rule.get("ports", []):
                            if port["port"] not in ports:
                                self.problem(ow, f"port {port['port']} is not a named container port")
                    if other["spec"].get("policyTypes") != ["Ingress"]:
                        self.problem(ow, "expected policyTypes [Ingress]")
                    allowed = {p["port"] for r in other["spec"].get("ingress", []) for p in r.get("ports", [])}
                    if allowed != {"grpc", "metrics"}:
                        self.problem(ow, f"ingress ports {allowed}, expected grpc and metrics only")
        return objects


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    checker = Checker(sys.argv[1])
    objects = checker.run(sys.argv[2:])
    for problem in checker.problems:
        print(f"FAIL {problem}")
    if checker.problems:
        sys.exit(1)
    print(f"ok: {len(objects)} objects in {len(sys.argv) - 2} file(s), {checker.checked_flags} tresor flags checked")


if __name__ == "__main__":
    main()

"""Offline checks of the production material in deploy/ (run by tests/deploy/validate).

    python3 tests/deploy/check_deploy.py REPO_ROOT

Checks that every YAML and JSON file under deploy/ parses; that the Kubernetes manifests and the systemd units
start the services with flags that exist and with every flag a service requires (both read from its main.cc,
e.g. --keys for intake and the inboxes), and fit together (ports, probes, volumes, the network file, one
inbox per organisation, the ops console on the pod's loopback and behind no Service, --keys leading to the
key service's Service, the single writers of a SQLite file in one replica with their file on a persistent
volume, the hand-made keys from their Secrets); that every service starts with its TLS files (--tls-cert,
--tls-key, --tls-ca: required at start), in Kubernetes from the Secrets deploy/README.md makes, and is probed
over TLS; and that the Prometheus and Grafana files name only metrics and labels the services export, with the
scrape jobs deploy/local/up's ports imply. Prints one line per problem ("file: what is wrong") and exits 1, or
prints a summary and exits 0.
Needs PyYAML (Debian: python3-yaml) and nothing else: no cluster, no Prometheus, no Grafana.
"""

import json
import re
import shlex
import sys
from pathlib import Path

import yaml

# Commands the manifests run, other than the services themselves. Each one must be in the images (deploy/README.md
# says how to build it in, naming the same module and version), and every `exec` in deploy/k8s must be one of
# these. `flags`: what the command accepts (True: takes a value, as -flag=value; False: a bare switch).
#   grpc-health-probe: the standard gRPC health check, over TLS: the probes of every service (the kubelet's own
#   gRPC probe speaks no TLS, and the services speak nothing else). Its flags as of the version below.
HEALTH_PROBE = "/usr/local/bin/grpc-health-probe"
COMMANDS_RUN = {
    HEALTH_PROBE: {
        "module": "github.com/grpc-ecosystem/grpc-health-probe", "version": "v0.4.62",
        "flags": {"-addr": True, "-alts": False, "-connect-timeout": True, "-gzip": False, "-rpc-header": True,
                  "-rpc-timeout": True, "-service": True, "-spiffe": False, "-tls": False, "-tls-ca-cert": True,
                  "-tls-client-cert": True, "-tls-client-key": True, "-tls-no-verify": False,
                  "-tls-server-name": True, "-user-agent": True, "-v": False, "-version": False},
    },
}

# What the binaries accept (services/<name>/main.cc). True: the flag takes a value; False: a bare switch.
# ops --console-listen serves the operators' console (HTTPS, operators' client certificates only): see
# CONSOLE_FLAG.
# check_facts_in_source compares these with main.cc both ways: a flag added there must be added here (or to
# NOT_DEPLOYED), and a flag main.cc marks ->required() must be in REQUIRED_FLAGS, so that every manifest and
# unit is then checked to pass it.
FLAGS = {
    "intake": {"--network": True, "--listen": True, "--kafka": True, "--pseudonym-key": True, "--keys": True,
               "--delivery-timeout-ms": True, "--db": True, "--view-group": True, "--audit-writer": True,
               "--max-in-flight": True, "--target-wait-ms": True, "--audit-signing-key": True,
               "--log-json": False, "--log-level": True, "--metrics-listen": True, "--kafka-config": True},
    "router": {"--network": True, "--listen": True, "--kafka": True, "--instance": True, "--tick-ms": True,
               "--log-json": False, "--log-level": True, "--metrics-listen": True, "--kafka-config": True},
    "inbox": {"--org": True, "--network": True, "--listen": True, "--kafka": True, "--db": True, "--keys": True,
              "--audit-signing-key": True,
              "--log-json": False, "--log-level": True, "--metrics-listen": True, "--kafka-config": True},
    "ops": {"--network": True, "--kafka": True, "--listen": True, "--console-listen": True,
            "--metrics-listen": True, "--lag-every-ms": True, "--log-json": False, "--log-level": True,
            "--kafka-config": True, "--audit-signing-key": True},
    "keys": {"--listen": True, "--kafka": True, "--master-key": True, "--db": True, "--group": True,
             "--audit-signing-key": True,
             "--metrics-listen": True, "--log-json": False, "--log-level": True, "--kafka-config": True},
}
# Flags that exist but are for operators and tests, not for a deployment: a manifest or unit that passes one
# fails as if it did not exist.
NOT_DEPLOYED = {"router": {"--check", "--clock-offset-file"}}
# The flags without which a service refuses to start (->required() in its main.cc).
REQUIRED_FLAGS = {"intake": {"--pseudonym-key", "--keys"}, "router": set(),
                  "inbox": {"--org", "--network", "--keys"}, "ops": set(), "keys": {"--master-key"}}
# Flags that name another service's gRPC address: (client, flag) -> the service dialled. In Kubernetes the value
# must be <Service>.schakel.svc:<port> of a Service in deploy/k8s that leads to that service's --listen port: the
# client verifies the certificate under the name it dials, and <Service>.schakel.svc is the name in every
# service certificate (deploy/README.md) that the readiness probe verifies too.
ADDRESS_FLAGS = {("intake", "--keys"): "keys", ("inbox", "--keys"): "keys"}
# Services whose state is one SQLite file with one writer: exactly one replica, in a StatefulSet (never two pods
# of the same ordinal, not even during a rollout).
SINGLE_WRITER = {"inbox", "keys"}
# Files that must outlive the pod: the flag's path is on a volume from volumeClaimTemplates (or a
# PersistentVolumeClaim), never an emptyDir or the image. The key service's database holds the only copy of
# every client's key.
PERSISTENT_FILE_FLAGS = {"intake": "--db", "inbox": "--db", "keys": "--db"}
# Keys made by hand (a *.secret.yaml.example shows each): in Kubernetes the flag's file comes from this Secret
# and key, readable by the service's group only, and so never from the data volume, nor its backups.
KEY_SECRETS = {("intake", "--pseudonym-key"): ("schakel-pseudonym-key", "pseudonym.key"),
               ("keys", "--master-key"): ("schakel-keys-master-key", "master.key")}
# The audit stream: each service that writes it signs its own chain with its own Ed25519 key
# (docs/security-and-privacy.md, "Audit"). In Kubernetes every such workload passes --audit-signing-key (without
# it its entries go unsigned and `schakelctl audit verify` fails), from the Secret schakel-audit-<workload>
# (intake: one key per pod, <pod>.key), readable by the service's group only.
AUDIT_WRITERS = {"intake", "inbox", "ops", "keys"}
AUDIT_KEY_FLAG = "--audit-signing-key"
AUDIT_KEY_SECRET = "schakel-audit-{name}"
AUDIT_SECRET_NAME = re.compile(r"schakel-audit-[\w-]+")  # made with kubectl (deploy/README.md), like TLS's
# TLS: a service whose main.cc calls AddSecurityFlags accepts these too (they are added in SECURITY_SOURCE, not
# in main.cc); one that calls LoadServerSecurity requires TLS_REQUIRED (it exits 2 at start without them).
# A main.cc that runs in the process shell (service::Process, PROCESS_SOURCE) has the shell's flags: the TLS flags
# (required), those PROCESS_SOURCE adds itself, --network as its ProcessOptions say (NetworkFlag::kOptional or
# kRequired) and --audit-signing-key when they say .audit_signing_key = true.
SECURITY_FLAGS = {"--tls-cert": True, "--tls-key": True, "--tls-ca": True, "--tokens": True}
SECURITY_SOURCE = "libs/service/security.cc"
PROCESS_SOURCE = "libs/service/process.cc"
TLS_REQUIRED = {"--tls-cert", "--tls-key", "--tls-ca"}
# In Kubernetes the file of each TLS flag comes from this Secret and key ({name}: the workload's name). The
# Secrets are made with kubectl (deploy/README.md), never kept in deploy/k8s, not even as an example.
TLS_SECRETS = {"--tls-cert": ("schakel-tls-{name}", "tls.crt"), "--tls-key": ("schakel-tls-{name}", "tls.key"),
               "--tls-ca": ("schakel-ca", "ca.crt"), "--tokens": ("schakel-tokens", "tokens")}
TLS_SECRET_NAME = re.compile(r"schakel-tls-[\w-]+|schakel-ca|schakel-tokens")
# A service's flag for the operators' console (HTTPS, for operators' client certificates; its TLS is the
# service's --tls-cert, --tls-key and --tls-ca): in a container it listens on the pod's loopback only
# (kubectl port-forward reaches that), and no Service exposes its port, until exposing it is designed.
CONSOLE_FLAG = {"ops": "--console-listen"}
LOOPBACK = ("127.0.0.1:", "localhost:", "[::1]:")

# What the services export (libs/metrics/metrics.cc, services/inbox/assignment_gauges.cc, the ops service's
# gauges), with the labels of each. The histogram is also read through its _bucket, _count and _sum series.
METRICS = {
    "schakel_grpc_server_handled_total": {"grpc_service", "grpc_method", "grpc_code"},
    "schakel_grpc_server_handling_seconds": {"grpc_service", "grpc_method"},
    "schakel_kafka_produced_total": {"topic"},
    "schakel_kafka_produce_failed_total": {"topic"},
    "schakel_kafka_consumed_total": {"topic"},
    "schakel_kafka_reachable": set(),
    "schakel_inbox_assignments": {"need", "organisation", "status"},
    # The ops service's view of the whole network, one series per organisation (it sets `organisation`
    # itself: its job needs honor_labels). waiting includes overdue (waiting past the network's SLA).
    "schakel_assignments": {"organisation", "need", "state"},
    "schakel_unroutable_needs": {"need", "referring_organisation"},  # not yet reassigned; absent when none
    "schakel_dead_letters": {"topic", "consumer"},  # every record on schakel.deadletters.*, re-driven or not
    "schakel_inbox_lag": {"organisation"},  # records on schakel.inbox.<org> its inbox has not consumed
}
# Metrics only one service exports (the others: every service). Where that service's source is not in the
# checkout yet, its facts cannot be looked up (the summary says so).
EXPORTED_BY = {"schakel_inbox_assignments": "inbox", "schakel_assignments": "ops",
               "schakel_unroutable_needs": "ops", "schakel_dead_letters": "ops", "schakel_inbox_lag": "ops"}
# Where the metrics are defined.
METRIC_SOURCES = ("libs/metrics", "services/inbox", "libs/ops", "services/ops")
HISTOGRAMS = {"schakel_grpc_server_handling_seconds"}
# Series every Prometheus makes itself: `up` (1 when a target was scraped).
PROMETHEUS_OWN = {"up"}
# Labels Prometheus attaches (job, instance), our target label (organisation) and the histogram's `le`.
TARGET_LABELS = {"job", "instance", "organisation"}
# Label values that are known in advance; a matcher on these labels may only name these.
LABEL_VALUES = {
    "state": {"waiting", "overdue", "accepted", "in_progress"},
    "status": {"requested", "received", "accepted", "rejected", "in_progress", "on_hold", "completed",
               "failed", "cancelled"},
    "grpc_code": {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
                  "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
                  "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
                  "UNAUTHENTICATED"},
    "topic": {"schakel.referrals.submitted", "schakel.assignments.status", "schakel.referrals.unroutable",
              "schakel.assignments.cancellations", "schakel.router.state",
              "schakel.operator.reassignments",
              "schakel.clients.erasures", "schakel.deadletters.router",
              "schakel.deadletters.intake", "schakel.deadletters.keys"},
    # and schakel.inbox.<org>, schakel.from.<org>, schakel.load.<org>, schakel.deadletters.inbox-<org>
    "job": {"intake", "router", "inbox", "ops", "keys"},
}
# The scrape jobs whose metrics carry their own `organisation` label: honor_labels, or Prometheus renames it.
HONOR_LABELS_JOBS = {"inbox", "ops"}

# PromQL's functions, aggregations and keywords: every other word in an expression is a metric name.
PROMQL_FUNCTIONS = set("""
    abs absent absent_over_time avg_over_time ceil changes clamp clamp_max clamp_min count_over_time
    day_of_month day_of_week day_of_year days_in_month delta deriv exp floor histogram_avg histogram_count
    histogram_fraction histogram_quantile histogram_stddev histogram_stdvar histogram_sum holt_winters hour
    idelta increase irate label_join label_replace last_over_time ln log10 log2 mad_over_time max_over_time
    min_over_time minute month predict_linear present_over_time quantile_over_time rate resets round scalar
    sgn sort sort_desc sort_by_label sort_by_label_desc sqrt stddev_over_time stdvar_over_time
    sum_over_time time timestamp vector year
    sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk limit_ratio
""".split())
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
                   "bool", "offset", "inf", "nan"}

STRING = r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`'


def port_of(address):
    """The port of HOST:PORT, or 0."""
    port = (address or "").rpartition(":")[2]
    return int(port) if port.isdigit() else 0


def duration_seconds(text):
    """A Go duration such as 2s, 500ms or 1m30s, in seconds (0 when it is none)."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(text))
    return sum(float(n) * units[u] for n, u in parts)


def option_statements(text):
    """{flag: (takes a value, required)} of the CLI11 options in a main.cc: each add_option("--x", ...) or
    add_flag("--x", ...) statement, up to its `;` outside string literals, ->required() or not."""
    found = {}
    for m in re.finditer(r'\badd_(option|flag)\(\s*"(--[\w-]+)"', text):
        i, quote = m.end(), None
        while i < len(text) and (quote or text[i] != ";"):
            if quote and text[i] == "\\":
                i += 1
            elif text[i] == '"':
                quote = None if quote else '"'
            i += 1
        statement = re.sub(r'"(?:\\.|[^"\\])*"', '""', text[m.start():i])
        found[m.group(2)] = (m.group(1) == "option", "->required()" in statement)
    return found


def mount_of(path, mounts):
    """The volume mount that holds `path` (the longest mountPath that is a prefix), or None."""
    best, length = None, -1
    for mount in mounts:
        base = str(mount.get("mountPath") or "").rstrip("/") + "/"
        if str(path).startswith(base) and len(base) > length:
            best, length = mount, len(base)
    return best


def secret_files(path, mounts, volumes):
    """The Secret keys a volume mount puts at `path`: [(secret, key, mode)] (mode: the file's, default 0644)."""
    found = []
    for mount in mounts:
        base = str(mount.get("mountPath") or "").rstrip("/") + "/"
        if mount.get("subPath") or not path.startswith(base):
            continue
        relative, volume = path[len(base):], volumes.get(mount.get("name")) or {}
        if "secret" in volume:
            secret = volume["secret"]
            sources = [(secret.get("secretName"), secret.get("items"), secret.get("defaultMode", 0o644))]
        else:
            projected = volume.get("projected") or {}
            sources = [((s["secret"] or {}).get("name"), (s["secret"] or {}).get("items"),
                        projected.get("defaultMode", 0o644))
                       for s in projected.get("sources") or [] if "secret" in s]
        for name, items, mode in sources:
            if items is None:  # every key of the Secret, each a file of its name
                found.append((name, relative, mode))
            found += [(name, i.get("key"), i.get("mode", mode)) for i in items or [] if i.get("path") == relative]
    return found


class Checker:
    def __init__(self, root):
        self.root = root
        self.problems = []
        self.counts = {"yaml": 0, "json": 0, "manifests": 0, "expressions": 0, "units": 0, "tls": 0, "probes": 0}
        # What each service accepts and requires: FLAGS and REQUIRED_FLAGS, plus the TLS flags where its main.cc
        # says so (check_facts_in_source; a service whose source is not here is taken to be TLS-only, as all are).
        self.flags = {s: {**f, **SECURITY_FLAGS} for s, f in FLAGS.items()}
        self.required = {s: REQUIRED_FLAGS[s] | TLS_REQUIRED for s in FLAGS}
        self.targets = {}  # per service: [(Service name, port)] that lead to its --listen port
        self.dialled = []  # (where, client, flag, value) of every ADDRESS_FLAGS flag in a manifest
        self.addresses = 0  # ADDRESS_FLAGS values that lead to their service
        self.not_in_checkout = []  # services whose main.cc is not here: their facts were not looked up
        self.commands_used = set()  # of COMMANDS_RUN, those the manifests run
        self.consoles = []  # (where, pod labels, console port, {port name: containerPort}) per console
        self.local_network = (self.load_yaml(root / "deploy" / "local" / "network.yaml") or [{}])[0]
        self.network = self.local_network  # the cluster's, once read from its ConfigMap

    def problem(self, path, text):
        self.problems.append(f"{path.relative_to(self.root) if isinstance(path, Path) else path}: {text}")

    # ---- the facts above still hold in the code -------------------------------------------------------------

    def check_facts_in_source(self):
        """A flag or metric removed from the code must not live on in deploy/: each fact is looked up."""
        for service, flags in FLAGS.items():
            main = self.root / "services" / service / "main.cc"
            if not main.exists() and not (self.root / "services" / service / "CMakeLists.txt").exists():
                # A service being added (its deploy material may come before its code): no source to ask.
                self.not_in_checkout.append(service)
                continue
            text = main.read_text() if main.exists() else ""
            options = option_statements(text)
            # --audit-signing-key is added by AddAuditSigningKeyFlag (SECURITY_SOURCE), an optional flag with a value.
            if "AddAuditSigningKeyFlag(" in text:
                options.setdefault(AUDIT_KEY_FLAG, (True, False))
            if "service::Process process(" in text:
                options.update(self.shell_options(text))
                text += " AddSecurityFlags( LoadServerSecurity("  # the shell's
            for flag, takes_value in flags.items():
                if flag not in options:
                    self.problem(main, f"no flag {flag} any more (update tests/deploy/check_deploy.py)")
                elif options[flag][0] != takes_value:
                    self.problem(main, f"{flag} {'takes a value' if options[flag][0] else 'is a bare switch'} "
                                       "now (update FLAGS in tests/deploy/check_deploy.py)")
            for flag, (_, required) in sorted(options.items()):
                if flag not in flags and flag not in NOT_DEPLOYED.get(service, ()):
                    self.problem(main, f"a flag {flag} that tests/deploy/check_deploy.py does not know: add it to "
                                       "FLAGS (or NOT_DEPLOYED), and to REQUIRED_FLAGS if required")
                elif required and flag not in REQUIRED_FLAGS[service]:
                    self.problem(main, f"{flag} is required (the service does not start without it), but not in "
                                       f"REQUIRED_FLAGS[{service!r}] of tests/deploy/check_deploy.py")
            for flag in sorted(REQUIRED_FLAGS[service]):
                if flag in options and not options[flag][1]:
                    self.problem(main, f"{flag} is not required any more (update REQUIRED_FLAGS in "
                                       "tests/deploy/check_deploy.py)")
            # The TLS flags come from AddSecurityFlags; LoadServerSecurity refuses to start without the first three.
            if "AddSecurityFlags(" not in text:
                self.flags[service] = dict(flags)
            if "LoadServerSecurity(" not in text:
                self.required[service] = set(REQUIRED_FLAGS[service])
        security = self.root / SECURITY_SOURCE
        security_text = security.read_text() if security.exists() else ""
        for flag in SECURITY_FLAGS:
            if any(flag in f for f in self.flags.values()) and f'"{flag}"' not in security_text:
                self.problem(security, f"AddSecurityFlags adds no flag {flag} any more "
                                       "(update tests/deploy/check_deploy.py)")
        if f'"{AUDIT_KEY_FLAG}"' not in security_text:
            self.problem(security, f"AddAuditSigningKeyFlag adds no flag {AUDIT_KEY_FLAG} any more "
                                   "(update tests/deploy/check_deploy.py)")
        sources = "".join(p.read_text() for d in METRIC_SOURCES for p in sorted((self.root / d).glob("*.cc")))
        for metric in METRICS:
            if EXPORTED_BY.get(metric) in self.not_in_checkout:
                continue
            if f'"{metric}"' not in sources:
                self.problem(", ".join(METRIC_SOURCES), f"no metric {metric} any more")

    def shell_options(self, main_text):
        """The flags the process shell gives the service whose main.cc is `main_text`, as option_statements."""
        process = self.root / PROCESS_SOURCE
        shell = option_statements(process.read_text()) if process.exists() else {}
        if not shell:
            self.problem(PROCESS_SOURCE, "no flags found (update tests/deploy/check_deploy.py)")
        network = re.search(r"NetworkFlag::k(Optional|Required)", main_text)
        options = {flag: (value, False) for flag, (value, _) in shell.items() if flag != "--network"}
        if network and "--network" in shell:
            options["--network"] = (shell["--network"][0], network.group(1) == "Required")
        if re.search(r"\.audit_signing_key\s*=\s*true", main_text):
            options[AUDIT_KEY_FLAG] = (True, False)
        return options

    # ---- parsing -------------------------------------------------------------------------------------------

    def load_yaml(self, path):
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        except yaml.YAMLError as e:
            self.problem(path, "not valid YAML: " + " ".join(str(e).split()))
            return None
        return docs

    def load_json(self, path):
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            self.problem(path, f"not valid JSON: {e}")
            return None
        return data

    def parse_everything(self):
        deploy = self.root / "deploy"
        for path in sorted(deploy.rglob("*")):
            if re.search(r"\.(ya?ml)(\.example)?$", path.name):
                self.counts["yaml"] += self.load_yaml(path) is not None
            elif path.name.endswith(".json"):
                self.counts["json"] += self.load_json(path) is not None

    # ---- command lines -------------------------------------------------------------------------------------

    def check_command_line(self, where, service, args, env=None):
        """args: the words after the binary. env: names $(VAR) may use (Kubernetes), or None (systemd)."""
        if service not in FLAGS:
            self.problem(where, f"unknown service {service!r} (expected one of {', '.join(FLAGS)})")
            return {}
        known, given, i = self.flags[service], {}, 0
        while i < len(args):
            word = str(args[i])
            name, has_value, value = word.partition("=")
            if not name.startswith("--"):
                self.problem(where, f"{word!r} is no flag of {service}")
            elif name not in known:
                self.problem(where, f"{service} has no flag {name} (it has {', '.join(sorted(known))})")
            elif known[name] and not has_value:
                if i + 1 >= len(args) or str(args[i + 1]).startswith("--"):
                    self.problem(where, f"{name} needs a value")
                else:
                    i += 1
                    value = str(args[i])
            elif not known[name] and has_value:
                self.problem(where, f"{name} takes no value")
            if name in given:
                self.problem(where, f"{name} given twice")
            given[name] = value
            if env is not None:
                for var in re.findall(r"\$\((\w+)\)", value):
                    if var not in env:
                        self.problem(where, f"{name} uses $({var}), which the container does not define")
            i += 1
        for name in sorted(self.required[service] - given.keys()):
            why = " (TLS only: without it the service exits 2 at start)" if name in TLS_REQUIRED else ""
            self.problem(where, f"{service} needs {name}{why}")
        if TLS_REQUIRED <= self.required[service] and TLS_REQUIRED <= given.keys():
            self.counts["tls"] += 1
        return given

    # ---- Kubernetes ----------------------------------------------------------------------------------------

    def check_kubernetes(self):
        k8s = self.root / "deploy" / "k8s"
        objects = []  # (path, manifest)
        for path in sorted(list(k8s.glob("*.yaml")) + list(k8s.glob("*.yaml.example"))):
            for doc in self.load_yaml(path) or []:
                objects.append((path, doc))
        by_kind = {}
        for path, obj in objects:
            self.counts["manifests"] += 1
            name = (obj.get("metadata") or {}).get("name") if isinstance(obj, dict) else None
            if not isinstance(obj, dict) or not obj.get("apiVersion") or not obj.get("kind") or not name:
                self.problem(path, "a manifest without apiVersion, kind or metadata.name")
                continue
            if obj["kind"] != "Namespace" and obj["metadata"].get("namespace") != "schakel":
                self.problem(path, f"{obj['kind']} {name}: not in namespace schakel")
            if obj["kind"] == "Secret" and path.name.endswith(".yaml"):
                self.problem(path, f"Secret {name}: `kubectl apply -f deploy/k8s/` would put this over the real "
                                   "one (keep examples in *.yaml.example)")
            by_kind.setdefault(obj["kind"], {})[name] = obj
        for path, obj in objects:
            if isinstance(obj, dict) and obj.get("kind") in ("StatefulSet", "Deployment"):
                self.check_workload(path, obj, by_kind)
        self.check_consoles_unexposed(by_kind.get("Service", {}))
        self.check_addresses()
        readme = self.root / "deploy" / "README.md"
        text = readme.read_text() if readme.exists() else ""
        for command in sorted(self.commands_used):
            pinned = f"{COMMANDS_RUN[command]['module']}@{COMMANDS_RUN[command]['version']}"
            if pinned not in text or command not in text:
                self.problem(readme, f"the manifests run {command}: say how to build {pinned} into the images, "
                                     f"at {command}")
        self.check_network_configmap(by_kind.get("ConfigMap", {}))
        self.check_inboxes(k8s)

    def check_consoles_unexposed(self, services):
        """No Service leads to a console: port-forward is the way in (and the operator's certificate)."""
        for where, labels, console_port, named in self.consoles:
            for name, service in services.items():
                spec = service.get("spec") or {}
                selector = spec.get("selector") or {}
                if not selector or any(labels.get(k) != v for k, v in selector.items()):
                    continue
                for port in spec.get("ports") or []:
                    target = port.get("targetPort", port.get("port"))
                    target = named.get(target) if isinstance(target, str) else target
                    if target == console_port or port.get("port") == console_port:
                        self.problem(where, f"Service {name} exposes the console's port {console_port} "
                                            f"(port {port.get('name') or port.get('port')}); operators reach it with "
                                            "kubectl port-forward")

    def check_workload(self, path, obj, by_kind):
        where = f"{path.relative_to(self.root)}: {obj['kind']} {obj['metadata']['name']}"
        spec = obj.get("spec") or {}
        if obj["kind"] == "StatefulSet" and spec.get("serviceName") not in by_kind.get("Service", {}):
            self.problem(where, f"serviceName {spec.get('serviceName')!r} is no Service in deploy/k8s")
        template = spec.get("template") or {}
        pod = template.get("spec") or {}
        annotations = (template.get("metadata") or {}).get("annotations") or {}
        if (pod.get("terminationGracePeriodSeconds") or 0) < 30:
            self.problem(where, "terminationGracePeriodSeconds below 30 (the ordered shutdown needs the time)")
        volumes = {v.get("name"): v for v in pod.get("volumes") or []}
        for claim in spec.get("volumeClaimTemplates") or []:
            volumes[(claim.get("metadata") or {}).get("name")] = claim
        for volume in pod.get("volumes") or []:
            ref = (volume.get("configMap") or {}).get("name")
            if ref and ref not in by_kind.get("ConfigMap", {}):
                self.problem(where, f"volume {volume['name']}: no ConfigMap {ref} in deploy/k8s")
            sources = [{"secret": {"name": (volume.get("secret") or {}).get("secretName")}}] if "secret" in volume \
                else (volume.get("projected") or {}).get("sources") or []
            for source in sources:
                ref = (source.get("configMap") or {}).get("name")
                if ref and ref not in by_kind.get("ConfigMap", {}):
                    self.problem(where, f"volume {volume['name']}: no ConfigMap {ref} in deploy/k8s")
                ref = (source.get("secret") or {}).get("name")
                if ref and (TLS_SECRET_NAME.fullmatch(ref) or AUDIT_SECRET_NAME.fullmatch(ref)):
                    continue  # made with kubectl (deploy/README.md); check_tls_files/check_audit_key check which
                if ref and ref not in by_kind.get("Secret", {}):
                    self.problem(where, f"volume {volume['name']}: no Secret {ref} (not even as an example)")
        containers = pod.get("containers") or []
        if not containers:
            self.problem(where, "no containers")
        for c in containers:
            cwhere = f"{where}, container {c.get('name')}"
            image = c.get("image") or ""
            m = re.fullmatch(r"[\w.\-/:]+/schakel/([\w-]+):[\w.\-]+", image)
            if not m:
                self.problem(cwhere, f"image {image!r} is not registry/.../schakel/<service>:<tag>")
                continue
            env = {e.get("name") for e in c.get("env") or []}
            for ref in (e.get("valueFrom", {}).get("configMapKeyRef") for e in c.get("env") or []):
                if ref and ref.get("key") not in (by_kind.get("ConfigMap", {}).get(ref.get("name"), {})
                                                  .get("data") or {}):
                    self.problem(cwhere, f"env refers to {ref.get('name')}/{ref.get('key')}, "
                                         "which deploy/k8s does not define")
            given = self.check_command_line(cwhere, m.group(1), c.get("args") or [], env)
            ports = {p.get("containerPort") for p in c.get("ports") or []}
            listen_port, metrics_port = port_of(given.get("--listen")), port_of(given.get("--metrics-listen"))
            for flag, port in (("--listen", listen_port), ("--metrics-listen", metrics_port)):
                if port not in ports:
                    self.problem(cwhere, f"{flag} port {port or '(none)'} is not among the containerPorts")
                # The kubelet's probes and Prometheus come from outside the pod, to its own address.
                if not str(given.get(flag, "")).startswith(("0.0.0.0:", "[::]:")):
                    self.problem(cwhere, f"{flag} must listen on 0.0.0.0 in a container")
            console_flag = CONSOLE_FLAG.get(m.group(1))
            if console_flag:
                console = given.get(console_flag)
                # Without the flag the service would use its default, 127.0.0.1: the manifest should say so.
                if not str(console or "").startswith(LOOPBACK) or not port_of(console):
                    self.problem(cwhere, f"{console_flag} must be given and listen on 127.0.0.1 in a container "
                                         "(operators reach it with kubectl port-forward)")
                if port_of(console):
                    self.consoles.append((cwhere, (template.get("metadata") or {}).get("labels") or {},
                                          port_of(console),
                                          {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}))
            if str(annotations.get("prometheus.io/scrape")) != "true" or \
                    str(annotations.get("prometheus.io/port")) != str(metrics_port):
                self.problem(cwhere, f"the pod needs prometheus.io/scrape \"true\" and prometheus.io/port "
                                     f"\"{metrics_port}\" (its --metrics-listen)")
            labels = (template.get("metadata") or {}).get("labels") or {}
            # The names the service's clients use, which its certificate must hold (and the probe verifies).
            server_names = set()
            for service_name, service in by_kind.get("Service", {}).items():
                selector = (service.get("spec") or {}).get("selector") or {}
                if selector and all(labels.get(k) == v for k, v in selector.items()):
                    server_names.add(f"{service_name}.schakel.svc")
            self.check_probes(cwhere, c, listen_port, given, server_names)
            named = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
            for service_name, service in by_kind.get("Service", {}).items():
                spec_ = service.get("spec") or {}
                selector = spec_.get("selector") or {}
                if not selector or any(labels.get(k) != v for k, v in selector.items()):
                    continue
                for port in spec_.get("ports") or []:
                    target = port.get("targetPort", port.get("port"))
                    if (named.get(target) if isinstance(target, str) else target) == listen_port:
                        self.targets.setdefault(m.group(1), []).append((service_name, port.get("port")))
            for (client, flag) in ADDRESS_FLAGS:
                if client == m.group(1) and flag in given:
                    self.dialled.append((cwhere, client, flag, str(given[flag])))
            self.check_state(where, cwhere, obj, m.group(1), given, c.get("volumeMounts") or [], volumes)
            for mount in c.get("volumeMounts") or []:
                if mount.get("name") not in volumes:
                    self.problem(cwhere, f"volumeMount {mount.get('name')} has no volume")
            self.check_tls_files(cwhere, obj["metadata"]["name"], given, c.get("volumeMounts") or [], volumes,
                                 (pod.get("securityContext") or {}).get("fsGroup"))
            self.check_audit_key(cwhere, m.group(1), obj["metadata"]["name"], given, c.get("volumeMounts") or [],
                                 volumes)

    def check_state(self, where, cwhere, obj, service, given, mounts, volumes):
        """A single writer runs once; its files are on a volume that outlives the pod; its keys from Secrets."""
        spec = obj.get("spec") or {}
        if service in SINGLE_WRITER and (obj["kind"] != "StatefulSet" or spec.get("replicas") != 1):
            self.problem(where, f"{service} is the single writer of its SQLite file: a StatefulSet with replicas: 1 "
                                f"(it is {obj['kind']} with replicas: {spec.get('replicas', 1)})")
        flag = PERSISTENT_FILE_FLAGS.get(service)
        if flag:
            path = given.get(flag)
            mount = mount_of(path, mounts) if path else None
            volume = volumes.get((mount or {}).get("name")) or {}
            claim = volume.get("spec") is not None or "persistentVolumeClaim" in volume
            if not path or not mount or not claim:
                self.problem(cwhere, f"{flag}={path or '(default: in the working directory)'} must be on a volume "
                                     "from volumeClaimTemplates (or a PersistentVolumeClaim): it must outlive the pod")
        for (client, flag), (secret, key) in KEY_SECRETS.items():
            if client != service or flag not in given:
                continue
            found = [f for f in secret_files(str(given[flag]), mounts, volumes) if f[:2] == (secret, key)]
            if not found:
                self.problem(cwhere, f"{flag}={given[flag]}: no volume mounts key {key} of Secret {secret} there "
                                     "(made by hand: never a file the service makes on its own volume)")
            elif found[0][2] & 0o007:
                self.problem(cwhere, f"{flag}: mode {found[0][2]:04o} lets every user in the container read the key "
                                     "(defaultMode 0440 with the pod's fsGroup)")

    def check_addresses(self):
        """Each ADDRESS_FLAGS value is <Service>.schakel.svc:<port> of a Service leading to the --listen port of
        the service it names."""
        for where, client, flag, value in self.dialled:
            service = ADDRESS_FLAGS[(client, flag)]
            targets = self.targets.get(service) or []
            wanted = [f"{name}.schakel.svc:{port}" for name, port in targets]
            if value in wanted:
                self.addresses += 1
            elif not targets:
                self.problem(where, f"{flag}={value}: no Service in deploy/k8s leads to the {service} service's "
                                    "--listen port")
            else:
                self.problem(where, f"{flag}={value}: must be {' or '.join(wanted)} (a Service leading to the "
                                    f"{service} service's --listen port, under the name its certificate holds)")

    def check_exec(self, where, what, command):
        """A command a manifest runs: one of COMMANDS_RUN, with flags it has. Returns {flag: value or True}."""
        command = [str(word) for word in command or []]
        known = COMMANDS_RUN.get(command[0] if command else "")
        if known is None:
            self.problem(where, f"{what} runs {command[:1]}, which is none of the commands the images are known "
                                f"to hold ({', '.join(COMMANDS_RUN)}; add it to COMMANDS_RUN and deploy/README.md)")
            return {}
        self.commands_used.add(command[0])
        flags = {}
        for word in command[1:]:
            name, has_value, value = word.partition("=")
            if name not in known["flags"]:
                self.problem(where, f"{what}: {command[0]} has no flag {name}")
            elif known["flags"][name] != bool(has_value):
                self.problem(where, f"{what}: {command[0]} {name} " +
                             ("takes a value (write it as " + name + "=VALUE)" if known["flags"][name]
                              else "takes no value"))
            flags[name] = value if has_value else True
        return flags

    def check_probes(self, where, c, listen_port, given, server_names):
        """Readiness: the gRPC health check over TLS (HEALTH_PROBE) on the --listen port. Liveness: the same,
        or a TCP connection to that port. The kubelet's own gRPC probe speaks no TLS, so it can never pass."""
        for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
            probe = c.get(kind) or {}
            if "grpc" in probe:
                self.problem(where, f"{kind}: the kubelet's gRPC probe speaks no TLS and the service speaks only "
                                    f"TLS, so it never passes: exec {HEALTH_PROBE} instead")
        for hook, handler in ((c.get("lifecycle") or {}).items()):
            if "exec" in (handler or {}):
                self.check_exec(where, f"lifecycle {hook}", handler["exec"].get("command"))
        readiness, liveness = c.get("readinessProbe") or {}, c.get("livenessProbe") or {}
        if "exec" not in readiness:
            self.problem(where, f"readinessProbe must exec {HEALTH_PROBE} (the gRPC health check over TLS) on the "
                                "--listen port")
        for kind, probe in (("readinessProbe", readiness), ("livenessProbe", liveness)):
            if "exec" in probe:
                self.check_health_probe(where, kind, probe, listen_port, given, server_names)
        if "exec" not in liveness and (liveness.get("tcpSocket") or {}).get("port") != listen_port:
            self.problem(where, f"livenessProbe must check the --listen port (tcpSocket, or exec {HEALTH_PROBE})")

    def check_health_probe(self, where, kind, probe, listen_port, given, server_names):
        command = (probe.get("exec") or {}).get("command") or []
        flags = self.check_exec(where, kind, command)
        if not command or str(command[0]) != HEALTH_PROBE:
            if command and str(command[0]) in COMMANDS_RUN:
                self.problem(where, f"{kind} must exec {HEALTH_PROBE}")
            return
        self.counts["probes"] += 1
        address = str(flags.get("-addr", ""))
        if not address.startswith(LOOPBACK) or port_of(address) != listen_port:
            self.problem(where, f"{kind}: -addr must be 127.0.0.1:{listen_port} (the --listen port, in the pod)")
        if flags.get("-tls") is not True or "-tls-no-verify" in flags:
            self.problem(where, f"{kind}: needs -tls, and verifies the certificate (no -tls-no-verify)")
        if flags.get("-tls-ca-cert") != given.get("--tls-ca"):
            self.problem(where, f"{kind}: -tls-ca-cert must be the service's --tls-ca ({given.get('--tls-ca')})")
        if not server_names:
            self.problem(where, f"{kind}: no Service selects this pod, so its certificate has no name to verify")
        elif flags.get("-tls-server-name") not in server_names:
            self.problem(where, f"{kind}: -tls-server-name must be the Service's name, "
                                f"{' or '.join(sorted(server_names))} (its certificate's subjectAltName)")
        # The kubelet stops the probe after timeoutSeconds (default 1): let it finish connecting and asking.
        seconds = sum(duration_seconds(flags.get(f, "1s")) for f in ("-connect-timeout", "-rpc-timeout"))
        if (probe.get("timeoutSeconds") or 1) < seconds:
            self.problem(where, f"{kind}: timeoutSeconds {probe.get('timeoutSeconds') or 1} is shorter than the "
                                f"probe's -connect-timeout and -rpc-timeout together ({seconds:g}s)")

    def check_audit_key(self, where, service, workload, given, mounts, volumes):
        """A writer of the audit stream signs with its own key, from its own Secret, readable by its group only."""
        if service not in AUDIT_WRITERS:
            return
        path = given.get(AUDIT_KEY_FLAG)
        if not path:
            self.problem(where, f"no {AUDIT_KEY_FLAG}: {service} writes the audit stream, and its entries would go "
                                "unsigned (`schakelctl audit verify` fails on them)")
            return
        secret = AUDIT_KEY_SECRET.format(name=workload)
        found = [f for f in secret_files(str(path), mounts, volumes) if f[0] == secret]
        if not found:
            self.problem(where, f"{AUDIT_KEY_FLAG}={path}: no volume mounts a key of Secret {secret} there (each "
                                "writer's own key, never another's)")
        elif found[0][2] & 0o007:
            self.problem(where, f"{AUDIT_KEY_FLAG}: mode {found[0][2]:04o} lets every user in the container read the "
                                "key (defaultMode 0440 with the pod's fsGroup)")

    def check_tls_files(self, where, workload, given, mounts, volumes, fs_group):
        """Each TLS flag names a file from its Secret (TLS_SECRETS) that the service can read."""
        for flag, (secret, key) in TLS_SECRETS.items():
            if flag not in given:
                continue
            secret, path = secret.format(name=workload), str(given[flag])
            found = [s for s in secret_files(path, mounts, volumes) if s[:2] == (secret, key)]
            if not found:
                self.problem(where, f"{flag}={path}: no volume mounts key {key} of Secret {secret} there")
                continue
            mode = found[0][2]
            if flag == "--tls-key" and mode & 0o007:
                self.problem(where, f"{flag}: mode {mode:04o} lets every user in the container read the key "
                                    "(defaultMode 0440 with the pod's fsGroup)")
            if not mode & 0o004 and fs_group is None:
                self.problem(where, f"{flag}: mode {mode:04o} but the pod sets no fsGroup, so the service's user "
                                    "cannot read the file")

    def check_network_configmap(self, configmaps):
        """The cluster runs the example network, with a production replication factor and nothing else new."""
        path = self.root / "deploy" / "k8s" / "10-config.yaml"
        text = (configmaps.get("schakel-network", {}).get("data") or {}).get("network.yaml")
        if text is None:
            self.problem(path, "no ConfigMap schakel-network with a key network.yaml")
            return
        try:
            network = yaml.safe_load(text)
        except yaml.YAMLError as e:
            self.problem(path, "network.yaml in schakel-network is not valid YAML: "
                         + " ".join(str(e).split()))
            return
        self.network = network
        strip = lambda n: {k: v for k, v in n.items() if k != "topics"} if isinstance(n, dict) else n
        if strip(network) != strip(self.local_network):
            self.problem(path, "network.yaml differs from deploy/local/network.yaml (beyond `topics`)")

    def check_inboxes(self, k8s):
        """One inbox file per organisation, each the mjd one with another id."""
        orgs = [o["id"] for o in (self.network or {}).get("organisations", [])]
        reference = k8s / "40-inbox-mjd.yaml"
        if not reference.exists():
            self.problem(reference, "missing (the reference for the other inboxes)")
            return
        files = {p.name for p in k8s.glob("40-inbox-*.yaml")}
        for org in orgs:
            path = k8s / f"40-inbox-{org}.yaml"
            files.discard(path.name)
            if not path.exists():
                self.problem(path, f"missing: organisation {org} has no inbox")
            elif path.read_text() != reference.read_text().replace("mjd", org):
                self.problem(path, "differs from 40-inbox-mjd.yaml with mjd replaced by " + org)
        for name in sorted(files):
            self.problem(k8s / name, "an inbox for no organisation of the network file")

    # ---- PromQL --------------------------------------------------------------------------------------------

    def check_promql(self, where, expr):
        self.counts["expressions"] += 1
        names, labels = set(), set()
        for block in re.findall(r"\{((?:%s|[^{}\"'`])*)\}" % STRING, expr):
            for label, op, value in re.findall(r"(\w+)\s*(=~|!~|!=|=)\s*(%s)" % STRING, block):
                labels.add(label)
                self.check_label_value(where, label, op, value[1:-1])
        rest = re.sub(STRING, '""', expr)
        rest = re.sub(r"\{[^{}]*\}|\[[^\[\]]*\]", " ", rest)
        for group in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", rest):
            labels.update(x.strip() for x in group.split(",") if x.strip())
        rest = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", rest)
        rest = re.sub(r"\$\{[^}]*\}|\$\w+", " ", rest)
        rest = re.sub(r"\b\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|[smhdwy])?\b", " ", rest)
        if rest.count("(") != rest.count(")"):
            self.problem(where, f"unbalanced parentheses in {expr!r}")
        for word, call in re.findall(r"([A-Za-z_:][\w:]*)\s*(\()?", rest):
            if call:
                if word not in PROMQL_FUNCTIONS:
                    self.problem(where, f"unknown PromQL function {word}() in {expr!r}")
            elif word not in PROMQL_KEYWORDS:
                names.add(word)
        allowed_labels, unknown = set(TARGET_LABELS), False
        for name in names:
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            if name in METRICS or name in PROMETHEUS_OWN:
                allowed_labels |= METRICS.get(name, set())
            elif base in HISTOGRAMS:
                allowed_labels |= METRICS[base] | ({"le"} if name.endswith("_bucket") else set())
            else:
                unknown = True
                self.problem(where, f"no such metric {name} (the services export {', '.join(sorted(METRICS))})")
        for label in sorted(labels - allowed_labels if not unknown else ()):
            self.problem(where, f"label {label} is on none of {', '.join(sorted(names))}")

    def check_label_value(self, where, label, op, value):
        if label not in LABEL_VALUES or op not in ("=", "=~") or "$" in value:
            return
        values = value.split("|") if op == "=~" else [value]
        if op == "=~" and not all(re.fullmatch(r"[\w.\-]+", v) for v in values):
            return  # a real regular expression: not checked
        for v in values:
            if v not in LABEL_VALUES[label] and not (
                    label == "topic"
                    and v.startswith(("schakel.inbox.", "schakel.from.", "schakel.load.", "schakel.deadletters.inbox-"))):
                self.problem(where, f"{label} is never {v!r} "
                                    f"(it is one of {', '.join(sorted(LABEL_VALUES[label]))})")

    def check_template_labels(self, where, text):
        """{{ $labels.x }} in alerts and {{x}} in legends: labels that exist."""
        known = TARGET_LABELS | {"le"} | set().union(*METRICS.values())
        for label in re.findall(r"\$labels\.(\w+)", text) + re.findall(r"\{\{\s*(\w+)\s*\}\}", text):
            if label not in known:
                self.problem(where, f"template names label {label}, which no series has")

    def check_metric_words(self, path):
        """Any schakel_* word anywhere in the file (descriptions too) is a real metric."""
        series = set(METRICS) | {f"{h}_{s}" for h in HISTOGRAMS for s in ("bucket", "count", "sum")}
        for word in sorted(set(re.findall(r"\bschakel_\w+", path.read_text())) - series):
            self.problem(path, f"names {word}, which no service exports")

    # ---- Prometheus and Grafana ----------------------------------------------------------------------------

    def check_prometheus(self):
        folder = self.root / "deploy" / "prometheus"
        config = (self.load_yaml(folder / "prometheus.yml") or [{}])[0]
        jobs = {j.get("job_name"): j for j in config.get("scrape_configs") or []}
        if set(jobs) != {"intake", "router", "inbox", "ops", "keys"}:
            self.problem(folder / "prometheus.yml", f"jobs {sorted(jobs)}, expected intake, router, inbox, ops, keys")
        orgs = (self.local_network or {}).get("organisations", [])
        expected = {"intake": [("127.0.0.1:9451", None)], "router": [("127.0.0.1:9452", None)],
                    "inbox": [(f"127.0.0.1:{9453 + i}", o["id"]) for i, o in enumerate(orgs)],
                    "ops": [(f"127.0.0.1:{9453 + len(orgs)}", None)],  # the port after the inboxes'
                    "keys": [(f"127.0.0.1:{9454 + len(orgs)}", None)]}  # and the one after ops's
        for job in sorted(HONOR_LABELS_JOBS & jobs.keys()):
            if jobs[job].get("honor_labels") is not True:
                self.problem(folder / "prometheus.yml", f"job {job} needs honor_labels: true (its metrics "
                                                        "carry their own `organisation`)")
        for job, targets in expected.items():
            found = [(t, (sc.get("labels") or {}).get("organisation")) for sc in
                     (jobs.get(job) or {}).get("static_configs") or [] for t in sc.get("targets") or []]
            for i in range(max(len(found), len(targets))):
                got, want = (found[i:i + 1] or [None])[0], (targets[i:i + 1] or [None])[0]
                if got != want:
                    self.problem(folder / "prometheus.yml", f"job {job}, target {i + 1}: {got}, expected "
                                                            f"{want} (deploy/local/up's ports, in network order)")
        for rule_file in config.get("rule_files") or []:
            if not (folder / rule_file).exists():
                self.problem(folder / "prometheus.yml", f"rule file {rule_file} does not exist")
        for path in sorted(folder.glob("*.yml")):
            self.check_metric_words(path)
            for doc in self.load_yaml(path) or []:
                for group in doc.get("groups") or []:
                    for rule in group.get("rules") or []:
                        where = f"{path.relative_to(self.root)}: rule {rule.get('alert') or rule.get('record')}"
                        if not (rule.get("alert") or rule.get("record")) or not rule.get("expr"):
                            self.problem(where, "a rule needs alert (or record) and expr")
                            continue
                        self.check_promql(where, str(rule["expr"]))
                        self.check_template_labels(where, json.dumps(rule.get("annotations") or {}))

    def check_grafana(self):
        for path in sorted((self.root / "deploy" / "grafana").glob("*.json")):
            self.check_metric_words(path)
            board = self.load_json(path)
            if board is None:
                continue  # told already
            rel = path.relative_to(self.root)
            if not isinstance(board.get("schemaVersion"), int):
                self.problem(path, "no schemaVersion")
            variables = {v.get("name"): v for v in (board.get("templating") or {}).get("list") or []}
            ds = variables.get("datasource") or {}
            if ds.get("type") != "datasource" or ds.get("query") != "prometheus":
                self.problem(path, "needs a variable `datasource` of type datasource, query prometheus")
            for name, var in variables.items():
                query = var.get("query")
                query = query.get("query") if isinstance(query, dict) else query
                m = re.fullmatch(r"\s*label_values\((?:(.*),)?\s*(\w+)\s*\)\s*", str(query or ""))
                if var.get("type") == "query" and (var.get("datasource") or {}).get("uid") != "${datasource}":
                    self.problem(path, f"variable {name}: datasource must be "
                                       "{type: prometheus, uid: ${datasource}}")
                if var.get("type") == "query" and not m:
                    self.problem(path, f"variable {name}: only label_values(...) queries are checked")
                elif m:
                    if m.group(1):
                        self.check_promql(f"{rel}: variable {name}", m.group(1))
                    self.check_template_labels(f"{rel}: variable {name}", "{{%s}}" % m.group(2))
            ids = [p.get("id") for p in board.get("panels") or []]
            if len(ids) != len(set(ids)):
                self.problem(path, f"panel ids repeat: {ids}")
            for panel in board.get("panels") or []:
                where = f"{rel}: panel {panel.get('title')!r}"
                for holder in [panel] + list(panel.get("targets") or []):
                    if (holder.get("datasource") or {}).get("uid") != "${datasource}":
                        self.problem(where, "datasource must be {type: prometheus, uid: ${datasource}}")
                if not panel.get("targets"):
                    self.problem(where, "no queries")
                for target in panel.get("targets") or []:
                    self.check_promql(where, target.get("expr") or "")
                    self.check_template_labels(where, target.get("legendFormat") or "")

    # ---- systemd -------------------------------------------------------------------------------------------

    def check_systemd(self):
        folder = self.root / "deploy" / "systemd"
        env_example = folder / "inbox.env.example"
        defined = set(re.findall(r"^(\w+)=", env_example.read_text(), re.M)) if env_example.exists() else set()
        for unit in sorted(folder.glob("*.service")):
            self.counts["units"] += 1
            text = re.sub(r"\\\n", " ", unit.read_text())
            starts = re.findall(r"^ExecStart=[-@:+!]*(.*)$", text, re.M)
            if len(starts) != 1:
                self.problem(unit, f"{len(starts)} ExecStart lines, expected one")
                continue
            words = shlex.split(starts[0])
            given = self.check_command_line(f"{unit.relative_to(self.root)}: ExecStart", Path(words[0]).name,
                                            words[1:])
            # A file from the credentials directory (%d) must be loaded into it (LoadCredential=NAME:PATH).
            credentials = set(re.findall(r"^(?:Load|Set|Import)Credential(?:Encrypted)?=([^:\s]+)", text, re.M))
            for flag, value in given.items():
                m = re.fullmatch(r"(?:%d|\$\{?CREDENTIALS_DIRECTORY\}?)/(.+)", str(value))
                if m and m.group(1) not in credentials:
                    self.problem(unit, f"{flag} reads credential {m.group(1)}, which no LoadCredential= loads")
            for var in re.findall(r"\$\{?(\w+)\}?", starts[0]):
                if var not in defined and var != "CREDENTIALS_DIRECTORY":  # systemd's own (LoadCredential)
                    self.problem(unit, f"ExecStart uses ${{{var}}}, which {env_example.name} does not set")


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2]).resolve()
    checker = Checker(root)
    checker.check_facts_in_source()
    checker.parse_everything()
    checker.check_kubernetes()
    checker.check_prometheus()
    checker.check_grafana()
    checker.check_systemd()
    if checker.problems:
        for line in dict.fromkeys(checker.problems):  # once each, in order
            print(line)
        return 1
    c = checker.counts
    missing = "".join(f" (services/{s}/main.cc is not in this checkout: {s}'s flags and metrics are taken "
                      "on trust from check_deploy.py)" for s in checker.not_in_checkout)
    print(f"{c['yaml']} YAML and {c['json']} JSON files parse; {c['manifests']} Kubernetes manifests, "
          f"{c['expressions']} PromQL expressions and {c['units']} systemd unit(s) "
          f"name only real flags and metrics{missing}; {c['tls']} service command lines start with "
          f"--tls-cert, --tls-key and --tls-ca, {c['probes']} probes check health over TLS, "
          f"{checker.addresses} service address(es) lead to the service they name")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reads what tests/bench/run collected in its output folder, prints the table, writes results.json and a
gnuplot script (latency.gp) with its data for latency.png. Standard library only (Debian's python3)."""

import argparse
import datetime
import json
import math
import os
import re
import sys

RATES = [100, 500, 2000]
CONCURRENCIES = [1, 16, 64]
MIB = 1024.0


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def ghz_summary(data):
    if not data:
        return None
    pct = {round(p["percentage"], 1): p["latency"] / 1e6 for p in data.get("latencyDistribution") or []}
    codes = data.get("statusCodeDistribution") or {}
    # ghz ends a timed run by closing the connection under the calls still in flight: those are no errors
    # of the server.
    cut = sum(n for message, n in (data.get("errorDistribution") or {}).items()
              if "closed network connection" in message or "transport is closing" in message
              or "context canceled" in message)
    return {
        "rps": data.get("rps", 0.0),
        "count": data.get("count", 0),
        "ok": codes.get("OK", 0),
        "errors": {k: v for k, v in codes.items() if k != "OK"},
        "cut_at_end": cut,
        "p50_ms": pct.get(50.0),
        "p99_ms": pct.get(99.0),
        "average_ms": data.get("average", 0) / 1e6,
    }


def producer_performance(text):
    # "N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency, a ms 50th, b ms 95th, ..."
    m = re.search(
        r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
        r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th", text)
    if not m:
        return None
    return {"records": int(m.group(1)), "records_per_s": float(m.group(2)), "mb_per_s": float(m.group(3)),
            "avg_ms": float(m.group(4)), "max_ms": float(m.group(5)), "p50_ms": int(m.group(6)),
            "p95_ms": int(m.group(7)), "p99_ms": int(m.group(8)), "p999_ms": int(m.group(9))}


def end_to_end_latency(text):
    avg = re.search(r"Avg latency: ([\d.]+) ms", text)
    pct = re.search(r"Percentiles: 50th = (\d+), 99th = (\d+), 99.9th = (\d+)", text)
    if not pct:
        return None
    return {"avg_ms": float(avg.group(1)) if avg else None, "p50_ms": int(pct.group(1)),
            "p99_ms": int(pct.group(2)), "p999_ms": int(pct.group(3)),
            "note": "Kafka's tool: one record at a time, produce then consume, whole milliseconds"}


def rss_tables(folder):
    rest, load = {}, {}
    for line in read_text(os.path.join(folder, "rss-rest.tsv")).splitlines():
        name, kib = line.split("\t")
        rest[name] = int(kib) / MIB
    for line in read_text(os.path.join(folder, "rss-load.tsv")).splitlines():
        parts = line.split("\t")
        load[parts[0]] = {"peak_mib": int(parts[1]) / MIB,
                          "max_sampled_at_top_rate_mib": int(parts[2] or 0) / MIB,
                          "after_mib": int(parts[3]) / MIB}
    return {name: {"rest_mib": rest.get(name), **load.get(name, {})} for name in sorted(set(rest) | set(load))}


def history_tables(folder):
    """Each service's peak and current RSS (MiB) after the history part's first 10,000 referrals and at its end."""
    out = {}
    for when in ("first", "last"):
        for line in read_text(os.path.join(folder, f"history-rss-{when}.tsv")).splitlines():
            name, peak, now = line.split("\t")
            out.setdefault(name, {})[when] = {"peak_mib": int(peak) / MIB, "rss_mib": int(now) / MIB}
    return out


def routing(data):
    rows = {}
    for b in (data or {}).get("benchmarks", []):
        name, _, arg = b["name"].partition("/")
        rows.setdefault(int(arg), {})[name.replace("BM_", "")] = {"time": b["real_time"], "unit": b["time_unit"]}
    return rows


def fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return "-"
    return f"{v:,.{digits}f}"


def verdict(ok):
    return "met" if ok else "SHORT"


def percentile_file(raw_path, dat_path):
    """Writes (1/(1-q), latency) pairs of the sorted samples for the percentile plot; returns the count."""
    try:
        with open(raw_path) as f:
            values = sorted(float(line) for line in f if line.strip())
    except OSError:
        return 0
    n = len(values)
    if n == 0:
        return 0
    with open(dat_path, "w") as out:
        step = max(1, n // 2000)
        for k in range(0, n, step):
            q = (k + 1) / n
            out.write(f"{1.0 / max(1.0 - q, 0.5 / n):.6f} {values[k]:.4f}\n")
        out.write(f"{2.0 * n:.6f} {values[-1]:.4f}\n")
    return n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--cores", required=True)
    p.add_argument("--cpu", required=True)
    p.add_argument("--quick", default="false")
    p.add_argument("--record-size", type=int, default=0)
    p.add_argument("--inbox-assignments", type=int, default=0)
    p.add_argument("--seconds", type=int, default=0)
    p.add_argument("--load", default="")
    p.add_argument("--load-start", default="")
    a = p.parse_args()
    d = a.dir

    throughput = {}
    for c in CONCURRENCIES:
        throughput[c] = {}
        for kind in ("submit", "health"):
            summary = ghz_summary(load_json(os.path.join(d, f"ghz-{kind}-c{c}.json")))
            cpu = load_json(os.path.join(d, f"ghz-{kind}-c{c}.cpu"))
            if summary and cpu and summary["count"]:
                summary["cpu_ms"] = cpu
                summary["intake_cpu_us_per_call"] = 1000.0 * cpu["intake_ms"] / summary["count"]
                summary["broker_cpu_us_per_call"] = 1000.0 * cpu["broker_ms"] / summary["count"]
                summary["ghz_cpu_us_per_call"] = 1000.0 * cpu["ghz_ms"] / summary["count"]
            throughput[c][kind] = summary
    producer = producer_performance(read_text(os.path.join(d, "producer-performance.txt")))
    kafka_e2e = end_to_end_latency(read_text(os.path.join(d, "end-to-end-latency.txt")))
    e2e = {r: load_json(os.path.join(d, f"e2e-{r}.json")) for r in RATES}
    memory = rss_tables(d)
    lag = {}
    for r in RATES:
        for line in read_text(os.path.join(d, f"lag-{r}.tsv")).splitlines():
            name, topic, n = line.split("\t")
            lag.setdefault(str(r), {}).setdefault(name, {})[topic] = int(n)
    inbox = load_json(os.path.join(d, "inbox-scale.json"))
    scale = load_json(os.path.join(d, "scale.json"))
    scale_routers = {}
    for line in read_text(os.path.join(d, "scale-routers.tsv")).splitlines():
        if line:
            name, n = line.split("\t")
            scale_routers[name] = int(n)
    history = load_json(os.path.join(d, "history.json"))
    history_rss = history_tables(d)
    history_restore = {}
    for line in read_text(os.path.join(d, "history-restore.tsv")).splitlines():
        key, _, value = line.partition("\t")
        if value.isdigit():  # empty when the restarted router did not report its restore
            history_restore[key] = int(value)
    route = routing(load_json(os.path.join(d, "routing.json")))
    txn = load_json(os.path.join(d, "txn-latency.json"))
    # CPU ms of each process (the broker too) per acknowledged referral, over each end-to-end run.
    cpu_per_referral = {}
    for r in RATES:
        x = e2e.get(r)
        rows = [line.split("\t") for line in read_text(os.path.join(d, f"cpu-{r}.tsv")).splitlines() if line]
        if x and rows and x.get("acked_all"):
            per = {name: int(ms) / x["acked_all"] for name, ms in rows}
            # broker-jit: the part of the broker's CPU its JIT compiler threads used (in "broker" already).
            per["all"] = sum(v for name, v in per.items() if name != "broker-jit")
            cpu_per_referral[r] = per
    # The broker's requests per acknowledged referral, by type (from its JMX counters).
    requests_per_referral = {}
    bytes_per_referral = {}  # what producers wrote to the broker (BytesInPerSec), per referral
    for r in RATES:
        x = e2e.get(r)
        rows = [line.split("\t") for line in read_text(os.path.join(d, f"requests-{r}.tsv")).splitlines() if line]
        if x and rows and x.get("acked_all"):
            # FetchConsumer and FetchFollower are Fetch requests counted again by who sent them.
            per = {kind: int(n) / x["acked_all"] for kind, n in rows
                   if int(n) > 0 and kind not in ("FetchConsumer", "FetchFollower", "BytesIn")}
            per["all"] = sum(per.values())
            requests_per_referral[r] = per
            bytes_in = [int(n) for kind, n in rows if kind == "BytesIn"]
            if bytes_in:
                bytes_per_referral[r] = bytes_in[0] / x["acked_all"]

    # At rest: every process's CPU ms and the broker's requests per second with no referral in flight.
    at_rest = {}
    rest_us = read_text(os.path.join(d, "rest-us.txt")).strip()
    if rest_us.isdigit() and int(rest_us) > 0:
        seconds = int(rest_us) / 1e6
        cpu = [line.split("\t") for line in read_text(os.path.join(d, "cpu-rest.tsv")).splitlines() if line]
        requests = [line.split("\t") for line in read_text(os.path.join(d, "requests-rest.tsv")).splitlines()
                    if line]
        per_s = {name: int(ms) / seconds for name, ms in cpu}
        per_s["all"] = sum(v for name, v in per_s.items() if name != "broker-jit")
        req = {kind: int(n) / seconds for kind, n in requests
               if int(n) > 0 and kind not in ("FetchConsumer", "FetchFollower", "BytesIn")}
        req["all"] = sum(req.values())
        at_rest = {"seconds": round(seconds, 1), "cpu_ms_per_second": per_s, "broker_requests_per_second": req}

    # The targets of issue 20 (performance).
    targets = []
    s64, h64 = throughput[64]["submit"], throughput[64]["health"]
    if s64 and h64 and h64["rps"]:
        ratio = s64["rps"] / h64["rps"]
        targets.append({"target": "intake at concurrency 64 >= 0.25 x Health/Check", "value": round(ratio, 3),
                        "limit": 0.25, "met": ratio >= 0.25})
    s1 = throughput[1]["submit"]
    if s1:
        targets.append({"target": "intake at concurrency 1: SubmitReferral p50 <= 8 ms", "value": round(s1["p50_ms"], 2),
                        "limit": 8, "met": s1["p50_ms"] <= 8})
    if cpu_per_referral.get(500):
        v = cpu_per_referral[500]["all"]
        targets.append({"target": "CPU per referral at 500/s, all processes with the broker <= 1.0 ms",
                        "value": round(v, 2), "limit": 1.0, "met": v <= 1.0})
    if e2e.get(500) and kafka_e2e:
        limit = 6 * kafka_e2e["p99_ms"]
        v = e2e[500]["e2e_ms"]["p99"]
        targets.append({"target": "end-to-end p99 at 500/s <= 6 x Kafka EndToEndLatency p99 (ms)",
                        "value": round(v, 2), "limit": limit, "met": v <= limit and e2e[500]["missing"] == 0})
    if e2e.get(100):
        v = e2e[100]["e2e_ms"]["p99"]
        targets.append({"target": "end-to-end p99 at 100/s < 50 ms", "value": round(v, 2), "limit": 50,
                        "met": v < 50 and e2e[100]["missing"] == 0})
    if e2e.get(2000):
        x = e2e[2000]
        bad = x.get("deadline_exceeded", 0) + x["failed"] + x["missing"]
        targets.append({"target": "at 2,000/s every call OK or refused at once: calls past their deadline, "
                                  "failed otherwise, or acknowledged and missing = 0",
                        "value": bad, "limit": 0, "met": bad == 0})
    for name, m in memory.items():
        if "peak_mib" in m:
            targets.append({"target": f"peak RSS of {name} <= 64 MiB", "value": round(m["peak_mib"], 1),
                            "limit": 64, "met": m["peak_mib"] <= 64})
    if inbox:
        worst = max(inbox["cases"], key=lambda c: c["ms"]["p99"])
        targets.append({"target": f"inbox ListAssignments p99 on {inbox['assignments']:,} < 10 ms (worst case: "
                                  f"{worst['name']})", "value": round(worst["ms"]["p99"], 3), "limit": 10,
                        "met": worst["ms"]["p99"] < 10 and inbox["assignments"] >= 1000000})

    if scale:
        shares = list(scale_routers.values())
        ok = (scale["missing"] == 0 and scale["acked"] > 0 and len(shares) == 2 and all(n > 0 for n in shares))
        targets.append({"target": "two intakes and two routers: every acknowledged referral arrived, each router "
                                  "read a share (acknowledged but missing)", "value": scale["missing"], "limit": 0,
                        "met": ok})

    if history:
        n = history["acked"]
        for name, m in sorted(history_rss.items()):
            if "first" not in m or "last" not in m:
                continue
            first, last = m["first"]["peak_mib"], m["last"]["peak_mib"]
            targets.append({"target": f"after {n:,} referrals: peak RSS of {name} <= 64 MiB", "value": round(last, 1),
                            "limit": 64, "met": last <= 64})
            targets.append({"target": f"after {n:,} referrals: peak RSS of {name} within 10% of after 10,000 "
                                      f"({first:.1f} MiB)", "value": round(last, 1), "limit": round(1.1 * first, 1),
                            "met": last <= 1.1 * first})

    if history and len(history_restore) == 3:
        v = history_restore["peak_kib"] / 1024
        targets.append({"target": f"the router restarted after {history['acked']:,} referrals: peak RSS while it reads "
                                  f"{history_restore['state_records']:,} state records back <= 64 MiB",
                        "value": round(v, 1), "limit": 64, "met": v <= 64})

    fsync = read_text(os.path.join(d, "fsync-ms.txt")).strip()
    machine = {"cores": int(a.cores), "cpu": a.cpu, "load_average_at_start": a.load_start,
               "load_average_at_end": a.load,
               "sync_write_4k_ms": float(fsync) if fsync else None}
    results = {
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine, "quick": a.quick == "true", "seconds": a.seconds, "record_size_bytes": a.record_size,
        "intake_throughput": {str(c): v for c, v in throughput.items()},
        "kafka_producer_performance": producer,
        "end_to_end": {str(r): v for r, v in e2e.items()},
        "kafka_end_to_end_latency": kafka_e2e,
        "kafka_transaction": txn,
        "cpu_ms_per_referral": {str(r): v for r, v in cpu_per_referral.items()},
        "at_rest": at_rest,
        "broker_requests_per_referral": {str(r): v for r, v in requests_per_referral.items()},
        "broker_bytes_in_per_referral": {str(r): v for r, v in bytes_per_referral.items()},
        "consumer_lag_near_end_of_run": lag,
        "memory": memory, "inbox_scale": inbox,
        "routing_decision": {str(k): v for k, v in route.items()},
        "two_intakes_two_routers": {"end_to_end": scale, "submitted_read_per_router": scale_routers},
        "history": {"end_to_end": history, "rss": history_rss, "router_restart": history_restore},
        "targets": targets,
    }
    with open(os.path.join(d, "results.json"), "w") as f:
        json.dump(results, f, indent=2)

    # ---- the table ----
    w = sys.stdout.write
    w(f"\nSchakel benchmarks ({'quick run' if a.quick == 'true' else 'full run'}, {a.seconds} s): "
      f"{a.cores} cores, {a.cpu}; load average (1, 5, 15 min) at the start {a.load_start or '-'}, at the end "
      f"{a.load}; one synchronous 4 KiB write "
      f"{fsync or '-'} ms\n\n")
    w("1. Intake throughput: ghz, closed loop, one connection; SubmitReferral answers after Kafka acks=all\n")
    w("   (cpu: CPU time per call, in microseconds, of intake / of the broker / of ghz itself)\n")
    w(f"   {'concurrency':>11} {'Submit/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'cpu':>14} "
      f"{'Health/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'cpu':>12} {'ratio':>6}\n")
    for c in CONCURRENCIES:
        s, h = throughput[c]["submit"], throughput[c]["health"]
        if not s or not h:
            w(f"   {c:>11} (missing)\n")
            continue
        errors = sum(s["errors"].values()) - s["cut_at_end"]

        def cpu(x):
            if "intake_cpu_us_per_call" not in x:
                return "-"
            return (f"{x['intake_cpu_us_per_call']:.0f}/{x['broker_cpu_us_per_call']:.0f}/"
                    f"{x['ghz_cpu_us_per_call']:.0f}")
        w(f"   {c:>11} {fmt(s['rps'], 0):>9} {fmt(s['p50_ms'], 2):>7} {fmt(s['p99_ms'], 2):>7} {errors:>6} "
          f"{cpu(s):>14} {fmt(h['rps'], 0):>9} {fmt(h['p50_ms'], 2):>7} {fmt(h['p99_ms'], 2):>7} {cpu(h):>12} "
          f"{fmt(s['rps'] / h['rps'] if h['rps'] else None, 2):>6}\n")
    if producer:
        w(f"   Kafka ProducerPerformance ({producer['records']:,} records of {a.record_size} B, acks=all, "
          f"idempotent): {fmt(producer['records_per_s'], 0)} records/s, p50 {producer['p50_ms']} ms, "
          f"p99 {producer['p99_ms']} ms\n")
    w("\n2. End-to-end latency, open loop: SubmitReferral until the assignment is in the inbox's watch stream (ms)\n")
    w("   (acked/s: answered OK per second; refused: RESOURCE_EXHAUSTED, with the p99 time to the refusal; "
      "late: DEADLINE_EXCEEDED;\n    missing: acknowledged but not arrived)\n")
    w(f"   {'rate/s':>7} {'acked/s':>8} {'p50':>8} {'p99':>8} {'p99.9':>8} {'max':>8} {'ack p50':>8} "
      f"{'ack p99':>8} {'refused':>14} {'late':>5} {'failed':>6} {'missing':>7}\n")
    for r in RATES:
        x = e2e.get(r)
        if not x:
            w(f"   {r:>7} (missing)\n")
            continue
        m, k = x["e2e_ms"], x["ack_ms"]
        refused = f"{x.get('refused', 0)}"
        if x.get("refused"):
            refused += f" ({fmt(x['refused_ms']['p99'], 0)} ms)"
        w(f"   {r:>7} {fmt(x.get('acked_rate'), 0):>8} {fmt(m['p50'], 2):>8} {fmt(m['p99'], 2):>8} "
          f"{fmt(m['p999'], 2):>8} {fmt(m['max'], 2):>8} {fmt(k['p50'], 2):>8} {fmt(k['p99'], 2):>8} "
          f"{refused:>14} {x.get('deadline_exceeded', 0):>5} {x['failed']:>6} {x['missing']:>7}\n")
    split = [(r, e2e[r]) for r in RATES if e2e.get(r) and e2e[r].get("to_router_ms")]
    if split:
        w("   Split at the router's decision (the offer's requested_at), p50 / p99 ms: until the router decided |\n"
          "   from its decision until the partner's stream had it (its transaction, the inbox reading it, the key,\n"
          "   the inbox's store)\n")
        for r, x in split:
            t, f = x["to_router_ms"], x["from_router_ms"]
            w(f"   {r:>7} {fmt(t['p50'], 1):>8} / {fmt(t['p99'], 1):<8} | {fmt(f['p50'], 1):>8} / {fmt(f['p99'], 1)}\n")
    if kafka_e2e:
        w(f"   Kafka EndToEndLatency (one hop, {a.record_size} B, acks=all, one at a time): "
          f"p50 {kafka_e2e['p50_ms']}, p99 {kafka_e2e['p99_ms']}, p99.9 {kafka_e2e['p999_ms']} "
          f"(whole ms), avg {fmt(kafka_e2e['avg_ms'], 2)}\n")
    if txn:
        t = txn["total_ms"]
        w(f"   One Kafka transaction of one record (bench/txn_latency, {txn['count']} in a row): "
          f"p50 {fmt(t['p50'], 2)}, p99 {fmt(t['p99'], 2)} ms\n")
    if cpu_per_referral:
        names = sorted({n for per in cpu_per_referral.values() for n in per if n != "all"})
        w("   CPU ms per acknowledged referral, each process over the whole run (warm-up and drain included;\n"
          "   broker-jit: the part of the broker's the JVM's JIT compiler used, not added again in all):\n")
        w(f"   {'rate/s':>7} " + " ".join(f"{n:>11}" for n in names) + f" {'all':>7}\n")
        for r, per in cpu_per_referral.items():
            w(f"   {r:>7} " + " ".join(f"{fmt(per.get(n), 3):>11}" for n in names) + f" {fmt(per['all'], 2):>7}\n")
    if at_rest:
        per_s, req = at_rest["cpu_ms_per_second"], at_rest["broker_requests_per_second"]
        w(f"   At rest ({fmt(at_rest['seconds'], 1)} s without a referral, before the load), CPU ms per second:\n"
          "   " + ", ".join(f"{n} {fmt(v, 1)}" for n, v in sorted(per_s.items()) if n != "all")
          + f"; all {fmt(per_s['all'], 1)}\n")
        top = sorted(((v, k) for k, v in req.items() if k != "all"), reverse=True)[:6]
        w(f"   Broker requests per second at rest: {fmt(req['all'], 1)} (" +
          ", ".join(f"{k} {fmt(v, 1)}" for v, k in top) + ")\n")
    if requests_per_referral:
        w("   Broker requests per acknowledged referral (all types, then the largest):\n")
        for r, per in requests_per_referral.items():
            top = sorted(((v, k) for k, v in per.items() if k != "all"), reverse=True)[:8]
            w(f"   {r:>7} {fmt(per['all'], 1):>6}: " + ", ".join(f"{k} {fmt(v, 2)}" for v, k in top) + "\n")
    if bytes_per_referral:
        w("   Bytes written to the broker per acknowledged referral (BytesInPerSec, every topic): "
          + ", ".join(f"{r}/s {fmt(v, 0)}" for r, v in bytes_per_referral.items()) + "\n")
    if lag:
        w("   Records not yet read near the end of each run (consumer lag): ")
        parts = []
        for r in RATES:
            x = lag.get(str(r), {})
            router = x.get("router", {}).get("schakel.referrals.submitted")
            inbox_lag = x.get("inbox-zorg", {}).get("schakel.inbox.zorg")
            view = sum(x.get("intake", {}).values()) if x.get("intake") else None
            parts.append(f"{r}/s: router {router if router is not None else '-'}, inbox "
                         f"{inbox_lag if inbox_lag is not None else '-'}, intake's view "
                         f"{view if view is not None else '-'}")
        w("; ".join(parts) + "\n")
    w("\n3. Memory (MiB): resident at rest, highest sampled during the 2,000/s run, peak (VmHWM) over the run\n")
    w(f"   {'service':>12} {'at rest':>8} {'at 2000/s':>10} {'peak':>8}\n")
    for name, m in memory.items():
        w(f"   {name:>12} {fmt(m.get('rest_mib')):>8} {fmt(m.get('max_sampled_at_top_rate_mib')):>10} "
          f"{fmt(m.get('peak_mib')):>8}\n")
    if inbox:
        w(f"\n4. Inbox of {inbox['assignments']:,} assignments: ListAssignments over gRPC, one call at a time (ms)\n")
        w(f"   {'query':<38} {'rows':>5} {'p50':>7} {'p99':>7} {'max':>7}\n")
        for c in inbox["cases"]:
            w(f"   {c['name']:<38} {fmt(c['rows_per_call'], 0):>5} {fmt(c['ms']['p50'], 3):>7} "
              f"{fmt(c['ms']['p99'], 3):>7} {fmt(c['ms']['max'], 3):>7}\n")
    if route:
        w("\n5. Routing decision for a referral of 3 needs (Google Benchmark, per call)\n")
        w(f"   {'organisations':>13} {'Decide':>10} {'Explain':>10} {'Unroutable':>11} {'BuildPolicy':>12}\n")
        for n, row in sorted(route.items()):
            def cell(key):
                v = row.get(key)
                return "-" if not v else f"{v['time']:,.0f} {v['unit']}"
            w(f"   {n:>13} {cell('Decide'):>10} {cell('DecideExplain'):>10} {cell('DecideUnroutable'):>11} "
              f"{cell('BuildPolicy'):>12}\n")
    if scale:
        m = scale["e2e_ms"]
        w("\n6. Two intakes and two routers: 500 referrals/s taking turns between the intakes (ms)\n")
        w(f"   acknowledged {scale['acked']:,} ({fmt(scale.get('acked_rate'), 0)}/s), arrived {scale['arrived']:,}, "
          f"acknowledged but missing {scale['missing']}, refused {scale.get('refused', 0)}; "
          f"p50 {fmt(m['p50'], 2)}, p99 {fmt(m['p99'], 2)}\n")
        w("   submitted referrals read by each router: "
          + ", ".join(f"{k} {v:,}" for k, v in scale_routers.items()) + "\n")
    if history:
        w(f"\n7. Memory with history: {history['acked']:,} referrals acknowledged ({fmt(history.get('acked_rate'), 0)}/s), "
          f"{history['arrived']:,} arrived, {history.get('refused', 0):,} refused, "
          f"{history['missing']} acknowledged but missing\n")
        w(f"   {'service':<12} {'peak after 10,000':>18} {'peak after all':>15} {'RSS at the end':>15}  (MiB)\n")
        for name, m in sorted(history_rss.items()):
            first, last = m.get("first", {}), m.get("last", {})
            w(f"   {name:<12} {fmt(first.get('peak_mib')):>18} {fmt(last.get('peak_mib')):>15} "
              f"{fmt(last.get('rss_mib')):>15}\n")
        if len(history_restore) == 3:
            w(f"   the router restarted: {history_restore['state_records']:,} state records read back in "
              f"{history_restore['restore_ms'] / 1000:.1f} s (from its start), peak RSS "
              f"{history_restore['peak_kib'] / 1024:.1f} MiB\n")
        elif history_restore:
            w("   the router restarted: it did not report reading its state back within 10 minutes\n")
    w("\nTargets\n")
    for t in targets:
        w(f"   {verdict(t['met']):>5}  {t['target']}: {t['value']} (limit {t['limit']})\n")
    w("\n")

    # ---- the plot ----
    series = []
    for r in RATES:
        n = percentile_file(os.path.join(d, f"e2e-{r}.dat"), os.path.join(d, f"e2e-{r}-pct.dat"))
        if n:
            series.append((r, n))
    lines = [
        "set terminal pngcairo size 1100,650 font ',10'",
        f"set output '{os.path.join(d, 'latency.png')}'",
        "set title 'Schakel end to end: SubmitReferral until the assignment is in the inbox (open loop)'",
        "set logscale x", "set logscale y",
        "set xlabel 'percentile'", "set ylabel 'latency (ms)'",
        # Tic labels are formats: %% is a percent sign.
        "set xtics ('0%%' 1, '50%%' 2, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000)",
        "set grid", "set key bottom right opaque box",
    ]
    def label(r, n):
        missing = (e2e.get(r) or {}).get("missing", 0)
        return f"{r}/s ({n} referrals)" if not missing else f"{r}/s ({n} arrived, {missing} still missing)"
    plots = [f"'{os.path.join(d, f'e2e-{r}-pct.dat')}' using 1:2 with lines lw 2 title '{label(r, n)}'"
             for r, n in series]
    if kafka_e2e:
        p99 = max(kafka_e2e["p99_ms"], 0.5)
        plots.append(f"{p99} with lines dt 2 lc rgb 'gray40' title 'Kafka EndToEndLatency p99 (one hop)'")
        plots.append(f"{6 * p99} with lines dt 3 lc rgb 'red' title 'target at 500/s: 6 x Kafka p99'")
    if plots:
        lines.append("plot " + ", \\\n     ".join(plots))
    with open(os.path.join(d, "latency.gp"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

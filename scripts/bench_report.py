#!/usr/bin/python3
"""Summarizes a bench-vs-etcd.sh results folder.

Reads DIR/raw.jsonl (one JSON object per run: system, round, case and
arbiter-bench's fields, or rss_kb for the RSS samples) and writes
DIR/report.md (medians over the rounds, Arbiter/etcd ratios, where each
target stands) plus DIR/chart.dat and DIR/chart.gp (a gnuplot script that
draws DIR/chart.png).

  /usr/bin/python3 scripts/bench_report.py DIR
"""
import json
import os
import statistics
import sys

THROUGHPUT_CASES = [
    ("put-64", "put, 64 clients / 8 conns (loads the keys)"),
    ("put-1", "put, 1 client"),
    ("range-l-1", "range linearizable, 1 client"),
    ("range-l-64", "range linearizable, 64 clients"),
    ("range-s-1", "range serializable, 1 client"),
    ("range-s-64", "range serializable, 64 clients"),
    ("txn-put-64", "txn-put (CAS), 64 clients"),
    ("watch", "watch fan-out: events/s delivered, put-to-event latency"),
    ("lease-keepalive", "lease keep-alives/s on one stream"),
]
FAILOVER_CASES = [
    ("failover-default", "failover gap, heartbeat 100 ms / election 1000 ms"),
    ("failover-fast", "failover gap, heartbeat 50 ms / election 250 ms"),
]
SYSTEMS = ("etcd", "arbiter")


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=1):
    if x is None:
        return "–"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def ratio(a, e):
    if a is None or e is None or e == 0:
        return None
    return a / e


def main():
    out = sys.argv[1]
    runs = []
    with open(os.path.join(out, "raw.jsonl")) as f:
        for line in f:
            line = line.strip()
            if line:
                runs.append(json.loads(line))

    def values(system, case, key, only_ok=True):
        vals = []
        for r in runs:
            if r.get("system") != system or r.get("case") != case:
                continue
            if only_ok and "ok" in r and not r["ok"]:
                continue
            v = r.get(key)
            if v is None or (isinstance(v, (int, float)) and v < 0):
                continue
            vals.append(v)
        return vals

    def med(system, case, key):
        return median(values(system, case, key))

    rounds = max((r.get("round", 0) for r in runs), default=0)
    failed = [r for r in runs if r.get("ok") is False]
    lines = []
    lines.append("# Arbiter vs etcd: side-by-side benchmark\n")
    env = os.path.join(out, "env.txt")
    if os.path.exists(env):
        lines.append("```")
        lines.append(open(env).read().rstrip())
        lines.append("```\n")
    lines.append(
        f"Medians over {rounds} round(s), each system from fresh data dirs; ratio = Arbiter / etcd. "
        "CPU is the servers' user+system time per operation (sum over the 3 members).\n"
    )
    lines.append(
        "| workload | etcd ops/s | Arbiter ops/s | ratio | etcd p50 ms | Arbiter p50 ms | "
        "etcd p99 ms | Arbiter p99 ms | etcd CPU µs/op | Arbiter CPU µs/op | CPU ratio |"
    )
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    chart = []
    summary = {}
    for case, title in THROUGHPUT_CASES:
        row = {}
        for s in SYSTEMS:
            cpu = med(s, case, "server_cpu_ms_per_op")
            row[s] = {
                "tput": med(s, case, "ops_per_sec"),
                "p50": med(s, case, "p50_ms"),
                "p99": med(s, case, "p99_ms"),
                "cpu": cpu * 1000 if cpu is not None else None,
            }
        if all(row[s]["tput"] is None for s in SYSTEMS):
            continue
        summary[case] = row
        e, a = row["etcd"], row["arbiter"]
        tr = ratio(a["tput"], e["tput"])
        lines.append(
            f"| {case}: {title} | {fmt(e['tput'])} | {fmt(a['tput'])} | {fmt(tr, 2)} | "
            f"{fmt(e['p50'], 2)} | {fmt(a['p50'], 2)} | {fmt(e['p99'], 2)} | {fmt(a['p99'], 2)} | "
            f"{fmt(e['cpu'])} | {fmt(a['cpu'])} | {fmt(ratio(a['cpu'], e['cpu']), 2)} |"
        )
        chart.append((case, tr, ratio(a["p99"], e["p99"]), ratio(a["cpu"], e["cpu"])))
    lines.append("")

    # Thread hand-offs: each one costs both threads a context switch.
    sw_rows = []
    for case, title in THROUGHPUT_CASES:
        e = med("etcd", case, "server_switches_per_op")
        a = med("arbiter", case, "server_switches_per_op")
        if e is None and a is None:
            continue
        sw_rows.append(f"| {case} | {fmt(e, 1)} | {fmt(a, 1)} | {fmt(ratio(a, e), 2)} |")
    if sw_rows:
        lines.append(
            "Context switches of the servers' threads per operation (sum over the 3 members):\n"
        )
        lines.append("| workload | etcd | Arbiter | ratio |")
        lines.append("| --- | ---: | ---: | ---: |")
        lines.extend(sw_rows)
        lines.append("")

    # --floor: servers that answer at once bound what any server on this
    # gRPC and kernel could reach on this machine.
    floor_rows = []
    for case, title in THROUGHPUT_CASES:
        f = med("floor", case, "ops_per_sec")
        if f is None:
            continue
        e = med("etcd", case, "ops_per_sec")
        a = med("arbiter", case, "ops_per_sec")
        fc = med("floor", case, "server_cpu_ms_per_op")
        floor_rows.append(
            f"| {case} | {fmt(f)} | {fmt(fc * 1000 if fc is not None else None)} | "
            f"{fmt(ratio(f, e), 2)} | {fmt(ratio(a, f), 2)} |"
        )
    if floor_rows:
        lines.append(
            "gRPC floor: three arbiter-grpc-floor servers, which answer every call at once "
            "with a fixed response (no consensus, no storage), under the same workloads. "
            "floor / etcd is the most that a server on this gRPC library and API could reach here; "
            "Arbiter / floor is how close Arbiter gets to it.\n"
        )
        lines.append("| workload | floor ops/s | floor CPU µs/op | floor / etcd | Arbiter / floor |")
        lines.append("| --- | ---: | ---: | ---: | ---: |")
        lines.extend(floor_rows)
        lines.append("")

    lines.append("| failover | etcd gap ms | Arbiter gap ms | ratio | rounds (etcd / Arbiter) |")
    lines.append("| --- | ---: | ---: | ---: | --- |")
    for case, title in FAILOVER_CASES:
        e = med("etcd", case, "failover_gap_ms")
        a = med("arbiter", case, "failover_gap_ms")
        if e is None and a is None:
            continue
        summary[case] = {"etcd": e, "arbiter": a}
        ev = ", ".join(fmt(x, 0) for x in values("etcd", case, "failover_gap_ms"))
        av = ", ".join(fmt(x, 0) for x in values("arbiter", case, "failover_gap_ms"))
        lines.append(f"| {title} | {fmt(e, 0)} | {fmt(a, 0)} | {fmt(ratio(a, e), 2)} | {ev} / {av} |")
        chart.append((case, None, ratio(a, e), None))
    lines.append("")

    lines.append("| RSS per member (MiB) | etcd largest | Arbiter largest | ratio | etcd all | Arbiter all |")
    lines.append("| --- | ---: | ---: | ---: | --- | --- |")
    for case, title in (("rss-idle", "idle, just started"), ("rss-50k", "after loading the keys")):
        cells = {}
        for s in SYSTEMS:
            samples = values(s, case, "rss_kb", only_ok=False)
            largest = median([max(x) / 1024 for x in samples if x]) if samples else None
            per_member = [median([x[i] / 1024 for x in samples if len(x) > i]) for i in range(3)]
            cells[s] = (largest, per_member)
        if cells["etcd"][0] is None and cells["arbiter"][0] is None:
            continue
        summary[case] = {s: cells[s][0] for s in SYSTEMS}
        keys = values("arbiter", case, "keys", only_ok=False) or values("etcd", case, "keys", only_ok=False)
        label = f"{title}" + (f" ({keys[0]:,} keys)" if keys else "")
        lines.append(
            f"| {label} | {fmt(cells['etcd'][0])} | {fmt(cells['arbiter'][0])} | "
            f"{fmt(ratio(cells['arbiter'][0], cells['etcd'][0]), 2)} | "
            f"{' / '.join(fmt(x) for x in cells['etcd'][1])} | "
            f"{' / '.join(fmt(x) for x in cells['arbiter'][1])} |"
        )
        if case == "rss-50k":
            chart.append((case, None, None, ratio(cells["arbiter"][0], cells["etcd"][0])))
    lines.append("")

    # Where each target stands.
    def get(case, s, k=None):
        v = summary.get(case, {}).get(s)
        return v.get(k) if isinstance(v, dict) and k else v

    def verdict(ok):
        return "–" if ok is None else ("met" if ok else "**missed**")

    targets = []
    e, a = get("put-64", "etcd", "tput"), get("put-64", "arbiter", "tput")
    ep, ap = get("put-64", "etcd", "p99"), get("put-64", "arbiter", "p99")
    ok = None if None in (e, a, ep, ap) else (a >= 3 * e and ap <= ep)
    targets.append(("put 64 clients: >= 3x etcd's throughput, p99 <= etcd's",
                    f"{fmt(ratio(a, e), 2)}x, p99 {fmt(ap, 2)} vs {fmt(ep, 2)} ms", ok))
    e, a = get("put-1", "etcd", "p50"), get("put-1", "arbiter", "p50")
    ok = None if None in (e, a) else a <= e / 2
    targets.append(("put 1 client: p50 <= half of etcd's", f"{fmt(a, 2)} vs {fmt(e, 2)} ms", ok))
    for c in ("range-l-64", "range-s-64"):
        e, a = get(c, "etcd", "tput"), get(c, "arbiter", "tput")
        ok = None if None in (e, a) else a >= 3 * e
        targets.append((f"{c}: >= 3x etcd's throughput", f"{fmt(ratio(a, e), 2)}x", ok))
    for c in ("failover-default", "failover-fast"):
        e, a = get(c, "etcd"), get(c, "arbiter")
        ok = None if None in (e, a) else a <= e
        targets.append((f"{c}: gap <= etcd's", f"{fmt(a, 0)} vs {fmt(e, 0)} ms", ok))
    e, a = get("rss-50k", "etcd"), get("rss-50k", "arbiter")
    ok = None if None in (e, a) else a <= e / 2
    targets.append(("RSS after 50k keys: <= half of etcd's", f"{fmt(a)} vs {fmt(e)} MiB", ok))
    lines.append("| target | measured (Arbiter vs etcd) | status |")
    lines.append("| --- | --- | --- |")
    for t, m, ok in targets:
        lines.append(f"| {t} | {m} | {verdict(ok)} |")
    lines.append("")
    loads = {s: values(s, "load", "loadavg1", only_ok=False) for s in SYSTEMS}
    if any(loads.values()):
        lines.append(
            "Machine load (1-minute average) at the sessions' starts and ends: "
            + "; ".join(f"{s} {min(v):.1f} to {max(v):.1f}" for s, v in loads.items() if v)
            + f" (on {os.cpu_count()} CPUs)."
        )
        lines.append("")
    watch_runs = [r for r in runs if r.get("case") == "watch"]
    if watch_runs:
        lines.append(
            "Watch runs verified (every watcher got every acknowledged put, in order): "
            + ", ".join(f"{r['system']} r{r['round']}: {'yes' if r.get('verified') else 'no'}" for r in watch_runs)
        )
        lines.append("")
    if failed:
        lines.append("Failed runs (excluded from the medians):\n")
        for r in failed:
            lines.append(f"- {r['system']} round {r['round']} {r['case']}: errors {r.get('errors')}")
        lines.append("")
    lines.append("Raw data: raw.jsonl; member logs: logs/; chart: chart.png.")
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")

    with open(os.path.join(out, "chart.dat"), "w") as f:
        f.write("# case throughput p99_or_gap cpu_or_rss\n")
        for case, t, p, c in chart:
            f.write(f"{case} {t if t else 'NaN'} {p if p else 'NaN'} {c if c else 'NaN'}\n")
    with open(os.path.join(out, "chart.gp"), "w") as f:
        f.write(
            """set terminal png size 1200,600
set output 'chart.png'
set title 'Arbiter / etcd (medians; > 1: Arbiter higher)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y 2
set yrange [0.0625:16]
set grid ytics
set xtics rotate by -30
set key top left
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 lc rgb 'black'
set arrow from graph 0, first 3 to graph 1, first 3 nohead dt 2 lc rgb 'dark-green'
plot 'chart.dat' using 2:xtic(1) title 'throughput (higher is better)', \\
     '' using 3 title 'p99 latency / failover gap (lower is better)', \\
     '' using 4 title 'CPU per op / RSS after keys (lower is better)'
"""
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()

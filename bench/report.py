#!/usr/bin/env python3
"""Writes bench/REPORT.md and bench/scale.png from the results bench/run left in DIR.
What follows the "## Analysis" heading of the existing REPORT.md is kept.

    bench/report.py DIR
"""
import json
import os
import platform
import statistics
import subprocess
import sys

out = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
report_path = os.path.join(here, "REPORT.md")


def read(*path, default=""):
    try:
        with open(os.path.join(out, *path)) as f:
            return f.read().strip()
    except FileNotFoundError:
        return default


def results(count, name):
    """hyperfine's results of one file, by command name."""
    text = read(count, name)
    if not text:
        return {}
    return {r["command"]: r for r in json.loads(text)["results"]}


def peak(count, name):
    """(peak MiB, wall s, user s, sys s) of one /usr/bin/time run."""
    text = read(count, name)
    if not text:
        return None
    fields = text.splitlines()[-1].split()
    return int(fields[0]) / 1024, float(fields[1]), float(fields[2]), float(fields[3])


def cell(text):
    """Text for a Markdown table cell: its pipes escaped."""
    return text.replace("|", "\\|")


def fmt(r):
    times = r["times"]
    med = statistics.median(times)
    return f"{med:.3f} s", f"{min(times):.3f}–{max(times):.3f} s", f"{r['user']:.2f} + {r['system']:.2f} s", med


counts = sorted((d for d in os.listdir(out) if d.isdigit()), key=int)
lines = ["# Benchmarks", ""]
lines += [
    "Written by `bench/run` (release build, hyperfine, `/usr/bin/time -v` peak RSS) on the",
    "sandbox cluster: the canary scenario plus N injected pods from `bench/make-pods.py` (half by",
    "1-27, half by 1-28, in namespaces labelled `istio.io/rev=1-28`). Pods are read in pages of",
    "500. The floors (`bench/floor.py`) read every page of the pod list off one connection and",
    "discard it: the least any client can spend. The API server, etcd and the client share the",
    "machine's cores with other work; the load average is given beside each run, and ratios are",
    "taken within one run.",
    "",
    f"Machine: {os.cpu_count()} cores, {platform.machine()}; "
    + subprocess.run(["date", "-u", "+%Y-%m-%d %H:%M UTC"], capture_output=True, text=True).stdout.strip() + ".",
    "",
]
series = {}
for c in counts:
    suite = results(c, "suite.json")
    suite.update(results(c, "kubectl.json"))
    pods = read(c, "pods")
    lines += [f"## {int(c):,} injected pods ({pods} pods in all, {read(c, 'namespaces')} namespaces)", ""]
    lines += [f"Load average (1, 5, 15 min) before: {read(c, 'load-before')}; after: {read(c, 'load-after')}.", ""]
    lines += ["| command | wall, median | min–max | CPU user + sys (mean) | peak RSS |", "|---|---|---|---|---|"]
    peaks = {
        "revisions -o json": peak(c, "peak-revisions-json"),
        "revisions": peak(c, "peak-revisions"),
        "JSON floor": peak(c, "peak-json-floor"),
        "protobuf floor": peak(c, "peak-protobuf-floor"),
    }
    kubectl, jq = peak(c, "peak-kubectl"), peak(c, "peak-jq")
    if kubectl and jq:
        peaks["kubectl get pods -A -o json | jq"] = (max(kubectl[0], jq[0]), 0, 0, 0)
    medians = {}
    for name, r in suite.items():
        med, spread, cpu, m = fmt(r)
        medians[name] = m
        p = peaks.get(name)
        mem = f"{p[0]:.0f} MiB" if p else ""
        if name.startswith("kubectl") and kubectl and jq:
            mem = f"kubectl {kubectl[0]:.0f} MiB, jq {jq[0]:.0f} MiB"
        lines.append(f"| `{cell(name)}` | {med} | {spread} | {cpu} | {mem} |")
    series[int(c)] = medians
    rev = medians.get("revisions -o json")
    lines.append("")
    if rev:
        ratios = []
        for other in ["JSON floor", "protobuf floor", "revisions -o json (JSON lists)"]:
            if other in medians:
                ratios.append(f"{rev / medians[other]:.2f}× the {other}")
        if "kubectl get pods -A -o json | jq" in medians:
            ratios.append(f"{medians['kubectl get pods -A -o json | jq'] / rev:.1f}× faster than kubectl + jq")
        lines += [f"`revisions -o json`: {', '.join(ratios)}.", ""]
    before = dict(l.split() for l in read(c, "requests-before").splitlines() if l)
    after = dict(l.split() for l in read(c, "requests-after").splitlines() if l)
    delta = {v: int(after[v]) - int(before.get(v, 0)) for v in after if int(after[v]) != int(before.get(v, 0))}
    if delta:
        lines += ["API requests during one `revisions -A -o json` (apiserver_request_total, all clients): "
                  + ", ".join(f"{v} {n}" for v, n in sorted(delta.items())) + ".", ""]

if len(series) > 1:
    lines += ["## Scale", "", "Median wall time per 1,000 injected pods:", "",
              "| command | " + " | ".join(f"{c:,}" for c in series) + " |",
              "|---|" + "---|" * len(series)]
    for name in ["revisions -o json", "JSON floor", "protobuf floor", "kubectl get pods -A -o json | jq"]:
        row = [f"{series[c][name] / (c / 1000) * 1000:.0f} ms" if name in series[c] else "" for c in series]
        lines.append(f"| `{cell(name)}` | " + " | ".join(row) + " |")
    lines += ["", "![wall time against injected pods](scale.png)", ""]

def roll_runs(kind):
    """(wall, user, sys, peak KiB) of each round of one kind of restart in bench/roll."""
    runs, i = [], 1
    while text := read("roll", f"{kind}.{i}.time"):
        runs.append([float(x) for x in text.splitlines()[-1].split()[:4]])
        i += 1
    return runs


roll = {k: roll_runs(k) for k in ["roll", "roll-parallel", "loop", "floor"]}
if all(roll.values()):
    count = len(json.loads(read("roll", "deployments.json"))["items"]) - 1
    wall = {k: statistics.median(r[0] for r in v) for k, v in roll.items()}
    lines += [f"## `roll`, {count} Deployments", "",
              f"Each restarts all {count} Deployments of one namespace and waits for each rollout "
              f"(`bench/roll`), {len(roll['roll'])} rounds, the four in turn in each round. The rollout "
              "floor (`bench/roll-floor.py`) sends only the restart patch and watches until the rollout "
              "is done, one Deployment after another: the rollouts' own time.", "",
              "| command | wall, median | min–max | CPU user + sys (mean) | peak RSS |", "|---|---|---|---|---|"]
    names = {"roll": "kubectl mesh roll -n roll-bench",
             "roll-parallel": "kubectl mesh roll -n roll-bench --max-parallel 5",
             "loop": "for d in ...; do kubectl rollout restart $d && kubectl rollout status $d; done",
             "floor": "rollout floor (patch, watch until done)"}
    for k, v in roll.items():
        walls = [r[0] for r in v]
        user = statistics.mean(r[1] for r in v)
        sys_ = statistics.mean(r[2] for r in v)
        rss = max(r[3] for r in v) / 1024
        lines.append(f"| `{cell(names[k])}` | {wall[k]:.2f} s | {min(walls):.2f}–{max(walls):.2f} s | "
                     f"{user:.2f} + {sys_:.2f} s | {rss:.0f} MiB |")
    overhead = (wall["roll"] - wall["floor"]) / count * 1000
    lines += ["", f"`roll`: {wall['roll'] / wall['loop']:.2f}× the shell loop; "
              f"`--max-parallel 5`: {wall['roll-parallel'] / wall['loop']:.2f}×. "
              f"Beyond the rollouts' own time (the floor, {wall['floor'] / count * 1000:.0f} ms a "
              f"Deployment), `roll` spends {overhead:.0f} ms a Deployment "
              f"({wall['roll'] - wall['floor']:.2f} s in all, start-up and its reads included).", ""]

help_results = read("help.json")
if help_results:
    lines += ["## Start-up (`--help`)", "", "| binary | median | min–max | size |", "|---|---|---|---|"]
    sizes = dict(l.split() for l in read("binaries").splitlines() if l)
    for r in json.loads(help_results)["results"]:
        b = os.path.basename(r["command"].split()[0])
        med, spread, _, _ = fmt(r)
        med_ms = statistics.median(r["times"]) * 1000
        size = int(sizes.get(b, 0)) / 2**20
        lines.append(f"| `{b}` | {med_ms:.1f} ms | {spread} | {size:.1f} MiB |")
    archive = read("archive")
    if archive:
        size, path = archive.splitlines()[0].split()
        lines += ["", f"Release archive (`release/build-archive`, these binaries): "
                  f"`{os.path.basename(path)}` {int(size) / 2**20:.1f} MiB.", ""]

# Keep the analysis written by hand.
old = open(report_path).read() if os.path.exists(report_path) else ""
marker = "## Analysis"
if marker in old:
    lines += [old[old.index(marker):].rstrip(), ""]
open(report_path, "w").write("\n".join(lines).rstrip() + "\n")

if series:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=90)
    xs = sorted(series)
    for name, style in [("revisions -o json", "o-"), ("kubectl get pods -A -o json | jq", "s--"),
                        ("JSON floor", "^:"), ("protobuf floor", "v:")]:
        pts = [(x, series[x][name]) for x in xs if name in series[x]]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("injected pods")
    ax.set_ylabel("wall time, median (s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(here, "scale.png"))

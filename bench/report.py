"""The summary of the latest run: one table of headline figures and a PNG plot per benchmark.

Reads every ``bench/results/<name>.json`` there is (a benchmark that was not run is reported as
missing, not guessed), prints the table, writes it as ``bench/results/summary.md`` for the README
and draws ``bench/results/plots/<name>.png``. ``make bench`` runs it last.

    python -m bench.report
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI

import matplotlib.pyplot as plt

from bench.common import RESULTS_DIR, table

PLOTS_DIR = RESULTS_DIR / "plots"
Row = list[Any]


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms" if value >= 10 else f"{value:.2f} ms"


def _cdf(ax: Any, samples: list[float], label: str) -> None:
    ordered = sorted(samples)
    ax.step(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], where="post", label=label)


def _save(fig: Any, name: str) -> Path:
    PLOTS_DIR.mkdir(parents=True, exist_ok=True)
    path = PLOTS_DIR / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def turn_latency(d: dict[str, Any]) -> list[Row]:
    s = d["summary"]
    rows = [
        [
            "turn latency",
            "voice to voice",
            _ms(s["voice_to_voice_ms"]["p50"]),
            _ms(s["voice_to_voice_ms"]["p95"]),
        ],
        [
            "turn latency",
            "endpointing (end of utterance)",
            _ms(s["end_of_utterance_ms"]["p50"]),
            _ms(s["end_of_utterance_ms"]["p95"]),
        ],
        [
            "turn latency",
            "overhead (v2v - endpointing - injected)",
            _ms(s["overhead_ms"]["p50"]),
            _ms(s["overhead_ms"]["p95"]),
        ],
    ]
    rows += [
        ["turn latency", f"  overhead: {stage}", _ms(s[key]["p50"]), _ms(s[key]["p95"])]
        for stage, key in d.get("overhead_stages", {}).items()
        if key in s
    ]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    samples = d["samples"]
    _cdf(left, [x["voice_to_voice_ms"] for x in samples], "voice to voice")
    _cdf(left, [x["overhead_ms"] for x in samples], "overhead")
    left.set(xlabel="ms", ylabel="share of turns", title=f"Turn latency ({len(samples)} turns)")
    left.legend()
    stages = [k for k in d.get("overhead_stages", {}).values() if k in s]
    right.bar(list(d.get("overhead_stages", {})), [s[k]["p50"] for k in stages])
    right.set(ylabel="ms (median)", title="Overhead by stage")
    right.tick_params(axis="x", rotation=20)
    _save(fig, "turn_latency")
    return rows


def first_greeting(d: dict[str, Any]) -> list[Row]:
    rows, fig = [], plt.figure(figsize=(6, 4))
    ax = fig.gca()
    for way, result in d["results"].items():
        key = next(k for k in result if k.endswith("_to_heard_ms") and "token" not in k)
        rows.append(
            [
                "first greeting",
                f"{way}: {key.removesuffix('_ms').replace('_', ' ')}",
                _ms(result[key]["p50"]),
                _ms(result[key]["p95"]),
            ]
        )
        _cdf(ax, [x[key] for x in result["samples"]], way)
    for direction, result in d.get("sip", {}).items():
        if direction == "settings" or not isinstance(result, dict) or "answered_to_heard_ms" not in result:
            continue
        heard = result["answered_to_heard_ms"]
        rows.append(
            ["first greeting", f"phone {direction}: answered to heard", _ms(heard["p50"]), _ms(heard["p95"])]
        )
        _cdf(ax, [x["answered_to_heard_ms"] for x in result["samples"]], f"phone {direction}")
    ax.set(xlabel="ms", ylabel="share of calls", title="First greeting heard")
    ax.legend()
    _save(fig, "first_greeting")
    return rows


def token_endpoint(d: dict[str, Any]) -> list[Row]:
    rows, labels, rps = [], [], []
    for run in d["runs"]:
        label = f"{run['workers']} worker{'s' if run['workers'] > 1 else ''}" + (
            ", early dispatch" if run.get("early_dispatch") else ""
        )
        rows.append(
            [
                "token endpoint",
                f"{label}: {run['requests_per_second']} req/s",
                _ms(run["latency_ms"]["p50"]),
                f"p99 {_ms(run['latency_ms']['p99'])}",
            ]
        )
        labels.append(label)
        rps.append(run["requests_per_second"])
    fig = plt.figure(figsize=(7, 4))
    fig.gca().barh(labels, rps)
    fig.gca().set(xlabel="requests per second", title="POST /token with Firebase verification")
    _save(fig, "token_endpoint")
    return rows


def kb_search(d: dict[str, Any]) -> list[Row]:
    rows, fig = [], plt.figure(figsize=(7, 4))
    ax, width = fig.gca(), 0.25
    kinds = ("hnsw", "hnsw_filtered", "hybrid")
    for i, size in enumerate(d["sizes"]):
        by_ef = size["by_ef_search"][str(size["default_ef_search"])]
        for kind in kinds:
            q = by_ef[kind]
            recall = f", recall@10 {q['recall_at_10']:.3f}" if "recall_at_10" in q else ""
            rows.append(
                [
                    "kb search",
                    f"{size['chunks'] // 1000}k chunks, {kind}{recall}",
                    _ms(q["latency_ms"]["p50"]),
                    f"p99 {_ms(q['latency_ms']['p99'])}",
                ]
            )
        ax.bar(
            [j + i * width for j in range(len(kinds))],
            [by_ef[k]["latency_ms"]["p50"] for k in kinds],
            width,
            label=f"{size['chunks']:,} chunks",
        )
    ax.set_xticks([j + width / 2 for j in range(len(kinds))], list(kinds))
    ax.set(ylabel="ms (median)", title="Knowledge-base search")
    ax.legend()
    _save(fig, "kb_search")
    return rows


def kb_eval(d: dict[str, Any]) -> list[Row]:
    hybrid = d["summary"]["hybrid"]
    return [
        [
            "kb retrieval",
            f"recall@5 {hybrid['recall_at_5']:.3f}, recall@1 {hybrid['recall_at_1']:.3f}"
            f" ({d['questions']} questions), search latency",
            _ms(d["latency_ms"]["kb_search"]["p50"]),
            _ms(d["latency_ms"]["kb_search"]["p95"]),
        ]
    ]


def capacity(d: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for mode, summary in d["summary"].items():
        levels = d["levels"][mode]
        top = next((lv for lv in levels if lv["calls"] == summary["max_calls"]), None)
        jobs = top["cpu_per_call_second"].get("jobs") if top else None
        rows.append(
            [
                "capacity",
                f"{mode}: {summary['max_calls']} calls ({summary['calls_per_core']} per core);"
                f" stopped: {summary['stop_reason'] or 'not reached'}",
                f"CPU/call-s: job {jobs}, worker {summary['worker_cpu_per_call_second_at_max']}",
                "-",
            ]
        )
        calls = [lv["calls"] for lv in levels]
        left.plot(
            calls,
            [lv["overhead_ms"]["p95"] if lv["overhead_ms"] else None for lv in levels],
            "o-",
            label=mode,
        )
        # the calls' own job processes: the worker tree also counts idle processes, more in some modes
        right.plot(calls, [lv["cpu_per_call_second"].get("jobs") for lv in levels], "o-", label=mode)
    keys = (
        "cpu_per_call_jobs",
        "cpu_per_call_worker",
        "rss_per_call",
        "pss_per_call",
        "overhead_ms_p95_diff",
    )
    for other, over in d.get("ratios_voicedesk_over", {}).items():
        for ratio in over:
            cells = ", ".join(f"{k} {ratio[k]}" for k in keys if ratio.get(k) is not None)
            rows.append(["capacity", f"voicedesk / {other} at {ratio['calls']} calls: {cells}", "-", "-"])
    left.set(xlabel="simultaneous calls", ylabel="overhead p95 (ms)", title="Overhead by load")
    right.set(xlabel="simultaneous calls", ylabel="job process CPU s per call-second", title="CPU per call")
    left.legend()
    right.legend()
    _save(fig, "capacity")
    return rows


def long_call(d: dict[str, Any]) -> list[Row]:
    memory, latency = d["memory"]["job_rss_mb"], d["latency"]["voice_to_voice_ms"]
    drift = latency["first_vs_last_10pct"]
    rows = [
        [
            "long call",
            f"{d['simulated_minutes']:g} simulated min ({d['turns_answered']} turns): job RSS"
            f" {memory['first_mb']} -> {memory['last_mb']} MB,"
            f" {memory['fit_per_wall_hour']['slope']} MB/wall hour",
            "-",
            "-",
        ],
        [
            "long call",
            f"voice to voice, first vs last 10 % of turns: {drift['first']} -> {drift['last']} ms",
            _ms(latency["percentiles"]["p50"]),
            _ms(latency["percentiles"]["p95"]),
        ],
    ]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    samples = d["memory_samples"]
    left.plot([m["sim_s"] / 60 for m in samples], [m["job_rss_mb"] for m in samples])
    left.set(xlabel="simulated call minutes", ylabel="job process RSS (MB)", title="Memory over the call")
    turns = d["turns"]
    right.plot([t["sim_s"] / 60 for t in turns], [t["voice_to_voice_ms"] for t in turns], ".")
    right.set(xlabel="simulated call minutes", ylabel="voice to voice (ms)", title="Latency over the call")
    _save(fig, "long_call")
    return rows


SECTIONS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "turn_latency": turn_latency,
    "first_greeting": first_greeting,
    "token_endpoint": token_endpoint,
    "kb_search": kb_search,
    "kb_eval": kb_eval,
    "capacity": capacity,
    "long_call": long_call,
}


def main() -> None:
    rows: list[Row] = []
    dates: set[str] = set()
    for name, section in SECTIONS.items():
        data = _load(name)
        if data is None:
            rows.append([name, "not run", "-", "-"])
            continue
        env = data.get("environment", data)
        dates.add(env["date"][:10])
        rows.extend(section(data))
    text = table(["benchmark", "figure", "p50", "p95 / other"], rows, left=2)
    print(text)
    summary = RESULTS_DIR / "summary.md"
    header = "| benchmark | figure | p50 | p95 / other |\n|---|---|---|---|\n"
    lines = "".join(f"| {' | '.join(str(c) for c in row)} |\n" for row in rows)
    summary.write_text(f"Measured {', '.join(sorted(dates))}.\n\n{header}{lines}")
    print(f"wrote {summary} and {PLOTS_DIR}/*.png")


if __name__ == "__main__":
    main()

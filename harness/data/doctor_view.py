"""The `harness data check` report, printed for a person."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

MAX_LISTED = 5


def print_report(report: dict[str, Any], console: Console) -> None:
    console.print(_overview(report))
    if report["skipped"]:
        console.print(_skipped(report))
    if report["cleaning"]["examples"]:
        console.print(_clusters(report["cleaning"]))
    for key, title in (("sources", "Usable records by source"), ("qtypes", "By question type")):
        if report.get(key):
            console.print(_counts(report[key], title))
    if report.get("tokens"):
        console.print(_tokens(report["tokens"]))
    for i, example in enumerate(report["examples"]):
        console.rule(f"Example {i + 1}: {example['file']} record {example['record']} "
                     "(dim: prompt, masked; bold: trained on)", style="dim")
        console.print(_example_text(example))
    for note in report["notes"]:
        console.print(f"[yellow]note:[/] {note}")
    _verdict(report["verdict"], console)


def _overview(report: dict[str, Any]) -> Table:
    table = Table(title=f"Data check: {report['path']}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    split = report["split"]
    rows = [
        ("format", f"{report['format']} (rendered with {report['rendering']})"),
        ("files", str(report["files"])),
        ("records read", str(report["records"])),
        ("usable", str(report["usable"])),
        ("duplicates", str(report["duplicates"])),
        ("refusals filtered", str(report["refusals"])),
        ("near-duplicates", _near_dups(report["cleaning"])),
        ("contaminated", _contaminated(report["cleaning"])),
        ("defects", str(report["defects"])),
        ("split", f"{split['train']} train / {split['eval']} eval / {split['test']} test "
                  f"(seed {split['seed']}, by source document)"),
        ("fingerprint", report["fingerprint"]),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table


def _skipped(report: dict[str, Any]) -> Table:
    by_reason: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for problem in report["problems"]:
        by_reason[problem["reason"]].append(problem)
    table = Table(title="Left out, by reason", title_justify="left")
    table.add_column("reason")
    table.add_column("count", justify="right")
    table.add_column(f"first {MAX_LISTED} (all in --json)")
    for reason, count in sorted(report["skipped"].items(), key=lambda kv: -kv[1]):
        listed = by_reason[reason][:MAX_LISTED]
        where = "\n".join(_where(p) for p in listed)
        table.add_row(reason, str(count), where)
    return table


def _near_dups(cleaning: dict[str, Any]) -> str:
    if cleaning["near_dup"] == "off":
        return "not looked for (near_dup: off)"
    if not cleaning["clusters"]:
        return f"none at similarity {cleaning['near_dup']}"
    said = (f"{cleaning['clusters']} clusters at similarity {cleaning['near_dup']}, the "
            f"largest {cleaning['largest_cluster']}: ")
    if cleaning["near_duplicates_dropped"]:
        return said + f"{cleaning['near_duplicates_dropped']} left out, one kept per cluster"
    return said + (f"all kept, each cluster on one side of the split "
                   f"({cleaning['moved_split']} record(s) moved for it)")


def _contaminated(cleaning: dict[str, Any]) -> str:
    counts = cleaning["contaminated"]
    if not counts:
        return "nothing to check against (no test split, no --against)"
    done = {"drop": "left out", "warn": "kept, as on_contaminated is warn",
            "error": "training refused"}[cleaning["on_contaminated"]]
    found = sum(counts.values())
    against = ", ".join(f"{n} against {name}" for name, n in counts.items())
    return f"{against}" + (f": {done}" if found else "")


def _clusters(cleaning: dict[str, Any]) -> Table:
    table = Table(title=f"Near-duplicate clusters, first {len(cleaning['examples'])} of "
                  f"{cleaning['clusters']} (all in --json)", title_justify="left")
    table.add_column("records (the first is kept when duplicates are left out)")
    for cluster in cleaning["examples"]:
        shown = [f"{m['file']} record {m['record']}" for m in cluster[:MAX_LISTED]]
        more = f"\n... and {len(cluster) - MAX_LISTED} more" if len(cluster) > MAX_LISTED else ""
        table.add_row("\n".join(shown) + more)
    return table


def _where(problem: dict[str, Any]) -> str:
    record = "" if problem["record"] is None else f" record {problem['record']}"
    return f"{problem['file']}{record}: {problem['detail']}"


def _counts(counts: dict[str, int], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("name")
    table.add_column("records", justify="right")
    for name, count in counts.items():
        table.add_row(name, str(count))
    return table


def _tokens(stats: dict[str, Any]) -> Table:
    table = Table(title=f"Tokens per example (cutoff_len {stats['cutoff_len']})",
                  title_justify="left")
    keys = [k for k in ("count", "min", "mean", "p50", "p90", "p99", "max", "truncated",
                        "trainable_tokens") if k in stats]
    for key in keys:
        table.add_column(key, justify="right")
    table.add_row(*(str(stats[k]) for k in keys))
    return table


def _example_text(example: dict[str, Any]) -> Text:
    text = Text()
    for seg in example["segments"]:
        text.append(seg["text"], style="bold" if seg["trained"] else "dim")
    return text


def _verdict(verdict: dict[str, Any], console: Console) -> None:
    if verdict["usable"]:
        console.print("[green]Usable for training.[/]")
    else:
        console.print(f"[red]Not usable:[/] {'; '.join(verdict['reasons'])}")

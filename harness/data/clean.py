"""Records a fine-tune should not train or be judged on, found before it starts:
near-duplicates (left out, or kept together on one side of the split) and training records
that share a run of words with an evaluation set (the study's own test split, and any
benchmark the user names)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from harness.config import DataConfig
from harness.data.contamination import NgramIndex, contaminated
from harness.data.neardup import Clusters, drop_near_duplicates, find_clusters
from harness.data.records import Problem, Record, Split, split_records
from harness.errors import DataError


@dataclass
class Cleaning:
    """What the near-duplicate and contamination checks found, for reports and lineage."""

    near_dup: float | str = "off"
    """The similarity threshold the clusters were found at (`off`: not looked for)."""
    clusters: list[list[Record]] = field(default_factory=list)
    """Groups of near-duplicates of two or more. With dedupe, each is a kept record first and
    those left out as its near-duplicates; without, each is kept whole on one side of the
    split."""
    dropped: int = 0
    """Records left out as near-duplicates."""
    moved: int = 0
    """Records on another side of the split than their source document alone would put them,
    because a near-duplicate elsewhere drew their group along."""
    contaminated: dict[str, int] = field(default_factory=dict)
    """Training records sharing a run of words with each evaluation set, by its name."""
    action: str = "drop"
    """What was done with contaminated training records: drop, warn or error."""
    flagged: list[Problem] = field(default_factory=list)
    """Each contaminated training record with the run of words it shares, dropped or not."""

    def report(self, examples: int = 5) -> dict[str, object]:
        """The counts, the first clusters by file and record, and every contaminated record."""
        largest = sorted(self.clusters, key=len, reverse=True)
        shown = [[{"file": r.path, "record": r.index} for r in c] for c in largest]
        return {**self.summary(), "examples": shown[:examples],
                "contaminated_records": [p.as_dict() for p in self.flagged]}

    def line(self) -> str:
        """In words, for the sweep's pre-flight and the report: '' when nothing was found."""
        said = []
        if self.dropped:
            said.append(f"{self.dropped} near-duplicate(s) left out ({len(self.clusters)} "
                        f"clusters at similarity {self.near_dup})")
        elif self.clusters:
            said.append(f"{sum(map(len, self.clusters))} near-duplicates in "
                        f"{len(self.clusters)} clusters kept together, {self.moved} record(s) "
                        "moved split for it")
        if self.flagged:
            done = {"drop": "left out", "warn": "kept (warn)", "error": "refused"}[self.action]
            against = ", ".join(f"{n} overlapping {name}" for name, n in
                                self.contaminated.items() if n)
            said.append(f"{len(self.flagged)} contaminated training record(s) {done} "
                        f"({against})")
        return "; ".join(said)

    def summary(self) -> dict[str, object]:
        """The counts, JSON-ready: the data profile, the report and the sweep's summary."""
        return {"near_dup": self.near_dup, "clusters": len(self.clusters),
                "largest_cluster": max((len(c) for c in self.clusters), default=0),
                "near_duplicates_dropped": self.dropped, "moved_split": self.moved,
                "contaminated": dict(self.contaminated), "on_contaminated": self.action}


def settings_of(config: DataConfig) -> dict[str, object]:
    """The settings that decide which records the checks leave out (the evaluation sets apart,
    which the caller names by path or by content)."""
    d = config.decontaminate
    return {"near_dup": config.near_dup, "dedupe": config.dedupe, "ngram": d.ngram,
            "overlap": d.overlap, "common": d.common, "action": d.action}


@dataclass
class Cleaned:
    """Records after the near-duplicate and contamination checks, split, with what was left out
    and why."""

    records: list[Record]
    problems: list[Problem]
    split: Split
    notes: list[str]
    cleaning: Cleaning


def clean(records: list[Record], config: DataConfig,
          evaluation_sets: Sequence[tuple[str, list[Record]]]) -> Cleaned:
    """Near-duplicates left out (or joined for the split), the split made, and its training
    side checked against the test split and ``evaluation_sets``."""
    kept, problems, cleaning, joined = near_duplicates(records, config)
    split, cleaning.moved = leak_free_split(kept, config, joined)
    notes = [split.note] if split.note else []
    split, dropped, warned = decontaminate(split, config, cleaning, evaluation_sets)
    if dropped:
        left_out = {(p.path, p.record) for p in dropped}
        kept = [r for r in kept if (r.path, r.index) not in left_out]
    return Cleaned(kept, problems + dropped, split, notes + warned, cleaning)


def near_duplicates(records: list[Record], config: DataConfig) -> tuple[
        list[Record], list[Problem], Cleaning, dict[str, str]]:
    """Near-duplicate clusters among ``records``: with dedupe, their extra members left out;
    without, their groups joined for the split (the returned mapping)."""
    if config.near_dup == "off":
        return records, [], Cleaning(), {}
    threshold = float(config.near_dup)
    clusters = find_clusters([r.plain_text for r in records], threshold=threshold)
    if config.dedupe:
        kept, dropped, stars = drop_near_duplicates(records, clusters, seed=config.seed)
        found = [[records[i] for i in star] for star in stars]
        return kept, dropped, Cleaning(threshold, found, dropped=len(dropped)), {}
    found = [[records[i] for i in members] for members in clusters.members]
    return records, [], Cleaning(threshold, found), _joined(records, clusters)


def _joined(records: Sequence[Record], clusters: Clusters) -> dict[str, str]:
    """Each group that shares a cluster with another, mapped to the least-named group of all
    groups so linked: splitting by that name keeps every cluster on one side."""
    parent: dict[str, str] = {}

    def root(g: str) -> str:
        while parent.get(g, g) != g:
            g = parent[g]
        return g

    for members in clusters.members:
        roots = sorted({root(records[i].group) for i in members})
        for g in roots[1:]:
            parent[g] = roots[0]
    return {g: root(g) for g in parent}


def leak_free_split(records: Sequence[Record], config: DataConfig,
                    joined: dict[str, str]) -> tuple[Split, int]:
    """The split with joined groups on one side each, and how many records it moved."""
    def split(joined: dict[str, str]) -> Split:
        return split_records(records, eval_fraction=config.eval_fraction,
                             test_fraction=config.test_fraction, seed=config.seed,
                             joined=joined)

    together = split(joined)
    if not joined:
        return together, 0
    alone = split({})
    before, after = _sides(alone), _sides(together)
    return together, sum(before[id(r)] != after[id(r)] for r in records)


def _sides(split: Split) -> dict[int, str]:
    return {id(r): side for side, recs in (("train", split.train), ("eval", split.eval),
                                           ("test", split.test)) for r in recs}


def decontaminate(split: Split, config: DataConfig, cleaning: Cleaning,
                  evaluation_sets: Sequence[tuple[str, list[Record]]]) -> tuple[
                      Split, list[Problem], list[str]]:
    """The split's training records checked against its own test split and each named
    evaluation set; dropped, warned about (notes) or refused, as data.decontaminate says."""
    settings = config.decontaminate
    cleaning.action = settings.action
    sets = [("the test split", split.test), *evaluation_sets]
    found: dict[int, Problem] = {}
    for name, records in sets:
        if not records:
            continue
        index = NgramIndex(settings.ngram, records, common=settings.common,
                           overlap=settings.overlap)
        hits = contaminated(split.train, index, against=name)
        cleaning.contaminated[name] = len(hits)
        for i, problem in hits:
            found.setdefault(i, problem)
    cleaning.flagged = [found[i] for i in sorted(found)]
    if not found:
        return split, [], []
    if settings.action == "warn":
        return split, [], [f"{len(found)} training record(s) share a run of words with an "
                           "evaluation set and are kept (data.decontaminate.action: warn); "
                           f"the first: {cleaning.flagged[0].describe()}"]
    if settings.action == "error":
        shown = "\n    ".join(p.describe() for p in cleaning.flagged[:5])
        raise DataError(config.path, f"{len(found)} training record(s) share a run of "
                        f"{settings.ngram} or more words with an evaluation set:\n    {shown}",
                        hint="remove them, or set data.decontaminate.action: drop")
    train = [r for i, r in enumerate(split.train) if i not in found]
    return replace(split, train=train), cleaning.flagged, []

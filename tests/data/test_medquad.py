from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from harness.config import DataConfig
from harness.data.formatfile import load_format_file
from harness.data.load import Dataset, load_dataset
from harness.data.medquad import MedquadOptions, clean_text, load_medquad


@pytest.fixture(scope="module")
def corpus(medquad_dir: Path) -> Dataset:
    return load_dataset(DataConfig(path=str(medquad_dir)))


def test_every_file_is_read_or_reported(corpus: Dataset, medquad_dir: Path) -> None:
    all_files = {str(p) for p in medquad_dir.rglob("*") if p.is_file()}
    read = set(corpus.files)
    reported = {p.path for p in corpus.problems if p.record is None}
    assert read | reported == all_files
    assert {Path(p).name for p in all_files - read} == {"readme.txt", "LICENSE.txt"}
    assert corpus.format == "medquad"


def test_the_real_corpus_counts(corpus: Dataset) -> None:
    skipped = corpus.skipped()
    # 14,576 QA pairs in these seven collections, 797 of them with answers removed.
    assert corpus.read == 14576
    assert skipped["empty_answer"] == 797
    assert len(corpus.records) + skipped["empty_answer"] + skipped["duplicate"] == 14576
    assert skipped["empty_document"] == 6
    assert corpus.defects == []
    assert set(Counter(r.meta["source"] for r in corpus.records)) == {
        "CancerGov", "GARD", "GHR", "NIDDK", "NIHSeniorHealth", "CDC"}


def test_split_never_straddles_a_document(corpus: Dataset) -> None:
    train_docs = {r.group for r in corpus.split.train}
    eval_docs = {r.group for r in corpus.split.eval}
    assert train_docs and eval_docs and not train_docs & eval_docs
    assert abs(len(corpus.split.eval) / len(corpus.records) - 0.1) < 0.01


def test_records_carry_question_answer_and_lineage(corpus: Dataset) -> None:
    rec = corpus.records[0]
    assert [m.role for m in rec.messages] == ["user", "assistant"]
    assert rec.messages[0].content.startswith("What is (are)")
    assert rec.messages[1].content.startswith("Key Points")
    for key in ("focus", "qtype", "source", "document_id", "url", "qid"):
        assert rec.meta[key], key
    assert rec.meta["url"].startswith("http")


def test_the_disease_file_variant_is_recognised(medquad_dir: Path) -> None:
    path = medquad_dir / "9_CDC_QA" / "0000397.xml"
    records, problems = load_medquad(path, MedquadOptions())
    assert records and not [p for p in problems if p.is_defect]
    assert {r.meta["document_id"] for r in records} == {"0000397"}
    assert records[0].meta["source"] == "CDC"


def test_source_and_qtype_filters(medquad_dir: Path) -> None:
    data = load_dataset(DataConfig(path=str(medquad_dir), sources=["cdc", "NIDDK"],
                                   qtypes=["Treatment"]))
    assert {r.meta["source"] for r in data.records} == {"CDC", "NIDDK"}
    assert {r.meta["qtype"] for r in data.records} == {"treatment"}
    skipped = data.skipped()
    assert skipped["filtered_source"] > 10000 and skipped["filtered_qtype"] > 100


def test_format_file_rendering_uses_document_fields(medquad_dir: Path, tmp_path: Path) -> None:
    fmt = tmp_path / "qa.json"
    fmt.write_text(json.dumps({"question,answer": "[%focus% | %qtype%] %question%\n%answer%"}))
    records, _ = load_medquad(medquad_dir / "1_CancerGov_QA" / "0000001_1.xml",
                              MedquadOptions(formats=load_format_file(fmt)))
    prompt, answer = records[0].segments
    assert prompt.text.startswith("[Adult Acute Lymphoblastic Leukemia | information]")
    assert not prompt.trainable and answer.trainable and answer.text.startswith("Key Points")


def test_clean_text_restores_flattened_bullets() -> None:
    raw = "Key Points\n                    - One.    - Two.\n\n\n\n  Tail  text "
    assert clean_text(raw) == "Key Points\n- One.\n- Two.\n\nTail text"


def test_groups_are_per_collection_because_ids_restart(corpus: Dataset) -> None:
    # Document 0000001 exists in several collections; they are different documents.
    groups = {r.group for r in corpus.records if r.meta["document_id"] == "0000001"}
    assert len(groups) > 1 and all("/" in g for g in groups)


def test_filtered_pairs_are_counted_as_filtered_first(medquad_dir: Path) -> None:
    data = load_dataset(DataConfig(path=str(medquad_dir / "12_MPlusHerbsSupplements_QA"),
                                   qtypes=["information"]))
    skipped = data.skipped()
    assert skipped["empty_answer"] == 99  # one information pair per document, all empty
    assert "filtered_qtype" in skipped

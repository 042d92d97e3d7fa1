from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from harness.config import DataConfig
from harness.data.formatfile import load_format_file
from harness.data.load import Dataset, load_dataset
from harness.data.medquad import DOCUMENT_FIELDS, MedquadOptions, clean_text, load_medquad


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
    left_out = sum(skipped[r] for r in ("empty_answer", "duplicate", "near_duplicate",
                                        "contaminated"))
    assert len(corpus.records) + left_out == 14576
    assert skipped["duplicate"] == 48
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
                              MedquadOptions(formats=load_format_file(
                                  fmt, extra_fields=DOCUMENT_FIELDS)))
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


# Hand-written variants: other element names, other case, no wrappers.

VARIANT = """<?xml version="1.0" encoding="UTF-8"?>
<doc docid="V-17" source="OtherSource" url="http://example.org/v17">
  <doctitle-focus>Glaucoma</doctitle-focus>
  <qaPairs>
    <pair><question qid="V-17-1" qtype="symptoms">What are the symptoms of glaucoma?</question>
      <answer>Often none at first; later, loss of side vision.</answer></pair>
    <pair><question qid="V-17-2" qtype="treatment">How is glaucoma treated?</question>
      <answer>Eye drops, laser treatment or surgery.</answer></pair>
  </qaPairs>
</doc>
"""


def write_xml(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_document_in_another_schema_gives_its_pairs(tmp_path: Path) -> None:
    records, problems = load_medquad(write_xml(tmp_path, "v.xml", VARIANT), MedquadOptions())
    assert problems == []
    assert [r.messages[0].content for r in records] == [
        "What are the symptoms of glaucoma?", "How is glaucoma treated?"]
    meta = records[1].meta
    assert (meta["document_id"], meta["source"], meta["focus"], meta["qtype"], meta["qid"]) == (
        "V-17", "OtherSource", "Glaucoma", "treatment", "V-17-2")


def test_pairs_without_a_pair_element_are_found_by_what_they_hold(tmp_path: Path) -> None:
    text = ('<Collection><Entry id="e1"><Q>What is a cataract?</Q><A>A clouding of the lens.</A>'
            '</Entry><Entry id="e2"><Q_A_Focus>x</Q_A_Focus><QUESTION>Why?</QUESTION>'
            '<ANSWER>Age.</ANSWER></Entry></Collection>')
    records, problems = load_medquad(write_xml(tmp_path, "c.xml", text), MedquadOptions())
    assert problems == [] and len(records) == 2
    assert records[1].messages[1].content == "Age."


def test_questions_without_recognisable_pairs_are_an_unrecognised_structure(
        tmp_path: Path) -> None:
    text = ('<doc id="9"><Focus>F</Focus><qaPairs><item><question>What is F?</question>'
            '<reply>F is a thing.</reply></item></qaPairs></doc>')
    path = write_xml(tmp_path, "odd.xml", text)
    records, problems = load_medquad(path, MedquadOptions())
    assert records == []
    assert [(p.reason, p.path, p.record) for p in problems] == [
        ("unrecognised_structure", str(path), None)]
    assert problems[0].is_defect and "question" in problems[0].detail


def test_an_empty_pair_list_in_another_schema_is_an_empty_document(tmp_path: Path) -> None:
    path = write_xml(tmp_path, "e.xml", '<doc id="3"><doctitle-focus>F</doctitle-focus>'
                     "<qaPairs/></doc>")
    _, problems = load_medquad(path, MedquadOptions())
    assert [p.reason for p in problems] == ["empty_document"]

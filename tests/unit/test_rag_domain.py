"""rag-service domain: formats and validation, chunking, incremental plans, retrieval metrics."""

import json
import re

import pytest

from lorag_rag.domain.chunking import chunk_documents, windows
from lorag_rag.domain.documents import BadFile, DatasetError, Document
from lorag_rag.domain.formats import ReadOptions, parse_file
from lorag_rag.domain.locations import LocalLocation, S3Location, locate
from lorag_rag.domain.metrics import QaPair, retrieval_quality
from lorag_rag.domain.plan import StoredChunk, plan_ingest


class WordTokenizer:
    """One token per word: enough to test windows without a model."""

    def offsets(self, texts):
        return [[m.span() for m in re.finditer(r"\S+", t)] for t in texts]


def code_of(source, data, **opts):
    with pytest.raises(BadFile) as caught:
        parse_file(source, data, ReadOptions(**opts))
    return caught.value.code


def test_windows_overlap_and_cover_the_text():
    spans = [(i * 2, i * 2 + 1) for i in range(10)]
    assert windows(spans, 4, 1) == [(0, 7), (6, 13), (12, 19)]
    assert windows([], 4, 1) == []


def test_chunks_have_content_ids_positions_and_titles():
    docs = [Document("a.md", "one two three four five", title="Intro", part="0")]
    chunks = chunk_documents(docs, WordTokenizer(), 2, 0)
    assert [c.text for c in chunks] == ["one two", "three four", "five"]
    assert [c.position for c in chunks] == [0, 1, 2] and chunks[0].title == "Intro"
    again = chunk_documents(docs, WordTokenizer(), 2, 0)
    assert [c.id for c in chunks] == [c.id for c in again]
    dup = chunk_documents([Document("a.txt", "x y x y")], WordTokenizer(), 2, 0)
    assert len({c.id for c in dup}) == 2  # the same text twice in a source keeps two ids


def test_plan_counts_added_updated_deleted_unchanged_and_resumes():
    docs = [Document("f.jsonl", f"record {i}", part=str(i)) for i in range(10)]
    first = chunk_documents(docs, WordTokenizer(), 8, 0)
    stored = [StoredChunk(c.id, c.source, c.slot, 1) for c in first]
    docs[3] = Document("f.jsonl", "record changed", part="3")
    docs = [*docs[:9], Document("f.jsonl", "brand new", part="10")]
    second = chunk_documents(docs, WordTokenizer(), 8, 0)
    plan = plan_ingest(second, stored, live_version=1)
    assert (plan.added, plan.updated, plan.deleted, plan.unchanged) == (1, 1, 1, 8)
    assert len(plan.to_embed) == 2 and len(plan.to_delete) == 2
    # an interrupted attempt already stored one of the new chunks as version 2
    partial = [*stored, StoredChunk(plan.to_embed[0].id, "f.jsonl", "x", 2)]
    resumed = plan_ingest(second, partial, live_version=1)
    assert resumed.resumed == 1 and len(resumed.to_embed) == 1
    assert (resumed.added, resumed.updated, resumed.deleted) == (1, 1, 1)


def test_hit_rate_and_mrr():
    pairs = [QaPair("q1", "Paris"), QaPair("q2", "blue"), QaPair("q3", "nowhere")]
    found = [["capital is PARIS", "x"], ["x", "the sky is Blue"], ["a", "b"]]
    quality = retrieval_quality(pairs, found, k=2)
    assert quality.hit_rate == pytest.approx(2 / 3)
    assert quality.mrr == pytest.approx((1 + 0.5) / 3)


def test_formats_read_text_records_sections_and_pairs():
    jsonl = "\n".join(json.dumps(r) for r in [{"question": "Q?", "answer": "A."}, {"text": "t"}])
    parsed = parse_file("d.jsonl", jsonl.encode(), ReadOptions())
    assert [d.text for d in parsed.documents] == ["Q?\nA.", "t"] and len(parsed.pairs) == 1
    csv = parse_file("d.csv", b"body,x\nhello,1\n", ReadOptions(text_field="body"))
    assert csv.documents[0].text == "hello"
    md = parse_file("d.md", b"# One\nalpha\n## Two\nbeta\n", ReadOptions())
    assert [d.title for d in md.documents] == ["One", "Two"]
    html = parse_file("d.html", b"<title>T</title><script>x()</script><p>para</p>", ReadOptions())
    assert html.documents[0].title == "T" and "x()" not in html.documents[0].text
    nfc = parse_file("d.txt", "cafe\u0301".encode(), ReadOptions())
    assert nfc.documents[0].text == "caf\u00e9"


def test_bad_files_get_specific_codes():
    assert code_of("a.txt", "café".encode("latin-1")) == "FILE_ENCODING_INVALID"
    assert code_of("a.txt", b"text\x00\x01\x02binary") == "FILE_BINARY"
    assert code_of("a.txt", b"x" * 2000, max_line_bytes=1000) == "FILE_LINE_TOO_LONG"
    assert code_of("a.txt", b"   \n") == "FILE_EMPTY"
    assert code_of("a.jsonl", b'{"body": "x"}\n') == "JSONL_FIELD_MISSING"
    assert code_of("a.jsonl", b"{not json\n") == "JSONL_INVALID"
    assert code_of("a.csv", b"a,b\n1,2\n", text_field="body") == "CSV_COLUMN_MISSING"
    assert code_of("a.pdf", b"%PDF-1.4 this is not a pdf") == "PDF_INVALID"
    assert code_of("a.exe", b"MZ") == "FORMAT_UNSUPPORTED"
    assert code_of("a.txt", b"x" * 20, max_file_bytes=10) == "FILE_TOO_LARGE"


def test_locations_refuse_other_schemes_and_paths_outside_roots(tmp_path):
    assert locate("s3://b/k/", ()) == S3Location("b", "k/")
    (tmp_path / "data").mkdir()
    assert locate(str(tmp_path / "data"), (tmp_path,)) == LocalLocation(tmp_path / "data")
    for uri, roots, code in [
        ("http://example.com/x", (), "DATASET_SCHEME_NOT_ALLOWED"),
        ("file:///etc/passwd", (tmp_path,), "DATASET_SCHEME_NOT_ALLOWED"),
        ("/etc/passwd", (), "DATASET_PATH_NOT_ALLOWED"),
        (str(tmp_path / ".." / "escape"), (tmp_path,), "DATASET_PATH_NOT_ALLOWED"),
    ]:
        with pytest.raises(DatasetError) as caught:
            locate(uri, roots)
        assert caught.value.code == code


def test_extractive_sentences_leave_out_questions_and_fragments_and_rank_by_score():
    import numpy as np

    from lorag_rag.domain import extractive

    found = extractive.sentences(
        ["What is staging called?\nharbor-seventeen", "# Notes\nStaging is harbor-seventeen. Ok."]
    )
    assert [(s.text, s.passage) for s in found] == [
        ("harbor-seventeen", 1), ("Staging is harbor-seventeen.", 2),
    ]  # fmt: skip
    vectors = np.array([[0.6, 0.8], [1.0, 0.0]], dtype=np.float32)
    ranked = extractive.rank("What is staging called?", np.array([1.0, 0.0]), found, vectors)
    assert ranked[0].sentence.text == "Staging is harbor-seventeen."  # cosine 1, and "staging"
    assert extractive.answer_text(ranked[:1]) == "Staging is harbor-seventeen. [2]"

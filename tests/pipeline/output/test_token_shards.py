"""Tokenization in Beam: every cleaned document becomes one row of its hashed shard, exact, BOS first,
in files whose names and contents depend only on the documents."""

from __future__ import annotations

import hashlib
import os
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sentencepiece as spm

from llamapipe.pipeline.output.token_shards import chars_per_token, estimate_tokens
from llamapipe.tokenizer.format.shards import COLUMNS, footer, shard_of
from tests.pipeline.token_shards import read_rows, shard_paths, tokenize
from tests.text_samples import HARD_TEXTS, SPACE_MARK_TEXTS, train_test_tokenizer, varied_texts


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return train_test_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="module")
def documents():
    texts = varied_texts(seed=5, count=120) + HARD_TEXTS + SPACE_MARK_TEXTS
    docs = [{"id": f"c4/doc-{i:04d}", "text": text} for i, text in enumerate(texts)]
    random.Random(0).shuffle(docs)
    return docs


@pytest.fixture(scope="module")
def three_shards(tmp_path_factory, tokenizer, documents):
    shards_dir = str(tmp_path_factory.mktemp("out") / "shards")

    def one_record_per_shard(records):
        assert sorted(os.path.basename(r["path"]) for r in records) == [
            f"c4-0000{i}-of-00003.parquet" for i in range(3)]
        assert sum(r["documents"] for r in records) == len(documents)

    tokenize(documents, "c4", shards_dir, tokenizer, num_shards=3, row_group_documents=16,
             check=one_record_per_shard)
    return shards_dir


def test_every_document_is_one_row_of_its_hashed_shard_and_decodes_exactly(three_shards, tokenizer,
                                                                           documents):
    sp = spm.SentencePieceProcessor(model_file=tokenizer["path"])
    paths = shard_paths(three_shards, "c4")
    assert [os.path.basename(p) for p in paths] == [f"c4-0000{i}-of-00003.parquet" for i in range(3)]
    assert sorted(os.listdir(os.path.join(three_shards, "c4"))) == [os.path.basename(p) for p in paths]
    texts = {doc["id"]: doc["text"] for doc in documents}
    seen = []
    for index, path in enumerate(paths):
        rows = pq.read_table(path).to_pylist()
        ids = [row["doc_id"] for row in rows]
        assert ids == sorted(ids) and rows, path
        for row in rows:
            assert shard_of(row["doc_id"], 3) == index
            assert row["source"] == "c4"
            assert row["tokens"][0] == sp.bos_id() and sp.eos_id() not in row["tokens"]
            assert row["num_tokens"] == len(row["tokens"])
            assert sp.decode(row["tokens"]) == texts[row["doc_id"]]
        seen += ids
    assert sorted(seen) == sorted(texts)


def test_shards_are_self_describing_parquet(three_shards, tokenizer):
    escaped = 0
    for index, path in enumerate(shard_paths(three_shards, "c4")):
        parquet = pq.ParquetFile(path)
        assert tuple(parquet.schema_arrow.names) == COLUMNS
        assert parquet.schema_arrow.field("tokens").type == pa.list_(pa.uint16())
        assert parquet.metadata.row_group(0).column(2).compression == "ZSTD"
        assert parquet.num_row_groups > 1
        assert all(parquet.metadata.row_group(g).num_rows <= 16 for g in range(parquet.num_row_groups))
        meta = footer(path)
        assert meta["source"] == "c4" and meta["schema_version"] == "1"
        assert meta["tokenizer_sha256"] == tokenizer["sha256"]
        assert (meta["vocab_size"], meta["shard_index"], meta["num_shards"]) == (
            str(tokenizer["vocab_size"]), str(index), "3")
        escaped += int(meta["escaped_u2581_documents"])
    assert escaped == len(SPACE_MARK_TEXTS)


def test_shard_files_do_not_depend_on_input_order_or_bundles(tmp_path, three_shards, tokenizer, documents):
    reordered = list(reversed(documents))
    tokenize(reordered, "c4", str(tmp_path / "shards"), tokenizer, num_shards=3, row_group_documents=16)

    def digest(path):
        return hashlib.sha256(open(path, "rb").read()).hexdigest()

    first = [digest(p) for p in shard_paths(three_shards, "c4")]
    assert [digest(p) for p in shard_paths(str(tmp_path / "shards"), "c4")] == first


def test_eos_when_configured_and_uint32_ids_for_a_vocabulary_beyond_uint16(tmp_path, tokenizer, documents):
    sp = spm.SentencePieceProcessor(model_file=tokenizer["path"])
    tokenize(documents[:20], "github", str(tmp_path), tokenizer, add_eos=True, vocab_size=70000)
    (path,) = shard_paths(str(tmp_path), "github")
    assert pq.read_schema(path).field("tokens").type == pa.list_(pa.uint32())
    texts = {doc["id"]: doc["text"] for doc in documents}
    for row in read_rows([path]):
        assert row["tokens"][0] == sp.bos_id() and row["tokens"][-1] == sp.eos_id()
        assert sp.decode(row["tokens"]) == texts[row["doc_id"]]
    assert footer(path)["add_eos"] == "true"


def test_every_shard_index_gets_a_file_even_without_documents(tmp_path, tokenizer, documents):
    tokenize(documents[:2], "books", str(tmp_path), tokenizer, num_shards=6)
    paths = shard_paths(str(tmp_path), "books")
    assert len(paths) == 6 and sorted(os.listdir(tmp_path / "books")) == [os.path.basename(p) for p in paths]
    assert sorted(row["doc_id"] for row in read_rows(paths)) == sorted(d["id"] for d in documents[:2])
    empty = [p for p in paths if pq.ParquetFile(p).metadata.num_rows == 0]
    assert len(empty) >= 4 and all(tuple(pq.read_schema(p).names) == COLUMNS for p in empty)


def test_token_estimate_for_choosing_the_shard_count_is_close(tokenizer, documents):
    sp = spm.SentencePieceProcessor(model_file=tokenizer["path"])
    texts = [d["text"] for d in documents]
    chars = sum(map(len, texts))
    actual = sum(map(len, sp.encode(texts)))
    ratio = chars_per_token(tokenizer["path"], {"c4": texts[: len(texts) // 3]})["c4"]  # a probe of a third
    assert 0.8 * actual < estimate_tokens(chars, ratio) < 1.25 * actual

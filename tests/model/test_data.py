from __future__ import annotations

import io
import itertools
import json
from collections import Counter

import numpy as np
import pytest
import torch

from llamapipe.model.data import MixtureLoader, is_held_out, source_shares
from llamapipe.tokenizer.format.manifest import validate_manifest


def numbered_docs(start: int, n_docs: int, doc_len: int) -> list[list[int]]:
    """Documents of distinct token ids (BOS, then `doc_len - 1` fresh ids), so every token says where it
    came from."""
    docs, next_id = [], start
    for _ in range(n_docs):
        docs.append([1] + list(range(next_id, next_id + doc_len - 1)))
        next_id += doc_len - 1
    return docs


def windows(batch) -> np.ndarray:
    """The full `seq_len + 1` windows of a batch, rebuilt from x and y."""
    return torch.cat([batch.x, batch.y[:, -1:]], dim=1).numpy()


def take(loader, n):
    return list(itertools.islice(iter(loader), n))


def test_windows_are_the_concatenated_documents_cut_in_order(shards_factory):
    docs = numbered_docs(start=10, n_docs=5, doc_len=9)  # 45 tokens, one row group
    manifest = shards_factory({"c4": [docs]}, row_group_size=100)
    batches = take(MixtureLoader(manifest, seq_len=7, batch_size=3), 4)
    for batch in batches:
        assert batch.x.shape == batch.y.shape == (3, 7) and batch.x.dtype == torch.int64
        assert torch.equal(batch.x[:, 1:], batch.y[:, :-1])  # y is x shifted by one
        assert batch.sources == ("c4",) * 3
    stream = np.concatenate([windows(b).ravel() for b in batches])  # 96 tokens: two passes and a bit
    one_pass = np.concatenate(docs)
    assert np.array_equal(stream, np.concatenate([one_pass, one_pass, one_pass])[: len(stream)])


def test_sources_are_sampled_by_share_and_empty_sources_are_skipped(shards_factory):
    manifest = shards_factory(
        {"commoncrawl": [numbered_docs(10, 40, 50)], "github": [numbered_docs(5000, 40, 50)], "arxiv": []},
        shares={"commoncrawl": 0.6, "github": 0.2, "arxiv": 0.2},
    )
    shares = source_shares(json.loads(manifest.read_text()))
    assert shares == pytest.approx({"commoncrawl": 0.75, "github": 0.25})
    rows = Counter()
    for batch in take(MixtureLoader(manifest, seq_len=15, batch_size=16, seed=3), 150):
        rows.update(batch.sources)
        for name, window in zip(batch.sources, windows(batch), strict=True):
            content = window[window != 1]  # every token must come from the source the row claims
            assert ((content < 5000) if name == "commoncrawl" else (content >= 5000)).all()
    assert set(rows) == {"commoncrawl", "github"}
    assert rows["commoncrawl"] / sum(rows.values()) == pytest.approx(0.75, abs=0.03)


def test_same_seed_same_batches_other_seed_other_batches(shards_factory):
    manifest = shards_factory({"a": [numbered_docs(10, 20, 30)], "b": [numbered_docs(3000, 20, 30)]})
    first = take(MixtureLoader(manifest, seq_len=8, batch_size=4, seed=1), 5)
    again = take(MixtureLoader(manifest, seq_len=8, batch_size=4, seed=1), 5)
    other = take(MixtureLoader(manifest, seq_len=8, batch_size=4, seed=2), 5)
    assert all(torch.equal(a.x, b.x) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a.x, b.x) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize(
    "layout, world_size",
    [
        ("shards", 2),  # 4 shards over 2 ranks: whole shards
        ("shards", 4),
        ("row_groups", 4),  # 2 shards of 3 row groups over 4 ranks: row groups
        ("documents", 3),  # 1 shard of 1 row group over 3 ranks: every third document
    ],
)
def test_ranks_read_disjoint_parts_that_cover_everything(shards_factory, layout, world_size):
    all_docs = numbered_docs(10, 24, 11)  # 240 distinct non-BOS ids
    shards = {
        "shards": [all_docs[i::4] for i in range(4)],
        "row_groups": [all_docs[:12], all_docs[12:]],
        "documents": [all_docs],
    }[layout]
    manifest = shards_factory({"books": shards}, row_group_size=4 if layout == "row_groups" else 100)
    seen = []
    for rank in range(world_size):
        loader = MixtureLoader(manifest, seq_len=9, batch_size=2, rank=rank, world_size=world_size)
        stream = np.concatenate([windows(b).ravel() for b in take(loader, 30)])  # 600 tokens > 2 passes
        content = stream[stream != 1]
        own = set(content.tolist())
        assert len(set(content[: len(own)].tolist())) == len(own)  # a full first pass before any repeat
        seen.append(own)
    for a, b in itertools.combinations(seen, 2):
        assert not a & b
    assert set().union(*seen) == {t for doc in all_docs for t in doc[1:]}


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resumed_loader_yields_exactly_the_next_batches(shards_factory, num_workers):
    manifest = shards_factory(
        {
            "wikipedia": [numbered_docs(10, 7, 13), numbered_docs(200, 5, 17), numbered_docs(400, 6, 9)],
            "stackexchange": [numbered_docs(1000, 9, 7), numbered_docs(2000, 4, 23)],
        },
        shares={"wikipedia": 0.5, "stackexchange": 0.5},
        row_group_size=2,
    )
    loader = MixtureLoader(manifest, seq_len=11, batch_size=3, seed=7, num_workers=num_workers)
    batches, saved = [], None
    for batch in itertools.islice(iter(loader), 10):
        batches.append(batch)
        if len(batches) == 5:
            buffer = io.BytesIO()
            torch.save(loader.state_dict(), buffer)  # a checkpoint holds it; must load with weights_only
            saved = buffer.getvalue()
    assert [b.worker for b in batches] == [i % max(1, num_workers) for i in range(10)]
    resumed = MixtureLoader(manifest, seq_len=11, batch_size=3, seed=7, num_workers=num_workers)
    resumed.load_state_dict(torch.load(io.BytesIO(saved), weights_only=True))
    for expected, got in zip(batches[5:], take(resumed, 5), strict=True):
        assert torch.equal(expected.x, got.x) and torch.equal(expected.y, got.y)
        assert expected.sources == got.sources


def test_state_after_every_batch_resumes_exactly(shards_factory):
    # Small row groups and windows longer than them: positions land inside, at the end of, and across
    # row groups and passes.
    manifest = shards_factory(
        {"a": [numbered_docs(10, 5, 6), numbered_docs(100, 3, 4)], "b": [numbered_docs(500, 3, 5)]},
        row_group_size=1,
    )
    loader = MixtureLoader(manifest, seq_len=6, batch_size=2, seed=0)
    states, batches = [], []
    for batch in itertools.islice(iter(loader), 25):
        batches.append(batch)
        states.append(loader.state_dict())
    for k in range(24):
        resumed = MixtureLoader(manifest, seq_len=6, batch_size=2, seed=0)
        resumed.load_state_dict(states[k])
        assert torch.equal(next(iter(resumed)).x, batches[k + 1].x), f"resume after batch {k + 1}"


def test_iterating_again_continues_after_the_last_consumed_batch(shards_factory):
    manifest = shards_factory({"a": [numbered_docs(10, 30, 10)]})
    loader = MixtureLoader(manifest, seq_len=5, batch_size=2)
    straight = take(MixtureLoader(manifest, seq_len=5, batch_size=2), 6)
    pieces = take(loader, 2) + take(loader, 4)
    assert all(torch.equal(a.x, b.x) for a, b in zip(straight, pieces, strict=True))


def test_state_from_another_split_is_refused(shards_factory):
    manifest = shards_factory({"a": [numbered_docs(10, 8, 10), numbered_docs(200, 8, 10)]})
    two_ranks = MixtureLoader(manifest, seq_len=5, batch_size=2, rank=0, world_size=2)
    take(two_ranks, 1)
    with pytest.raises(ValueError, match="world_size=2"):
        MixtureLoader(manifest, seq_len=5, batch_size=2).load_state_dict(two_ranks.state_dict())


def test_state_points_at_row_groups_read_one_at_a_time(shards_factory):
    docs = numbered_docs(10, 12, 10)  # 12 row groups of one 10-token document
    manifest = shards_factory({"a": [docs]}, row_group_size=1)
    batch = take(MixtureLoader(manifest, seq_len=9, batch_size=2), 1)[0]  # consumes exactly 2 row groups
    position = batch.state["sources"]["a"]
    assert (position["pass"], position["index"], position["offset"]) == (0, 2, 0)
    assert position["path"] == "a-00000-of-00001.parquet"


def test_uint32_tokens_for_vocabularies_above_65536(shards_factory):
    docs = [[1, 70000, 70001, 70002, 2], [1, 65536, 99999, 2]]
    manifest = shards_factory({"a": [docs]}, vocab_size=100000)
    batch = take(MixtureLoader(manifest, seq_len=8, batch_size=1), 1)[0]
    assert windows(batch)[0].tolist() == [1, 70000, 70001, 70002, 2, 1, 65536, 99999, 2]


def test_token_ids_beyond_the_vocabulary_are_reported(shards_factory):
    manifest = shards_factory({"a": [[[1, 5, 9000, 7]] * 5]}, vocab_size=8000)
    with pytest.raises(ValueError, match="token id 9000 >= vocab_size 8000"):
        take(MixtureLoader(manifest, seq_len=4, batch_size=1), 1)


def test_validate_manifest_accepts_the_right_tokenizer_and_shards(shards_factory):
    manifest_path = shards_factory({"c4": [numbered_docs(10, 4, 5)], "arxiv": []})
    tokenizer = manifest_path.parent.parent / "tokenizer" / "tokenizer.model"
    assert validate_manifest(manifest_path, tokenizer)["tokenizer"]["vocab_size"] == 8000
    with pytest.raises(ValueError, match="needs `root`"):
        validate_manifest(json.loads(manifest_path.read_text()))


def test_validate_manifest_reports_another_tokenizer(shards_factory, tmp_path):
    manifest_path = shards_factory({"c4": [numbered_docs(10, 4, 5)]})
    other = tmp_path / "other.model"
    other.write_bytes(b"a different tokenizer")
    with pytest.raises(ValueError, match="shards were tokenized with sha256"):
        validate_manifest(manifest_path, other)


def test_validate_manifest_reports_missing_and_changed_shards(shards_factory):
    manifest_path = shards_factory({"c4": [numbered_docs(10, 4, 5), numbered_docs(100, 4, 5)]})
    shard_dir = manifest_path.parent / "c4"
    first, second = sorted(shard_dir.iterdir())
    first.write_bytes(first.read_bytes() + b"\0")  # content changed after the manifest was written
    validate_manifest(manifest_path, check_sha256=False)  # existence alone still holds
    with pytest.raises(ValueError, match="does not match its sha256"):
        validate_manifest(manifest_path)
    second.unlink()
    with pytest.raises(ValueError, match="does not exist") as error:
        validate_manifest(manifest_path)
    assert "sha256" in str(error.value)  # every problem is listed, not only the first
    with pytest.raises(ValueError, match="does not exist"):
        MixtureLoader(manifest_path, seq_len=4, batch_size=1)


def test_tokens_per_source_stay_within_two_percent_of_the_shares_over_many_windows(shards_factory):
    """Two ranks' loaders together, ~200k windows: every source's fraction of the tokens is within 2%
    (relative) of its manifest share, the small 10% source included."""
    shares = {"commoncrawl": 0.6, "c4": 0.3, "arxiv": 0.1}
    manifest = shards_factory(
        {name: [numbered_docs(10, 40, 50), numbered_docs(10, 40, 50)] for name in shares}, shares,
        row_group_size=20,
    )
    tokens = Counter()
    for rank in range(2):
        loader = MixtureLoader(manifest, seq_len=15, batch_size=256, seed=11, rank=rank, world_size=2)
        for batch in take(loader, 400):
            for source in batch.sources:
                tokens[source] += batch.x.shape[1] + 1
    total = sum(tokens.values())
    assert total == 2 * 400 * 256 * 16
    for name, share in shares.items():
        assert tokens[name] / total == pytest.approx(share, rel=0.02), name


def token_owner(all_docs: list[list[int]]) -> dict[int, int]:
    return {token: index for index, doc in enumerate(all_docs) for token in doc[1:]}


def test_held_out_documents_never_reach_training_on_any_rank(shards_factory):
    all_docs = numbered_docs(10, 60, 11)
    manifest = shards_factory({"wikipedia": [all_docs[:30], all_docs[30:]]}, row_group_size=5)
    owner = token_owner(all_docs)
    doc_ids = [f"wikipedia:{shard}:{i}" for shard in range(2) for i in range(30)]  # the fixture's ids
    expected = {index for index, doc_id in enumerate(doc_ids) if is_held_out(doc_id, 0.25)}
    assert 5 < len(expected) < 25  # the hash splits these 60 documents about 1:3

    def documents_read(split: str, rank: int, world_size: int) -> set[int]:
        loader = MixtureLoader(manifest, seq_len=9, batch_size=4, rank=rank, world_size=world_size,
                               holdout_fraction=0.25, split=split)
        stream = np.concatenate([windows(b).ravel() for b in take(loader, 40)])  # >= 2 passes
        return {owner[token] for token in stream[stream != 1].tolist()}

    assert documents_read("heldout", 0, 1) == expected
    assert documents_read("train", 0, 1) == set(range(60)) - expected
    per_rank = [documents_read("train", rank, 2) for rank in range(2)]
    assert not per_rank[0] & per_rank[1] and per_rank[0] | per_rank[1] == set(range(60)) - expected
    # A larger fraction holds out a superset: an evaluation set only grows with the fraction.
    assert {i for i, d in enumerate(doc_ids) if is_held_out(d, 0.1)} <= expected


def test_a_state_from_another_split_is_refused(shards_factory):
    manifest = shards_factory({"c4": [numbered_docs(10, 20, 11)]})
    loader = MixtureLoader(manifest, seq_len=5, batch_size=2, holdout_fraction=0.2)
    take(loader, 2)
    with pytest.raises(ValueError, match="holdout"):
        MixtureLoader(manifest, seq_len=5, batch_size=2).load_state_dict(loader.state_dict())
    with pytest.raises(ValueError, match="holdout_fraction > 0"):
        MixtureLoader(manifest, seq_len=5, batch_size=2, split="heldout")

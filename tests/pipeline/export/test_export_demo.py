"""The issue's acceptance on the demo run (conftest's session `demo_run`, shared with the other end-to-end
tests): `llamapipe export megatron OUT/shards DIR` writes per source files whose every document, read by
Megatron-Core's `IndexedDataset`, equals its row of the Parquet shards, and prints the blend of the
manifest's shares; `export numpy` likewise through `np.memmap`."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pyarrow.parquet as pq

from llamapipe.pipeline.cli import main

with warnings.catch_warnings():  # "Transformer Engine and Apex are not installed": CPU-only, as expected
    warnings.simplefilter("ignore")
    from megatron.core.datasets.indexed_dataset import IndexedDataset
    from megatron.core.datasets.utils import get_blend_from_list


def test_demo_shards_to_megatron_and_numpy(demo_run, tmp_path, capsys):
    shards = demo_run["out"] / "shards"
    manifest = json.loads((shards / "manifest.json").read_text())
    assert main(["export", "megatron", str(shards), str(tmp_path / "megatron")]) == 0
    printed = capsys.readouterr().out
    assert main(["export", "numpy", str(shards), str(tmp_path / "numpy")]) == 0
    sources = [name for name, entry in manifest["sources"].items() if entry["tokens"] > 0]
    assert len(sources) == 7
    for source in sources:
        tables = [pq.read_table(shards / shard["path"], columns=["tokens"])
                  for shard in manifest["sources"][source]["shards"]]
        expected = [row for table in tables for row in table.column(0).to_pylist()]
        dataset = IndexedDataset(str(tmp_path / "megatron" / source))
        assert [dataset[i].tolist() for i in range(len(dataset))] == expected, source
        flat = np.memmap(tmp_path / "numpy" / f"{source}.bin", dtype=np.uint16, mode="r")
        assert flat.tolist() == [token for row in expected for token in row], source
    words = next(line for line in printed.splitlines() if line.startswith("--data-path ")).split()[1:]
    prefixes, weights = get_blend_from_list(words)
    assert prefixes == [str(tmp_path / "megatron" / s) for s in sources]
    assert weights == [manifest["sources"][s]["share"] for s in sources]

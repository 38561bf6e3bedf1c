"""The same input and config give byte-identical shards and manifest whatever the runner's mode and
number of workers: DirectRunner in one process vs. two worker processes, on a small demo corpus, each
run in its own output folder (tokenizer.model does not depend on the folder)."""

from __future__ import annotations

import hashlib

import yaml

from llamapipe.pipeline.config import load_config
from llamapipe.pipeline.run import run
from llamapipe.sources.demo import write_demo_corpus
from tests.conftest import demo_config


def shard_digests(shards) -> dict[str, str]:
    """sha256 of every file under the shards folder, by path relative to it."""
    return {str(path.relative_to(shards)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(shards.rglob("*")) if path.is_file()}


def test_shards_and_manifest_do_not_depend_on_the_number_of_workers(tmp_path):
    corpus = tmp_path / "demo-data"
    write_demo_corpus(corpus, seed=0, scale=0.05)
    digests = []
    for name, options in (("one", {"direct_running_mode": "in_memory", "direct_num_workers": 1}),
                          ("two", {"direct_running_mode": "multi_processing", "direct_num_workers": 2})):
        data = demo_config(corpus, tmp_path / f"out-{name}")
        data["runner"]["options"] = options
        config_path = tmp_path / f"{name}.yaml"
        config_path.write_text(yaml.safe_dump(data))
        run(load_config(str(config_path)), log=lambda *_: None)
        digests.append(shard_digests(tmp_path / f"out-{name}" / "shards"))
    assert "manifest.json" in digests[0] and len(digests[0]) > 2
    assert digests[0] == digests[1]

"""The same input and config give byte-identical shards and manifest whatever the runner's mode and
number of workers, and whatever the output folder: DirectRunner in one process vs. two worker
processes, each writing to its own folder, on a small demo corpus. (SentencePiece records the path
of the tokenizer's training sample; train_tokenizer keeps only its file name, else the
tokenizer.model checksum in the manifest and shard metadata would differ between folders.)"""

from __future__ import annotations

import hashlib

import yaml

from llamapipe.pipeline.config import load_config
from llamapipe.pipeline.demo import write_demo_corpus
from llamapipe.pipeline.run import run
from tests.conftest import REPO


def shard_digests(shards) -> dict[str, str]:
    """sha256 of every file under the shards folder, by path relative to it."""
    return {str(path.relative_to(shards)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(shards.rglob("*")) if path.is_file()}


def test_shards_and_manifest_do_not_depend_on_the_number_of_workers(tmp_path):
    corpus = tmp_path / "demo-data"
    write_demo_corpus(corpus, seed=0, scale=0.05)
    with open(REPO / "configs" / "demo.yaml", encoding="utf-8") as f:
        data = yaml.safe_load(f)
    for options in data["sources"].values():
        options["inputs"] = [p.replace("demo-data", str(corpus), 1) for p in options["inputs"]]
    digests = []
    for name, options in (("one", {"direct_running_mode": "in_memory", "direct_num_workers": 1}),
                          ("two", {"direct_running_mode": "multi_processing", "direct_num_workers": 2})):
        data["runner"]["options"] = options
        data["output"] = str(tmp_path / f"out-{name}")
        config_path = tmp_path / f"{name}.yaml"
        config_path.write_text(yaml.safe_dump(data))
        run(load_config(str(config_path)), log=lambda *_: None)
        digests.append(shard_digests(tmp_path / f"out-{name}" / "shards"))
    assert "manifest.json" in digests[0] and len(digests[0]) > 2
    assert digests[0] == digests[1]

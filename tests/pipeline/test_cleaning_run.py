"""The cleaning graph on a corpus without Wikipedia: the reference classifier cannot train, so the run
keeps every page, and says why in OUT/ledger.json and the run record instead of failing."""

from __future__ import annotations

import json

from apache_beam.options.pipeline_options import PipelineOptions

from llamapipe.pipeline.config import parse_config
from llamapipe.pipeline.output.layout import OutputLayout
from llamapipe.pipeline.run import prepare_output, run_cleaning
from llamapipe.sources.demo import write_demo_corpus


def test_without_wikipedia_the_classifier_is_skipped_and_recorded(tmp_path):
    write_demo_corpus(tmp_path / "corpus", seed=1, scale=0.1)
    config = parse_config({
        "output": str(tmp_path / "out"),
        "sources": {"commoncrawl": {"inputs": [str(tmp_path / "corpus" / "commoncrawl" / "*.warc.gz")]}},
    })
    paths = OutputLayout(config.output)
    prepare_output(config.output)
    record: dict = {"stages": {}}
    options = PipelineOptions(["--runner=DirectRunner"])
    ledger = run_cleaning(config, options, paths, record, log=lambda line: None, quiet_beam=False)

    assert record["classifier"]["status"] == "skipped"
    reason = ledger["skipped_stages"]["classifier"]
    assert "is the wikipedia source enabled" in reason
    written = json.loads((tmp_path / "out" / "ledger.json").read_text())
    assert written["skipped_stages"] == {"classifier": reason}
    entry = ledger["sources"]["commoncrawl"]
    assert "classifier" not in entry["dropped_by_stage"]
    assert entry["kept"] > 0 and entry["in"] == entry["kept"] + entry["dropped"]

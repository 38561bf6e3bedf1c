"""OUT's paths, written once in `OutputLayout`, and what each run step writes (resume deletes them)."""

from __future__ import annotations

from llamapipe.pipeline.output.layout import RUN_STEPS, OutputLayout


def test_paths_under_out():
    layout = OutputLayout("/o")
    assert (layout.run, layout.ledger, layout.manifest, layout.tokenizer) == (
        "/o/run.json", "/o/ledger.json", "/o/shards/manifest.json", "/o/tokenizer/tokenizer.model")
    assert (layout.dropped, layout.rejects, layout.ledger_parts) == (
        "/o/dropped/dropped", "/o/rejects/rejects", "/o/_work/ledger/counts")
    assert (layout.files, layout.completed, layout.spill, layout.token_runs) == (
        "/o/_work/files", "/o/_work/completed.json", "/o/_work/spill", "/o/_work/token_runs")
    assert (layout.train_metrics, layout.lock, layout.report) == (
        "/o/train/metrics.jsonl", "/o/.llamapipe.lock", "/o/report.html")


def test_step_outputs():
    layout = OutputLayout("/o")
    written = {step: [path for _, path in layout.step_outputs(step)] for step in RUN_STEPS}
    assert written == {
        "clean": ["/o/documents", "/o/dropped", "/o/rejects", "/o/classifier", "/o/dedup", "/o/ledger.json",
                  "/o/_work/ledger", "/o/_work/dedup", "/o/_work/spill", "/o/decontamination"],
        "tokenizer": ["/o/tokenizer", "/o/_work/tokenizer-sample.txt"],
        "tokenize": ["/o/shards", "/o/_work/token_runs"],
    }
    # the per-file work's records survive an unfinished `clean`
    assert layout.files not in [path for paths in written.values() for path in paths]
    assert layout.decontamination_index not in [path for paths in written.values() for path in paths]

"""`llamapipe run` on inputs whose every document is dropped: one paragraph on stderr naming each source
and its main drop reasons with their counts, exit 2, no traceback, and OUT/ledger.json and
OUT/report.html written (what the user reads next). The inputs are documents in German where the
policy allows English only: a mistake a user makes (the wrong dump, the wrong language setting)."""

from __future__ import annotations

import gzip
import json

import yaml

from llamapipe.pipeline.cli import main
from llamapipe.pipeline.status import run_status

# Written for this test (not taken from any corpus): plain German prose, clearly German to lid.176.
GERMAN = [
    "Am Rand des alten Dorfes steht eine kleine Mühle, die seit mehr als zweihundert Jahren Korn mahlt.",
    "Jeden Morgen bringen die Bauern ihre Säcke über die steinerne Brücke und warten vor dem Tor.",
    "Der Müller erzählt ihnen Geschichten über strenge Winter, große Hochwasser und verlorene Schafe.",
    "Im Sommer sitzen die Kinder am Ufer des Baches und schauen dem großen hölzernen Rad beim Drehen zu.",
    "Wenn der Wind aus Westen kommt, riecht das ganze Tal nach frischem Brot und nassem Gras.",
    "Die Gemeinde hat beschlossen, das Gebäude zu erhalten und im Herbst ein kleines Museum zu eröffnen.",
]


def write_inputs(folder) -> dict:
    """Three C4 documents and one book, all German; returns the config's `sources`."""
    (folder / "c4").mkdir()
    with gzip.open(folder / "c4" / "part.json.gz", "wt", encoding="utf-8") as f:
        for i in range(3):
            text = "\n".join(GERMAN[i:] + GERMAN[:i])
            f.write(json.dumps({"text": text, "url": f"https://example.de/{i}",
                                "timestamp": "2019-04-20T10:00:00Z"}) + "\n")
    (folder / "books").mkdir()
    (folder / "books" / "das-tal.txt").write_text("\n\n".join(" ".join(GERMAN) for _ in range(5)),
                                                   encoding="utf-8")
    return {"c4": {"inputs": [str(folder / "c4" / "*.json.gz")]},
            "books": {"inputs": [str(folder / "books" / "*.txt")]}}


def test_a_run_that_drops_every_document_says_why_and_exits_2(tmp_path, capsys):
    out = tmp_path / "out"
    config = {
        "output": str(out),
        "runner": {"runner": "DirectRunner",
                   "options": {"direct_running_mode": "in_memory", "direct_num_workers": 1}},
        "sources": write_inputs(tmp_path),
    }
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))

    code = main(["run", str(config_path)])

    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert err.startswith("llamapipe: error: every document was dropped, so there is no text to train the "
                          "tokenizer on:")
    paragraph = " ".join(err.split())
    assert "c4: 3 read, 3 dropped (langid/language_de 3)" in paragraph, paragraph
    assert "books: 1 read, 1 dropped (langid/language_de 1)" in paragraph, paragraph
    assert f"{out / 'ledger.json'} and {out / 'report.html'}" in paragraph
    assert "\n\n" not in err.strip(), "one paragraph"

    ledger = json.loads((out / "ledger.json").read_text())
    assert ledger["totals"] == {"in": 4, "kept": 0, "dropped": 4}
    report = (out / "report.html").read_text()
    assert "language_de" in report
    assert json.loads((out / "run.json").read_text())["stopped"] == "every document was dropped"
    assert run_status(str(out))["stage_now"] == "stopped after cleaning: every document was dropped"
    assert not (out / "shards").exists()

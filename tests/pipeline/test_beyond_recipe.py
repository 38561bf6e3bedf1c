"""Beyond the LLaMA recipe, in one `llamapipe run` (DirectRunner, in memory) on the 20 real C4 pages of
../shared/realdata plus 5 generated spam pages, with
- PII redaction on: e-mail and public IP addresses planted in the real pages (and private ones beside them),
- two quality models of the user's (a fastText model the test trains: real sentences vs spam), one with a
  threshold and one score only,
- a user's own rule given by dotted path (`tests.pipeline.stages.user_rules:FewerThan100Words`).
Every planted public address is gone from the kept text, every private one is there, and nothing else of
a kept page changed; each page is kept or dropped as the rule and the model decide, with their reasons,
scores in `meta`; the ledger and the report show the redactions, the drops and the score histograms."""

from __future__ import annotations

import gzip
import json
import random
import re

import fasttext
import pyarrow.parquet as pq
import yaml

from llamapipe.pipeline.cli import main
from llamapipe.pipeline.stages.pii import EMAIL_PLACEHOLDER, IP_PLACEHOLDER, Redactor
from llamapipe.pipeline.stages.quality_models import score_bucket
from tests.conftest import require_realdata
from tests.pipeline.stages.junk_model import spam_text, train_junk_model
from tests.pipeline.stages.real_texts import c4_pages
from tests.pipeline.stages.user_rules import FewerThan100Words

RULE = "tests.pipeline.stages.user_rules:FewerThan100Words"
PUBLIC = ["jane.roe@mailbox.org", "8.8.4.4", "k.smith@uni-mail.de", "2a00:1450:4001:82a::200e",
          "151.101.1.69"]
PRIVATE = ["192.168.0.12", "10.1.2.3", "fe80::1", "2001:db8::7", "info@example.com"]
SENTENCE = "For questions write to {} or see the host {} (internal: {})."


def _plant(text: str, i: int, email: str, ip: str) -> str:
    cut = text.find("\n") + 1 or len(text)
    return text[:cut] + SENTENCE.format(email, ip, PRIVATE[i % len(PRIVATE)]) + "\n" + text[cut:]


def test_pii_quality_models_and_a_user_rule_in_one_run(tmp_path, capsys):
    realdata = require_realdata()
    model_path = train_junk_model(realdata, tmp_path)
    pages = c4_pages(realdata)
    assert all(Redactor().redact(p.text)[0] == p.text for p in pages)  # no address of their own
    rng = random.Random(7)
    emails = [address for address in PUBLIC if "@" in address]
    ips = [address for address in PUBLIC if "@" not in address]
    expected, rows = {}, []
    for i, page in enumerate(pages):
        text = _plant(page.text, i, emails[i % len(emails)], ips[i % len(ips)])
        expected[text] = _plant(page.text, i, EMAIL_PLACEHOLDER, IP_PLACEHOLDER)
        rows.append({"text": text, "url": page.id, "timestamp": "2019-04-20T10:00:00Z"})
    spam = [spam_text(rng, 150) for _ in range(5)]
    rows += [{"text": text, "url": f"https://spam.example/{i}", "timestamp": "2019-04-20T10:00:00Z"}
             for i, text in enumerate(spam)]
    (tmp_path / "c4").mkdir()
    with gzip.open(tmp_path / "c4" / "part.json.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)

    out = tmp_path / "out"
    config = {
        "output": str(out),
        "runner": {"runner": "DirectRunner", "options": {"direct_running_mode": "in_memory"}},
        "sources": {"c4": {"inputs": [str(tmp_path / "c4" / "*.json.gz")]}},
        "langid": {"allowed": {"c4": []}},  # spam is English too; the models decide here
        "filters": {"rules": {"c4": [RULE]}},
        "pii": {"enabled": True},
        "quality_models": [
            {"name": "junk", "path": str(model_path), "label": "hq", "threshold": 0.5},
            {"name": "hq_seen", "path": str(model_path), "label": "__label__hq", "sources": ["c4"]},
        ],
        "tokenizer": {"vocab_size": 400},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", str(tmp_path / "config.yaml")]) == 0, capsys.readouterr().err

    # What each page should become: the user's rule first (quality), then the model (quality_models).
    model = fasttext.load_model(str(model_path))
    rule = FewerThan100Words()
    decisions, scores = {}, {}
    for row in rows:
        text = row["text"]
        labels, probabilities = model.predict(text.replace("\n", " "), k=-1)
        scores[text] = round(float(dict(zip(labels, probabilities, strict=True))["__label__hq"]), 6)
        if not rule(text)[0]:
            decisions[text] = ("quality", "user_fewer_than_100_words")
        elif scores[text] < 0.5:
            decisions[text] = ("quality_models", "low_junk_score")
        else:
            decisions[text] = None
    assert sum(d == ("quality", "user_fewer_than_100_words") for d in decisions.values()) >= 3
    assert all(decisions[text] == ("quality_models", "low_junk_score") for text in spam)
    kept_inputs = [text for text, d in decisions.items() if d is None]
    assert len(kept_inputs) >= 10

    table = pq.read_table(out / "documents" / "c4").to_pylist()
    by_url = {row["url"]: row for row in table}
    assert len(table) == len(kept_inputs)
    for text in kept_inputs:
        row = next(r for r in rows if r["text"] == text)
        kept = by_url[row["url"]]
        assert kept["text"] == expected[text]  # planted public addresses replaced, nothing else changed
        assert all(private in kept["text"] for private in PRIVATE if private in text)
        assert not any(public in kept["text"] for public in PUBLIC)
        assert json.loads(kept["meta"])["quality_scores"] == {"junk": scores[text], "hq_seen": scores[text]}

    drops = [json.loads(line) for path in (out / "dropped").glob("*.jsonl")
             for line in path.read_text().splitlines()]
    assert sorted((d["stage"], d["reason"]) for d in drops) == sorted(d for d in decisions.values() if d)

    ledger = json.loads((out / "ledger.json").read_text())["sources"]["c4"]
    assert ledger["in"] == len(rows) and ledger["kept"] == len(kept_inputs)
    counted = {kind: sum(expected[t].count(p) for t in kept_inputs)
               for kind, p in (("email", EMAIL_PLACEHOLDER), ("ip", IP_PLACEHOLDER))}
    assert ledger["pii"] == {kind: {"redacted": n, "documents": len(kept_inputs)}
                             for kind, n in counted.items()}
    ruled = sum(d == ("quality", "user_fewer_than_100_words") for d in decisions.values())
    assert ledger["dropped_by_stage"]["quality"] == {"user_fewer_than_100_words": ruled}
    assert ledger["dropped_by_stage"]["quality_models"] == {
        "low_junk_score": sum(d == ("quality_models", "low_junk_score") for d in decisions.values())}
    scored = [t for t, d in decisions.items() if d != ("quality", "user_fewer_than_100_words")]
    histogram: dict[str, int] = {}
    for text in scored:
        histogram[score_bucket(scores[text])] = histogram.get(score_bucket(scores[text]), 0) + 1
    assert ledger["quality_scores"]["junk"] == dict(sorted(histogram.items()))
    kept_histogram: dict[str, int] = {}
    for text in kept_inputs:
        kept_histogram[score_bucket(scores[text])] = kept_histogram.get(score_bucket(scores[text]), 0) + 1
    assert ledger["quality_scores"]["hq_seen"] == dict(sorted(kept_histogram.items()))

    report = (out / "report.html").read_text()
    section = report[report.index('<section id="pii">'):report.index('<section id="scores">')]
    cells = re.findall(r'data-value="(\d+)"', section)
    assert cells == [str(counted["email"]), str(len(kept_inputs)), str(counted["ip"]), str(len(kept_inputs))]
    scores_section = report[report.index('<section id="scores">'):]
    assert "Quality model scores per source" in scores_section
    assert (f'data-model="junk"><td>c4</td><td>junk</td><td class="n" data-value="{len(scored)}"'
            in scores_section)
    assert "user_fewer_than_100_words" in report and "low_junk_score" in report

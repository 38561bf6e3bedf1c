"""The report as one static, self-contained HTML page: inline CSS and SVG charts, no script, no link
to fetch. Every text that comes from the data (documents, reasons, ids, urls) goes through `esc`.

Table cells that hold a number carry it raw in `data-value` (shown with thousands separators), and rows
name their source in `data-source`, so scripts and tests can read the page back.
"""

from __future__ import annotations

import html
import time

from llamapipe.pipeline.report import charts as charts
from llamapipe.pipeline.report.charts import language_label

SECTIONS = [
    ("funnel", "Funnel per source"),
    ("languages", "Languages"),
    ("lengths", "Document length before and after cleaning"),
    ("decontamination", "Benchmark decontamination"),
    ("dedup", "Duplicate clusters"),
    ("pii", "PII redaction"),
    ("scores", "Quality model scores"),
    ("mixture", "Token mixture"),
    ("tokenizer", "Tokenizer"),
    ("examples", "Examples kept and rejected"),
    ("training", "Training"),
]

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#212121;margin:0;
background:#f5f5f5}
main{max-width:1180px;margin:0 auto;padding:20px 28px 60px;background:#fff}
h1{font-size:24px;margin:8px 0 2px}h2{font-size:18px;margin:34px 0 8px;border-bottom:2px solid #e0e0e0}
nav a{margin-right:12px;color:#1565c0;text-decoration:none;font-size:13px}
.sub{color:#616161;font-size:13px;margin:0 0 12px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.card{background:#eceff1;border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:19px}.card span{font-size:12px;color:#546e7a}
table{border-collapse:collapse;margin:8px 0 4px;font-size:12.5px}
th,td{border-bottom:1px solid #e0e0e0;padding:3px 9px;text-align:left;vertical-align:top}
th{background:#fafafa}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
svg{max-width:100%;height:auto}.chart{margin:6px 0}
.row{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}.side{flex:1;min-width:320px}
.reasons{color:#616161;font-size:12px}
.examples{display:grid;grid-template-columns:1fr 1fr;gap:10px 18px}
.doc{border:1px solid #e0e0e0;border-radius:5px;padding:6px 9px;margin:6px 0;background:#fcfcfc}
.doc .meta{font-size:11.5px;color:#616161;word-break:break-all}
.doc pre{white-space:pre-wrap;word-break:break-word;font-size:11.5px;margin:4px 0 0;max-height:9.5em;
overflow:hidden}
.kept{border-left:4px solid #2e7d32}.rejected{border-left:4px solid #c62828}
.missing{color:#9e9e9e;font-style:italic}
mark{background:#ffe082}
"""


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def num(value, digits: int | None = None) -> str:
    """A table cell for a number: raw in data-value, shown with separators."""
    if value is None:
        return '<td class="n">–</td>'
    shown = f"{value:,.{digits}f}" if digits is not None else f"{value:,}"
    return f'<td class="n" data-value="{esc(value)}">{shown}</td>'


def size(n: int | None) -> str:
    if n is None:
        return "–"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def bytes_cell(n: int | None) -> str:
    return '<td class="n">–</td>' if n is None else f'<td class="n" data-value="{n}">{size(n)}</td>'


def _table(header: list[str], rows: list[str], table_id: str) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _missing(what: str) -> str:
    return f'<p class="missing">{esc(what)}</p>'


def render(report: dict) -> str:
    body = [_header(report)]
    for section, title in SECTIONS:
        content = _SECTION_HTML[section](report)
        body.append(f'<section id="{section}"><h2>{esc(title)}</h2>{content}</section>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>llamapipe report: {esc(report['out'])}</title><style>{CSS}</style></head>"
            f"<body><main>{''.join(body)}</main></body></html>\n")


def _header(report: dict) -> str:
    cards = []
    funnel = report["funnel"]
    if funnel:
        rows = funnel["sources"].values()
        totals = funnel["totals"]
        cards += [(f"{totals['in']:,}", "documents read"), (f"{totals['kept']:,}", "kept"),
                  (f"{totals['dropped']:,}", "dropped"),
                  (size(sum(r["bytes_in"] or 0 for r in rows)), "read (UTF-8)"),
                  (size(sum(r["bytes_kept"] or 0 for r in rows)), "kept (UTF-8)")]
    if report["mixture"]:
        cards.append((f"{report['mixture']['total_tokens']:,}", "tokens in shards"))
    if report["tokenizer"]:
        cards.append((f"{report['tokenizer']['vocab_size']:,}", "vocabulary"))
    if report["training"]:
        last = report["training"]["last"]
        cards.append((f"{report['training']['first_loss']:.2f} → {last['loss']:.2f}",
                      f"loss over {last['step']:,} steps"))
    stages = report["run"]["stages"]
    if stages:
        timings = ", ".join(f"{k} {v:.0f}" for k, v in stages.items() if v >= 0.5)
        cards.append((f"{sum(stages.values()):.0f} s", f"run time ({timings})"))
    card_html = "".join(f'<div class="card"><b>{esc(v)}</b><span>{esc(k)}</span></div>' for v, k in cards)
    nav = "".join(f'<a href="#{s}">{esc(t)}</a>' for s, t in SECTIONS)
    out = esc(report["out"])
    return (f'<h1>llamapipe run report</h1><p class="sub">{out} · generated '
            f"{esc(time.strftime('%Y-%m-%d %H:%M'))} from the files of the run (<code>llamapipe report "
            f'{out}</code> rebuilds it)</p><nav>{nav}</nav><div class="cards">{card_html}</div>')


def _funnel(report: dict) -> str:
    funnel = report["funnel"]
    if not funnel:
        return _missing("no OUT/ledger.json: the cleaning pipeline did not finish")
    rows = []
    for name, r in funnel["sources"].items():
        reasons = "<br>".join(
            f"<b>{esc(stage)}</b>: " + ", ".join(f"{esc(reason)} {count:,}" for reason, count in by.items())
            for stage, by in r["by_reason"].items())
        rows.append(f'<tr data-source="{esc(name)}"><td>{esc(name)}</td>{num(r["in"])}'
                    f'{bytes_cell(r["bytes_in"])}{num(r["kept"])}{bytes_cell(r["bytes_kept"])}'
                    f'{num(r["dropped"])}<td class="reasons">{reasons}</td></tr>')
    t = funnel["totals"]
    rows.append(f'<tr data-source="total"><td><b>total</b></td>{num(t["in"])}<td></td>{num(t["kept"])}'
                f'<td></td>{num(t["dropped"])}<td></td></tr>')
    table = _table(["source", "documents in", "bytes in", "kept", "bytes kept", "dropped",
                    "dropped by stage: reason count"], rows, "funnel-table")
    return f'<div class="chart">{charts.funnel_chart(funnel)}</div>{table}{_stage_notes(report)}'


def _stage_notes(report: dict) -> str:
    notes = [f"{stage} skipped: {reason}" for stage, reason in report["skipped_stages"].items()]
    status = report["run"].get("classifier") or {}
    evaluation = status.get("heldout") or status.get("evaluation")
    if status.get("status") in ("trained", "loaded") and evaluation:
        e = evaluation
        notes.append(f"reference classifier {status['status']}: held-out accuracy {e['accuracy']} on "
                     f"{e['examples']} pages; pages kept at P(reference) ≥ {status['threshold']}: "
                     f"{e['positives_kept_at_threshold']} of cited, "
                     f"{e['negatives_kept_at_threshold']} of random")
    return "".join(f'<p class="sub">{esc(note)}</p>' for note in notes)


def _languages(report: dict) -> str:
    languages = report["languages"]
    if not languages:
        return _missing("no OUT/ledger.json: the cleaning pipeline did not finish")
    rows = []
    for name, entry in languages.items():
        kept = ", ".join(f"{esc(language_label(k))} {v:,}" for k, v in list(entry["kept"].items())[:6])
        dropped = ", ".join(f"{esc(language_label(k))} {v:,}" for k, v in entry["dropped"].items())
        rows.append(f'<tr data-source="{esc(name)}"><td>{esc(name)}</td><td>{kept}</td>'
                    f"<td>{dropped}</td></tr>")
    table = _table(["source", "kept by language", "dropped by language ID"], rows, "languages-table")
    return (f'<div class="row"><div class="chart">{charts.language_chart(languages)}</div>'
            f'<div class="side">{table}</div></div>'
            '<p class="sub">Kept documents by the language lid.176 gave them, and the documents the language '
            "policy dropped (unwanted language, or a score under the threshold).</p>")


def _lengths(report: dict) -> str:
    lengths, funnel = report["lengths"], report["funnel"]
    if not lengths or not any(lengths.values()):
        return _missing("the ledger of this run holds no length histograms (a run before they were counted)")
    rows = []
    for name, histogram in lengths.items():
        read = sum((histogram or {}).get("in", {}).values())
        kept = sum((histogram or {}).get("kept", {}).values())
        r = funnel["sources"][name]
        rows.append(f'<tr data-source="{esc(name)}"><td>{esc(name)}</td>{num(read)}'
                    f'{num(round(r["chars_in"] / read) if read else None)}{num(kept)}'
                    f'{num(round(r["chars_kept"] / kept) if kept else None)}</tr>')
    table = _table(["source", "documents read", "mean characters read", "kept", "mean characters kept"],
                   rows, "lengths-table")
    return (f'<div class="chart">{charts.length_chart(lengths)}</div>{table}<p class="sub">As read: the '
            "reader's text (the page's HTML for web pages; what a reader drops itself has no text to "
            "measure); kept: the text written to OUT/documents.</p>")


def _dedup(report: dict) -> str:
    dedup = report["dedup"]
    if not dedup:
        return _missing("no duplicate-cluster statistics in OUT/ledger.json")
    facts = [("clusters", dedup.get("clusters")), ("documents in clusters", dedup.get("documents")),
             ("dropped as duplicates", dedup.get("duplicates_dropped")),
             ("largest cluster", dedup.get("largest")),
             ("near-duplicate clusters", dedup.get("near_clusters")),
             ("clusters spanning sources", dedup.get("multi_source_clusters"))]
    rows = [f'<tr data-key="{esc(k)}"><td>{esc(k)}</td>{num(v)}</tr>' for k, v in facts if v is not None]
    for pair, count in (dedup.get("cross_source_pairs") or {}).items():
        rows.append(f'<tr data-key="pairs {esc(pair)}"><td>pairs {esc(pair)}</td>{num(count)}</tr>')
    lsh = dedup.get("lsh") or {}
    note = ""
    if lsh:
        note = esc(f"scope {dedup.get('scope')}; MinHash {lsh.get('num_perm')} permutations, "
                   f"{lsh.get('bands')} bands × {lsh.get('rows')} rows, Jaccard ≥ {lsh.get('threshold')} "
                   f"(books {lsh.get('book_threshold')}); {lsh.get('pairs_compared')} pairs compared")
    return (f'<div class="row"><div class="chart">{charts.cluster_chart(dedup)}</div>'
            f'{_table(["", "count"], rows, "dedup-table")}</div><p class="sub">{note}</p>')


def _decontamination(report: dict) -> str:
    decon = report.get("decontamination")
    if not decon:
        return _missing("not configured (`decontamination.sets` in the config)")
    settings, index = decon["settings"], decon["index"] or {}
    rows, by_set = [], {}
    for r in decon["rows"]:
        rows.append(f'<tr data-set="{esc(r["set"])}" data-source="{esc(r["source"])}">'
                    f'<td>{esc(r["set"])}</td><td>{esc(r["source"])}</td>{num(r["documents"])}{num(r["chars"])}'
                    f'{num(r["tokens_estimated"])}</tr>')
        total = by_set.setdefault(r["set"], {"documents": 0, "chars": 0, "tokens": 0})
        total["documents"] += r["documents"]
        total["chars"] += r["chars"]
        total["tokens"] += r["tokens_estimated"] or 0
    for name in decon["sets"]:
        total = by_set.get(name, {"documents": 0, "chars": 0, "tokens": 0})
        rows.append(f'<tr data-set="{esc(name)}" data-source="all"><td><b>{esc(name)}</b></td><td>all</td>'
                    f'{num(total["documents"])}{num(total["chars"])}{num(total["tokens"])}</tr>')
    table = _table(["set", "source", "documents removed", "characters removed", "tokens removed (estimate)"],
                   rows, "decontamination-table")
    ngram, min_words = settings.get("ngram") or 1, settings.get("min_words")
    checked = esc(", ".join(settings.get("sources") or []) or "all")
    note = (f"A document holding any {ngram}-word sequence of an evaluation set (after dedup's "
            f"normalisation; examples of {min_words} to {ngram - 1} words matched whole, shorter ones left "
            f"out) is dropped as <code>contaminated</code>; sources checked: {checked}. Tokens are estimated "
            "from the "
            "characters removed and each source's characters per token measured by the run's tokenizer "
            "(the dropped texts are not tokenized).")
    if index:
        note += esc(f" Index: {index.get('ngrams', 0):,} distinct n-grams of {index.get('examples', 0):,} "
                    f"examples ({index.get('skipped_short', 0):,} shorter examples left out), "
                    f"{index.get('bytes', 0):,} bytes ({index.get('bytes_per_ngram')} per n-gram).")
    examples = "".join(
        f'<div class="doc rejected"><b>{esc(e["set"])} · {esc(e["source"])}</b>'
        f'<div class="meta">{esc(e["id"])} · n-gram “{esc(e["ngram"])}”</div>'
        f'<pre>…{esc(e["before"])}<mark>{esc(e["match"])}</mark>'
        f'{esc(e["after"])}…</pre></div>' for e in decon["examples"][:6])
    chart = charts.decontamination_chart(decon["rows"], decon["sets"])
    return (f'<div class="row"><div class="chart">{chart}</div>{table}</div><p class="sub">{note}</p>'
            + (f'<div class="examples">{examples}</div>' if examples else _missing("no document matched")))


def _mixture(report: dict) -> str:
    manifest = report["mixture"]
    if not manifest:
        return _missing("no OUT/shards/manifest.json: the run did not reach tokenization")
    rows = []
    for name, e in manifest["sources"].items():
        rows.append(f'<tr data-source="{esc(name)}"><td>{esc(name)}</td>{num(e["documents"])}'
                    f'{num(e["tokens"])}{num(e.get("num_shards", len(e.get("shards", []))))}'
                    f'{num(e["share"], 3)}{num(e["configured_share"], 3)}{num(e["epochs"], 2)}'
                    f'{num(e["configured_epochs"], 2)}</tr>')
    rows.append(f'<tr data-source="total"><td><b>total</b></td><td></td>{num(manifest["total_tokens"])}'
                f'<td></td><td></td><td></td><td></td><td></td></tr>')
    table = _table(["source", "documents", "tokens", "shards", "share", "target share", "epochs",
                    "target epochs"], rows, "mixture-table")
    mode = ("shares are the target, epochs follow" if manifest.get("mixture_mode") == "token_budget"
            else "epochs are the target, shares follow from the token counts")
    return (f'<div class="chart">{charts.mixture_chart(manifest)}</div>{table}<p class="sub">Mixture mode: '
            f"{esc(mode)}; trained-token budget {manifest.get('token_budget', 0):,}.</p>")


def _tokenizer(report: dict) -> str:
    stats = report["tokenizer"]
    if not stats or not stats["sources"]:
        return _missing("no OUT/tokenizer/tokenizer.model, or no kept document to encode")
    rows = [f'<tr data-source="{esc(n)}"><td>{esc(n)}</td>{num(s["documents"])}{num(s["words"])}'
            f'{num(s["tokens"])}{num(s["tokens_per_word"], 3)}{num(s["chars_per_token"], 2)}</tr>'
            for n, s in stats["sources"].items()]
    table = _table(["source", "documents sampled", "words", "tokens", "tokens per word",
                    "characters per token"], rows, "tokenizer-table")
    summary = report["run"].get("tokenizer") or {}
    note = (f"SentencePiece BPE, {stats['vocab_size']:,} pieces (requested "
            f"{summary.get('requested_vocab_size', stats['vocab_size']):,}), trained on "
            f"{summary.get('sample_lines', 0):,} sampled lines. Words are whitespace-separated; up to the "
            "first 20,000 characters of the first 200 kept documents of each source are encoded.")
    return (f'<div class="row"><div class="chart">{charts.tokenizer_chart(stats)}</div>{table}</div>'
            f'<p class="sub">{esc(note)}</p>')


def _doc(kind: str, title: str, meta: str, text: str) -> str:
    return (f'<div class="doc {kind}"><b>{esc(title)}</b><div class="meta">{esc(meta)}</div>'
            f"<pre>{esc(text)}</pre></div>")


def _examples(report: dict) -> str:
    kept, rejected = report["examples"]["kept"], report["examples"]["rejected"]
    sources = list(dict.fromkeys(list(kept) + list(rejected)))
    if not sources:
        return _missing("no documents or rejects written")
    parts = []
    for name in sources:
        kept_html = "".join(_doc("kept", f"kept · {d['language'] or 'no language ID'} · {d['chars']:,} chars",
                                 f"{d['id']} {d['url']}", d["text"]) for d in kept.get(name, [])) \
            or _missing("nothing kept")
        rejected_html = "".join(_doc("rejected", f"{d['stage']} / {d['reason']}", f"{d['id']} {d['detail']}",
                                     d["text"] or "(no text recorded)") for d in rejected.get(name, [])) \
            or _missing("nothing rejected")
        parts.append(f'<h3 data-source="{esc(name)}">{esc(name)}</h3><div class="examples">'
                     f"<div>{kept_html}</div><div>{rejected_html}</div></div>")
    intro = ('<p class="sub">The first kept documents of each source, and sampled drops of different '
             "reasons (OUT/rejects; <code>llamapipe inspect OUT/rejects --reason R</code> shows more).</p>")
    return intro + "".join(parts)


def _training(report: dict) -> str:
    training = report["training"]
    if not training:
        return _missing("not trained yet: `llamapipe train CONFIG` writes OUT/train/metrics.jsonl and "
                        "refreshes this report")
    last = training["last"]
    facts = [("steps", last["step"]), ("first loss", round(training["first_loss"], 4)),
             ("last loss", round(last["loss"], 4)), ("tokens", last.get("tokens")),
             ("tokens/s (last interval)", round(last.get("tokens_per_s") or 0)),
             ("seconds", round(last.get("elapsed_s") or 0, 1))]
    rows = [f'<tr data-key="{esc(k)}"><td>{esc(k)}</td>{num(v)}</tr>' for k, v in facts if v is not None]
    for source, points in sorted(training["eval"].items()):
        step, loss = points[-1]
        rows.append(f'<tr data-key="held-out {esc(source)}"><td>held-out {esc(source)} (step {step:,})'
                    f"</td>{num(round(loss, 4))}</tr>")
    return (f'<div class="chart">{charts.training_chart(training)}</div>'
            f'{_table(["", "value"], rows, "training-table")}')


# Each section's HTML, by its id in SECTIONS (named functions, so a renamed one fails at import).
_SECTION_HTML = {"funnel": _funnel, "languages": _languages, "lengths": _lengths, "dedup": _dedup,
                 "decontamination": _decontamination,
                 "mixture": _mixture, "tokenizer": _tokenizer, "examples": _examples, "training": _training}


def _pii(report: dict) -> str:
    config = report.get("pii_config") or {}
    if not config.get("enabled"):
        return _missing("PII redaction is off (pii.enabled: false, the LLaMA recipe's setting)")
    kinds = config.get("kinds") or []
    rows = []
    for name, by_kind in (report.get("pii") or {}).items():
        cells = "".join(num(by_kind.get(kind, {}).get(side, 0)) for kind in kinds for side in ("redacted",
                                                                                             "documents"))
        rows.append(f'<tr data-source="{esc(name)}"><td>{esc(name)}</td>{cells}</tr>')
    header = ["source"] + [f"{kind} {side}" for kind in kinds for side in ("replaced", "documents")]
    note = ("Addresses replaced in the kept documents (|||EMAIL_ADDRESS|||, |||IP_ADDRESS|||, Dolma's "
            "placeholders) and the documents that had one; private, loopback, link-local, multicast, "
            "reserved and documentation addresses are kept. Sources not listed had none.")
    if not rows:
        return _missing("PII redaction is on; no kept document held an address it replaces")
    return f'{_table(header, rows, "pii-table")}<p class="sub">{esc(note)}</p>'


def _quality_scores(report: dict) -> str:
    models = report.get("quality_models") or []
    if not models:
        return _missing("no quality_models in the config")
    scores = report.get("quality_scores") or {}
    rows = []
    for name, by_model in scores.items():
        for model, histogram in by_model.items():
            rows.append(f'<tr data-source="{esc(name)}" data-model="{esc(model)}"><td>{esc(name)}</td>'
                        f"<td>{esc(model)}</td>{num(sum(histogram.values()))}</tr>")
    thresholds = {m["name"]: m.get("threshold") for m in models}
    chart = charts.quality_score_chart(scores, thresholds) if scores else ""
    described = "; ".join(
        f"{m['name']}: P({m['label']}) from {m['path']}, "
        + (f"dropped under {m['threshold']}" if m.get("threshold") is not None else "score only")
        for m in models)
    table = _table(["source", "model", "documents scored"], rows, "scores-table")
    return (f'<div class="chart">{chart}</div>{table}'
            f'<p class="sub">{esc(described)}. Every scored document, dropped ones included, in buckets of '
            "0.05; the dashed line is the threshold.</p>")


_SECTION_HTML["pii"] = _pii
_SECTION_HTML["scores"] = _quality_scores

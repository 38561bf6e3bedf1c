"""The ablation's outputs: DIR/ablation.json, DIR/report.html (held-out loss per variant, mean and spread
over seeds; training-loss curves; a table) and one line per variant for the console.

Honest reading: a difference between two variants counts only when it is larger than the spread of
their seeds. With the 2 to 5 seeds an ablation can afford, the spread is the range (max - min) of a
variant's seed losses, not a standard deviation (which 2 points do not estimate); a difference of means
no larger than the wider of the two ranges is reported as "within the seed spread", i.e. not measured.
FineWeb reads its ablations the same way: against the variation between seeds of one setting."""

from __future__ import annotations

import html
import io
import json
import statistics

from llamapipe.pipeline.ablate.variants import FULL
from llamapipe.pipeline.report.charts import STAGE_COLOURS, STYLE
from llamapipe.tokenizer.format import storage


def seed_stats(variant: dict) -> dict:
    losses = [s["eval_loss"] for s in variant["seeds"]]
    return {"mean": statistics.fmean(losses), "min": min(losses), "max": max(losses),
            "spread": max(losses) - min(losses)}


def compare(a: dict, b: dict) -> dict:
    """b - a in mean held-out loss, and whether it is within the wider of their seed spreads."""
    sa, sb = seed_stats(a), seed_stats(b)
    difference = sb["mean"] - sa["mean"]
    spread = max(sa["spread"], sb["spread"])
    return {"a": a["name"], "b": b["name"], "difference": round(difference, 5), "spread": round(spread, 5),
            "within_spread": abs(difference) <= spread}


def summarise(ablation: dict) -> list[dict]:
    """Every variant against `full` (b - full: positive means the variant is worse than full)."""
    by_name = {v["name"]: v for v in ablation["variants"]}
    full = by_name.get(FULL)
    if full is None:
        return []
    return [compare(full, v) for v in ablation["variants"] if v["name"] != FULL]


def verdict(comparison: dict) -> str:
    if comparison["within_spread"]:
        return "within the seed spread: no measured difference"
    worse = comparison["difference"] > 0
    return f"{'worse' if worse else 'better'} than full, beyond the seed spread"


def console_lines(ablation: dict) -> list[str]:
    comparisons = {c["b"]: c for c in ablation.get("comparisons", [])}
    lines = []
    for variant in ablation["variants"]:
        s = seed_stats(variant)
        tokens = {seed["train_tokens"] for seed in variant["seeds"]}
        line = (f"{variant['name']:<22} held-out loss {s['mean']:.4f} (seeds {s['min']:.4f}-{s['max']:.4f}, "
                f"{len(variant['seeds'])} seeds x {', '.join(f'{t:,}' for t in sorted(tokens))} tokens) "
                f"corpus {variant['corpus']['documents']:,} docs {variant['corpus']['tokens']:,} tokens")
        if variant["name"] in comparisons:
            c = comparisons[variant["name"]]
            line += f" | vs full {c['difference']:+.4f}: {verdict(c)}"
        lines.append(line)
    return lines


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]


def loss_chart(ablation: dict) -> str:
    """Held-out loss per variant: each seed a dot, the mean a bar mark, the seed range a line."""
    import matplotlib.pyplot as plt

    variants = ablation["variants"]
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(variants) + 1.2))
        for i, variant in enumerate(variants):
            s = seed_stats(variant)
            colour = STAGE_COLOURS[i % len(STAGE_COLOURS)]
            ax.plot([s["min"], s["max"]], [i, i], color=colour, linewidth=3, alpha=0.35)
            ax.scatter([seed["eval_loss"] for seed in variant["seeds"]], [i] * len(variant["seeds"]),
                       color=colour, s=14, zorder=3)
            ax.plot([s["mean"]], [i], marker="|", markersize=16, color="#212121", zorder=4)
            ax.annotate(f"{s['mean']:.3f}", (s["max"], i), textcoords="offset points", xytext=(6, -3),
                        fontsize=8)
        ax.set_yticks(range(len(variants)), [v["name"] for v in variants])
        ax.invert_yaxis()
        ax.set_xlabel("held-out loss per token (nats): lower is better")
        ax.set_title("Held-out loss per variant: seeds (dots), mean (|), seed range (band)")
        return _svg(fig)


def curve_chart(ablation: dict) -> str:
    """Training loss per logged step, one line per variant and seed (a variant's seeds in one colour)."""
    import matplotlib.pyplot as plt

    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(8, 3.4))
        for i, variant in enumerate(ablation["variants"]):
            colour = STAGE_COLOURS[i % len(STAGE_COLOURS)]
            for j, seed in enumerate(variant["seeds"]):
                if seed.get("curve"):
                    steps, losses = zip(*seed["curve"], strict=True)
                    ax.plot(steps, losses, color=colour, linewidth=1, alpha=0.8,
                            label=variant["name"] if j == 0 else None)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss (own corpus)")
        ax.set_title("Training loss curves")
        ax.legend(frameon=False, fontsize=8, ncol=3)
        return _svg(fig)


def report_html(ablation: dict) -> str:
    esc = html.escape
    train = ablation["train"]
    comparisons = {c["b"]: c for c in ablation.get("comparisons", [])}
    rows = []
    for variant in ablation["variants"]:
        s = seed_stats(variant)
        c = comparisons.get(variant["name"])
        by_source = {}
        for seed in variant["seeds"]:
            for name, loss in seed["eval_loss_by_source"].items():
                by_source.setdefault(name, []).append(loss)
        sources = ", ".join(f"{n} {sum(v) / len(v):.3f}" for n, v in sorted(by_source.items()))
        difference = "" if c is None else f"{c['difference']:+.4f}"
        rows.append(
            f"<tr><td>{esc(variant['name'])}</td><td>{esc(', '.join(variant['stages_off']) or '-')}</td>"
            f"<td>{variant['corpus']['documents']:,}</td><td>{variant['corpus']['tokens']:,}</td>"
            f"<td>{s['mean']:.4f}</td><td>{s['spread']:.4f}</td>"
            f"<td>{difference}</td>"
            f"<td>{'reference' if c is None else esc(verdict(c))}</td><td>{esc(sources)}</td></tr>")
    evaluation = ablation["eval"]
    eval_sources = ", ".join(f"{n} ({e['documents']} docs, {e['tokens']:,} tokens)"
                             for n, e in evaluation["sources"].items())
    notes = [c for c in ablation.get("comparisons", []) if c["within_spread"]]
    within = ("<p>Within the seed spread (not a measured difference): "
              + ", ".join(f"{esc(c['b'])} vs full ({c['difference']:+.4f}, spread {c['spread']:.4f})"
                          for c in notes) + ".</p>") if notes else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>llamapipe ablation</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#212121}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:left}}
</style></head><body>
<h1>Ablation: does each stage help?</h1>
<p>Every variant trained the {esc(train['model'])} preset for {train['steps']} steps of
{train['tokens_per_step']:,} tokens (seq_len {train['seq_len']}, lr {train['lr']}), seeds {train['seeds']},
with one tokenizer, on its own corpus's mixture.
Held-out set ({esc(evaluation['kind'])}): {esc(eval_sources)}; never in any variant's training.</p>
<section id="loss"><h2>Held-out loss per variant</h2>{loss_chart(ablation)}</section>
{within}
<section id="table"><h2>Variants</h2><table>
<tr><th>variant</th><th>stages off</th><th>documents</th><th>tokens</th><th>held-out loss (mean)</th>
<th>seed spread</th><th>vs full</th><th>reading</th><th>loss per source</th></tr>
{''.join(rows)}</table></section>
<section id="curves"><h2>Training loss</h2>{curve_chart(ablation)}</section>
<p>At this scale the figures test the loop, not the stages: FineWeb and DCLM trust ablations from about
1-2B parameters trained on about 28B tokens.</p>
</body></html>
"""


def write_outputs(ablation: dict, out: str) -> None:
    storage.write_text(storage.join(out, "ablation.json"), json.dumps(ablation, indent=2))
    storage.write_text(storage.join(out, "report.html"), report_html(ablation))

"""The report's charts: matplotlib (Agg) figures as inline SVG, one function per chart.

SVG keeps the text as text (`svg.fonttype: none`): the charts stay sharp, small, searchable, and a test
can read the numbers written on them. Each function takes the plain data gathered by `build.py`.
"""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")  # no display; before pyplot is imported

import matplotlib.pyplot as plt  # noqa: E402

STYLE = {
    "svg.fonttype": "none",
    "svg.hashsalt": "llamapipe",  # stable element ids: the same run draws the same file
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],  # written into every SVG text: keep it short
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
}
KEPT = "#2e7d32"
DROPPED = "#c62828"
BEFORE = "#90a4ae"
STAGE_COLOURS = ["#ef6c00", "#8e24aa", "#1e88e5", "#d81b60", "#6d4c41", "#00897b", "#fdd835", "#5e35b1",
                 "#546e7a", "#c0ca33"]


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]  # inline: without the XML declaration and doctype



def _small_multiples(count: int, max_columns: int, size: tuple[float, float]):
    """A grid of `count` charts, at most `max_columns` wide, each `size` inches; the unused cells hidden."""
    columns = min(max_columns, max(1, count))
    rows = math.ceil(count / columns) or 1
    fig, axes = plt.subplots(rows, columns, figsize=(size[0] * columns, size[1] * rows + 0.4), squeeze=False)
    for ax in axes.flat[count:]:
        ax.axis("off")
    return fig, axes

def funnel_chart(funnel: dict) -> str:
    """Per source, one bar of 100% of its documents in: kept, then dropped per stage."""
    rows = funnel["sources"]
    names = list(rows)[::-1]
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(9, 0.45 * len(names) + 1.3))
        left = [0.0] * len(names)
        segments = [("kept", KEPT, [rows[n]["kept"] for n in names])]
        for i, stage in enumerate(funnel["stages"]):
            colour = STAGE_COLOURS[i % len(STAGE_COLOURS)]
            counts = [rows[n]["by_stage"].get(stage, 0) for n in names]
            segments.append((f"dropped at {stage}", colour, counts))
        for label, colour, counts in segments:
            widths = [100.0 * c / max(rows[n]["in"], 1) for c, n in zip(counts, names, strict=True)]
            ax.barh(names, widths, left=left, color=colour, label=label, height=0.65)
            for y, (width, count, x) in enumerate(zip(widths, counts, left, strict=True)):
                if width >= 6:
                    ax.text(x + width / 2, y, f"{count:,}", ha="center", va="center", color="white",
                            fontsize=8)
            left = [a + b for a, b in zip(left, widths, strict=True)]
        for y, name in enumerate(names):
            ax.text(101, y, f"{rows[name]['in']:,} in", va="center", fontsize=8)
        ax.set_xlim(0, 112)
        ax.set_xlabel("share of the documents read (%)")
        ax.set_title("Documents per source: kept, and dropped by stage")
        ax.legend(ncol=min(5, len(segments)), loc="upper center", frameon=False, fontsize=8,
                  bbox_to_anchor=(0.5, -0.12 - 0.6 / len(names)))
        return _svg(fig)


def language_chart(languages: dict, top: int = 14) -> str:
    """Documents per language over all sources: kept, and dropped by language ID."""
    kept: dict[str, int] = {}
    dropped: dict[str, int] = {}
    for entry in languages.values():
        for language, count in entry["kept"].items():
            kept[language] = kept.get(language, 0) + count
        for language, count in entry["dropped"].items():
            dropped[language] = dropped.get(language, 0) + count
    names = sorted(set(kept) | set(dropped), key=lambda k: (-(kept.get(k, 0) + dropped.get(k, 0)), k))
    names = names[:top][::-1]
    labels = [language_label(n) for n in names]
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.2, 0.3 * len(names) + 1.1))
        kept_counts = [kept.get(n, 0) for n in names]
        dropped_counts = [dropped.get(n, 0) for n in names]
        ax.barh(labels, kept_counts, color=KEPT, label="kept", height=0.65)
        ax.barh(labels, dropped_counts, left=kept_counts, color=DROPPED, label="dropped by language ID",
                height=0.65)
        for y, (k, d) in enumerate(zip(kept_counts, dropped_counts, strict=True)):
            ax.text(k + d, y, f" {k:,} kept" + (f", {d:,} dropped" if d else ""), va="center", fontsize=8)
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlim(0, max(k + d for k, d in zip(kept_counts, dropped_counts, strict=True)) * 8)
        ax.set_xlabel("documents (log scale)")
        ax.set_title("Languages identified (lid.176)")
        ax.legend(frameon=False, loc="lower right")
        return _svg(fig)


def language_label(language: str) -> str:
    return {"none": "no language ID (code)", "low_language_score": "uncertain (score < threshold)",
            "not_dump_language": "not the dump's language"}.get(language, language)


def length_chart(lengths: dict) -> str:
    """Per source, documents per length bucket (powers of two of characters) as read and as kept."""
    names = [n for n, h in lengths.items() if h and (h.get("in") or h.get("kept"))]
    with plt.rc_context(STYLE):
        fig, axes = _small_multiples(len(names), 4, (2.35, 1.75))
        for ax, name in zip(axes.flat, names, strict=False):
            histogram = lengths[name]
            buckets = sorted({int(b) for side in ("in", "kept") for b in histogram.get(side, {})})
            x = [math.log2(b) if b else -1 for b in buckets]
            for side, colour, shift, label in (("in", BEFORE, -0.2, "as read"), ("kept", KEPT, 0.2, "kept")):
                counts = [histogram.get(side, {}).get(str(b), 0) for b in buckets]
                ax.bar([v + shift for v in x], counts, width=0.4, color=colour, label=label)
            ticks = [v for v in x if v >= 0]
            ticks = ticks[::2] if len(ticks) > 5 else ticks
            ax.set_xticks(ticks, [_chars(2 ** int(v)) for v in ticks], fontsize=7)
            ax.set_xlim(min(x) - 1.5, max(x) + 1.5)  # a lone bucket stays a bar, not a wall
            ax.set_title(name, fontsize=9)
            ax.tick_params(axis="y", labelsize=7)
        axes.flat[0].legend(frameon=False, fontsize=7)
        fig.suptitle("Document length in characters, as read and as kept", fontsize=10, fontweight="bold")
        fig.tight_layout()
        return _svg(fig)


def _chars(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k" if n >= 1000 else str(n)


def cluster_chart(dedup: dict) -> str:
    """Duplicate clusters per size (a kept document and the duplicates dropped for it)."""
    histogram = dedup.get("size_histogram") or {}
    buckets = sorted(histogram, key=lambda b: int(b.split("-")[0]))
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(4.6, 2.6))
        counts = [histogram[b] for b in buckets]
        bars = ax.bar(buckets, counts, color="#5e35b1")
        ax.bar_label(bars, [f"{c:,}" for c in counts], fontsize=8)
        ax.set_xlabel("documents in the cluster")
        ax.set_ylabel("clusters")
        ax.set_title("Duplicate cluster sizes")
        if not buckets:
            ax.text(0.5, 0.5, "no duplicates found", ha="center", transform=ax.transAxes)
        return _svg(fig)


def mixture_chart(manifest: dict) -> str:
    """Per source: the share of training tokens it gets against the target share, with its epochs."""
    sources = manifest["sources"]
    names = list(sources)[::-1]
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(9, 0.5 * len(names) + 1.2))
        y = range(len(names))
        actual = [100 * sources[n]["share"] for n in names]
        target = [100 * sources[n]["configured_share"] for n in names]
        ax.barh([v + 0.2 for v in y], actual, height=0.4, color="#1e88e5", label="share of training tokens")
        ax.barh([v - 0.2 for v in y], target, height=0.4, color="#b0bec5", label="target share (config)")
        for v, name, a, t in zip(y, names, actual, target, strict=True):
            entry = sources[name]
            ax.text(max(a, t) + 1, v, f"{a:.1f}% vs {t:.1f}%, {entry['epochs']:.2f} epochs of "
                    f"{entry['tokens']:,} tokens", va="center", fontsize=8)
        ax.set_yticks(list(y), names)
        ax.set_xlim(0, max(actual + target) * 1.9)
        ax.set_xlabel("% of the tokens trained on")
        ax.set_title("Token mixture: actual vs target")
        ax.legend(frameon=False, loc="lower right")
        return _svg(fig)


def tokenizer_chart(stats: dict) -> str:
    """Tokens per word per source, on the sampled documents."""
    per_source = {n: s for n, s in stats["sources"].items() if s["tokens_per_word"]}
    names = list(per_source)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(4.6, 2.6))
        values = [per_source[n]["tokens_per_word"] for n in names]
        bars = ax.bar(names, values, color="#00897b")
        ax.bar_label(bars, [f"{v:.2f}" for v in values], fontsize=8)
        ax.set_ylabel("tokens per word")
        ax.set_title(f"Tokenizer ({stats['vocab_size']:,} pieces): tokens per word")
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        return _svg(fig)


def training_chart(training: dict) -> str:
    """Training loss per logged step, and the held-out loss of each source at evaluation steps."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(9, 3.4))
        ax.plot(training["steps"], training["loss"], color="#212121", linewidth=1.5, label="training loss")
        for i, (source, points) in enumerate(sorted(training["eval"].items())):
            steps, losses = zip(*points, strict=True)
            ax.plot(steps, losses, marker="o", markersize=3.5, linewidth=1, linestyle="--",
                    color=STAGE_COLOURS[i % len(STAGE_COLOURS)], label=f"held-out {source}")
        last = training["last"]
        ax.annotate(f"{last['loss']:.3f}", (last["step"], last["loss"]), textcoords="offset points",
                    xytext=(4, 6), fontsize=8)
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy loss")
        ax.set_title("Training and held-out loss")
        ax.legend(frameon=False, fontsize=8, ncol=2)
        return _svg(fig)


def decontamination_chart(rows: list[dict], sets: list[str]) -> str:
    """Documents removed as contaminated per evaluation set, stacked by source."""
    sources = sorted({r["source"] for r in rows})
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(4.6, 0.6 + 0.35 * max(1, len(sets))))
        left = [0] * len(sets)
        for i, source in enumerate(sources):
            counts = [sum(r["documents"] for r in rows if r["set"] == s and r["source"] == source)
                      for s in sets]
            bars = ax.barh(sets, counts, left=left, color=STAGE_COLOURS[i % len(STAGE_COLOURS)], label=source)
            ax.bar_label(bars, [f"{c:,}" if c else "" for c in counts], label_type="center", fontsize=8)
            left = [a + b for a, b in zip(left, counts, strict=True)]
        ax.set_xlabel("documents removed")
        ax.set_title("Contaminated documents per evaluation set")
        if sources:
            ax.legend(fontsize=8, frameon=False)
        else:
            ax.text(0.5, 0.5, "no document matched", ha="center", transform=ax.transAxes)
        return _svg(fig)


def quality_score_chart(scores: dict, thresholds: dict) -> str:
    """Per source, documents per score bucket of each quality model, with its threshold (dashed)."""
    names = list(scores)
    with plt.rc_context(STYLE):
        fig, axes = _small_multiples(len(names), 3, (3.1, 2.0))
        for ax, name in zip(axes.flat, names, strict=False):
            models = list(scores[name])
            width = 0.05 / max(1, len(models))
            for i, model in enumerate(models):
                colour = STAGE_COLOURS[i % len(STAGE_COLOURS)]
                histogram = scores[name][model]
                x = [float(b) + width * (i + 0.5) for b in histogram]
                ax.bar(x, list(histogram.values()), width=width, color=colour, label=model)
                if thresholds.get(model) is not None:
                    ax.axvline(thresholds[model], color=colour, linestyle="--", linewidth=1)
            ax.set_xlim(0, 1)
            ax.set_title(name, fontsize=9)
            ax.tick_params(labelsize=7)
        axes.flat[0].legend(frameon=False, fontsize=7)
        fig.suptitle("Quality model scores per source (documents per bucket of 0.05)", fontsize=10,
                     fontweight="bold")
        fig.tight_layout()
        return _svg(fig)

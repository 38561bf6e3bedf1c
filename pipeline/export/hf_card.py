"""`llamapipe export hf SHARDS [DIR]`: a Hugging Face dataset card, `README.md`, for the shards as they are.

The shards are plain Parquet, so `datasets.load_dataset("parquet", data_files=...)` reads them without
conversion (tests/pipeline/export/test_export.py); the card's YAML header names them in `configs`
(one `default` config of every source, and one config per source), which is what the Hub's viewer and
`load_dataset(<folder or repo>, "<source>")` read. Below it: how to load them, the mixture table of the
manifest (stored, sampled and target shares, epochs), the run's recipe (the settings of `OUT/run.json`,
inputs and paths left out) and the ledger's totals (`OUT/ledger.json`: documents in, kept, dropped and the
main reasons, per source). The card goes next to the shards by default (upload the folder as a dataset
repository); with DIR, its `data_files` paths are written relative to DIR."""

from __future__ import annotations

import yaml

from llamapipe.pipeline.export.shards_in import Shards
from llamapipe.tokenizer.format import storage

CARD_NAME = "README.md"
RECIPE_SECTIONS = ("mixture", "extract", "langid", "filters", "dedup", "line_dedup", "perplexity",
                   "classifier", "tokenizer", "shards")
TOP_REASONS = 3


def _run_file(shards: Shards, name: str) -> dict | None:
    """OUT/<name> of the run that wrote the shards (OUT/shards/..), when it is there."""
    path = storage.join(storage.dirname(shards.folder), name)
    return storage.read_json(path) if storage.is_file(path) else None


def _data_path(shards: Shards, directory: str, source: str) -> str:
    folder = storage.join(shards.folder, source)
    relative = storage.relative(folder, directory) if storage.absolute(directory) != shards.folder else source
    return f"{relative}/*.parquet"


def header(shards: Shards, directory: str) -> dict:
    sources = shards.sources()
    every = [_data_path(shards, directory, s) for s in sources]
    configs = [{"config_name": "default", "default": True, "data_files": [{"split": "train", "path": every}]}]
    configs += [{"config_name": s, "data_files": [{"split": "train", "path": path}]}
                for s, path in zip(sources, every, strict=True)]
    return {"pretty_name": "llamapipe token shards", "tags": ["llamapipe", "pretraining", "tokenized"],
            "task_categories": ["text-generation"], "configs": configs}


def mixture_table(shards: Shards) -> list[str]:
    manifest = shards.manifest
    total = manifest.get("total_tokens") or 1
    rows = ["| source | shards | documents | tokens | stored share | sampled share | target share "
            "| epochs |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, e in manifest["sources"].items():
        rows.append(f"| {name} | {len(e.get('shards', []))} | {e.get('documents', 0):,} "
                    f"| {e.get('tokens', 0):,} "
                    f"| {e.get('tokens', 0) / total:.3f} | {e.get('share', 0):.3f} "
                    f"| {e.get('configured_share', 0) or 0:.3f} | {e.get('epochs', 0) or 0:.2f} |")
    budget = manifest.get("token_budget")
    rows.append(f"\nTotal: {manifest.get('total_tokens', 0):,} tokens stored; mixture mode "
                f"`{manifest.get('mixture_mode')}`"
                + (f", trained-token budget {budget:,}." if budget else "."))
    return rows


def ledger_table(ledger: dict) -> list[str]:
    rows = ["| source | documents in | kept | dropped | main drop reasons |", "|---|---:|---:|---:|---|"]
    for name, e in ledger.get("sources", {}).items():
        reasons = [(count, f"{stage}/{reason}")
                   for stage, by_reason in e.get("dropped_by_stage", {}).items()
                   for reason, count in by_reason.items()]
        top = ", ".join(f"{label} {count:,}" for count, label in sorted(reasons, reverse=True)[:TOP_REASONS])
        rows.append(f"| {name} | {e.get('in', 0):,} | {e.get('kept', 0):,} | {e.get('dropped', 0):,} "
                    f"| {top} |")
    totals = ledger.get("totals", {})
    rows.append(f"| **total** | {totals.get('in', 0):,} | {totals.get('kept', 0):,} "
                f"| {totals.get('dropped', 0):,} | |")
    return rows


def card(shards: Shards, directory: str) -> str:
    tokenizer = shards.tokenizer
    first = shards.sources()[0]
    lines = ["---", yaml.safe_dump(header(shards, directory), sort_keys=False).rstrip(), "---", "",
             "# llamapipe token shards", "",
             "Documents cleaned, deduplicated and tokenized by llamapipe following the "
             "data recipe of the LLaMA paper (Touvron et al. 2023, arXiv 2302.13971), one Parquet file set "
             "per source. A row is one document: `doc_id`, `source`, `tokens` (the token ids, BOS "
             f"{tokenizer.get('bos_id')} first, EOS {tokenizer.get('eos_id')} last only when the run added "
             f"it), `num_tokens`. SentencePiece tokenizer: `{tokenizer['path']}` (vocabulary "
             f"{tokenizer['vocab_size']:,}, sha256 `{tokenizer.get('sha256', '')[:16]}...`).", "",
             "## Load", "", "```python", "from datasets import load_dataset", "",
             f'every_source = load_dataset("parquet", data_files="{_data_path(shards, directory, "*")}", '
             'split="train")',
             f'{first} = load_dataset("parquet", data_files="{_data_path(shards, directory, first)}", '
             'split="train")',
             "# or, on this folder (or its Hub repository), the configs above:",
             f'# load_dataset(FOLDER, "{first}")',
             "```", "",
             "The sampled share is what a trainer should draw from each source (the manifest's `share`, "
             "epochs included); `llamapipe export megatron` turns it into Megatron's `--data-path` blend.",
             "",
             "## Mixture", "", *mixture_table(shards), ""]
    run = _run_file(shards, "run.json")
    if run and run.get("config"):
        recipe = {key: run["config"][key] for key in RECIPE_SECTIONS if key in run["config"]}
        lines += ["## Recipe", "", "The settings of the run that wrote these shards (`run.json`; inputs "
                  "and paths left out):", "", "```yaml", yaml.safe_dump(recipe, sort_keys=False).rstrip(),
                  "```", ""]
    ledger = _run_file(shards, "ledger.json")
    if ledger:
        lines += ["## Ledger", "", "Every input document is kept or dropped with a counted reason "
                  "(`ledger.json`):", "", *ledger_table(ledger), ""]
    return "\n".join(lines)


def export_hf(shards: Shards, directory: str | None = None) -> dict:
    directory = directory or shards.folder
    text = card(shards, directory)
    path = storage.join(directory, CARD_NAME)
    storage.write_text(path, text)
    return {"card": path, "configs": ["default", *shards.sources()]}


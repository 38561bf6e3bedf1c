"""Run an ablation: each variant's pipeline run, the same training on each, one evaluation for all.

Layout of DIR (`--out`):
    variants/<name>/            the variant's pipeline OUT (`llamapipe run`), its shards and manifest
    variants/<name>/ablate-seed<S>/   its training run for seed S (metrics.jsonl, checkpoint.pt)
    eval_set.json               the evaluation set: where it came from, documents, tokens and ids per source
    ablation.json, report.html  the results (`report.py`)

Shared work. `full` runs first. Every other variant uses the full run's tokenizer (`run(tokenizer_from=)`,
the same file: one vocabulary, so losses per token compare). A variant that differs from `full` only
downstream of the per-file work (dedup, line dedup, decontamination, perplexity, classifier, PII) starts
from the full run's per-file records (`OUT/_work/files`, hard-linked: records are never rewritten in
place, a redone split gets a new attempt name), so its run reads and extracts nothing again: it only
runs the corpus-wide stages and tokenization. `llamapipe run` accepts those records because the variant's
folder is seeded with a run record of the variant's own config (`seed_per_file_work`); the run then counts
them in `run.json` `files.reused` (what the tests check). A variant switching off a per-file stage
(`langid`, `quality`, `quality_models`, and `raw`) does its own per-file work: those records hold no
document that stage dropped, and the per-file work is one worker call per split (`file_work.py`), so its
extraction cannot be reused on its own without caching extracted text, which it does not.
Rerunning the same command resumes: finished pipeline runs and training runs are kept.

Fairness. Every variant trains the model preset, optimizer, schedule, seq_len and batch of the config's
`train` section for the same number of optimizer steps (`--tokens` / tokens per step, rounded up), so the
same number of tokens; the mixture shares are each variant's own manifest's; seeds 0..N-1 for all.

Evaluation. One set for all variants: the documents of trusted sources (default Wikipedia, books, arXiv)
of the full run that `model.data.is_held_out` puts in the held-out split at `train.holdout_fraction`
(the id hash; 1% when the config sets 0). Every variant trains with that same fraction, so a document
with one of those ids is never in any variant's training, whatever text the variant made of it (the id
of a document is its source's, not the pipeline's: the same in every variant). Or `--eval FILE` (jsonl
`text` field, else txt lines), tokenized with the shared tokenizer. Loss = summed cross-entropy over
every predicted token / tokens, per source and over all (token-weighted), with the final weights.
At most `EVAL_TOKENS_PER_SOURCE` tokens per source (first documents by id hash): a fixed, cheap set.
Not excluded: a copy of an evaluation document under another id in a variant without dedup (`raw`,
`no_dedup`); that variant may look better than it is on such documents.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import replace

from llamapipe.pipeline.ablate.report import summarise, write_outputs
from llamapipe.pipeline.ablate.variants import FULL, Variant, select_variants, variant_config
from llamapipe.pipeline.config import Config, ConfigError, config_as_dict
from llamapipe.pipeline.output.layout import OutputLayout
from llamapipe.pipeline.run import run
from llamapipe.tokenizer.format import storage

DEFAULT_EVAL_SOURCES = ("wikipedia", "books", "arxiv")
# 100 steps of the demo's 16 x 128 tokens. Measured on the shared 2-core machine (load 4-5 from other
# jobs): the tiny preset trained at 2-2.7k tokens/s, ~100 s a run, so the demo's 8 variants x 2 seeds
# trained in ~27 minutes after ~9 minutes of pipeline runs (36 in all, not the 15 aimed at); at 100 steps
# full beat raw by 0.27 nats with a seed spread of 0.05. Real ablations use billions (README "Ablations").
DEFAULT_TOKENS = 204_800
DEFAULT_SEEDS = 2
EVAL_TOKENS_PER_SOURCE = 16_384  # 128 sequences of 128 tokens per source: a fixed, cheap evaluation


def run_ablation(config: Config, out: str, variant_names: list[str] | None = None, seeds: int = DEFAULT_SEEDS,
                 tokens: int = DEFAULT_TOKENS, eval_file: str | None = None,
                 eval_sources: tuple[str, ...] = DEFAULT_EVAL_SOURCES, runner: str | None = None,
                 log: Callable[[str], None] = print) -> dict:
    """The whole ablation; returns the ablation.json dict (also written, with report.html, to `out`)."""
    if seeds < 2:
        raise ConfigError(f"--seeds: at least 2 (the spread over seeds is what a difference is read "
                          f"against), got {seeds}")
    if tokens <= 0:
        raise ConfigError(f"--tokens: must be positive, got {tokens}")
    if eval_file is not None and not storage.is_file(eval_file):
        raise ConfigError(f"--eval: no file at {eval_file!r}")
    variants = select_variants(config, variant_names)
    out = storage.absolute(out)
    storage.makedirs(out)
    fraction = config.train.holdout_fraction or 0.01
    runs: dict[str, dict] = {}
    full_out = variant_out(out, FULL)
    for variant in sorted(variants, key=lambda v: v.name != FULL):  # `full` first: the others use its work
        runs[variant.name] = run_variant(config, variant, out, full_out, runner, log)

    evaluation = (file_eval_set(eval_file, runs[FULL]["manifest"], full_out) if eval_file
                  else heldout_eval_set(runs[FULL]["manifest_path"], eval_sources, fraction))
    if not evaluation["sources"]:
        raise ConfigError(f"--eval: the full run has no held-out document (holdout fraction {fraction}) in "
                          f"{', '.join(eval_sources)}; give an evaluation file with --eval FILE")
    storage.write_json(storage.join(out, "eval_set.json"),
                       {k: v for k, v in evaluation.items() if k != "tokens"})

    train_cfg = replace(config.train, holdout_fraction=fraction, eval_every=0, checkpoint_every=0)
    tokens_per_step = train_cfg.batch_size * train_cfg.seq_len * train_cfg.accumulation_steps(1)
    steps = max(1, math.ceil(tokens / tokens_per_step))
    train_cfg = replace(train_cfg, steps=steps, log_every=max(1, steps // 25),
                        warmup_steps=min(train_cfg.warmup_steps, steps // 10))
    results = []
    for variant in variants:
        result = {"name": variant.name, "stages_off": list(variant.stages_off),
                  "corpus": runs[variant.name]["corpus"], "files": runs[variant.name]["files"],
                  "tokenizer_sha256": runs[variant.name]["manifest"]["tokenizer"].get("sha256"), "seeds": []}
        for seed in range(seeds):
            result["seeds"].append(train_and_evaluate(runs[variant.name]["manifest_path"],
                                                      storage.join(variant_out(out, variant.name),
                                                                   f"ablate-seed{seed}"),
                                                      replace(train_cfg, seed=seed), evaluation, log))
        results.append(result)
    ablation = {
        "train": {"model": train_cfg.model, "seq_len": train_cfg.seq_len, "batch_size": train_cfg.batch_size,
                  "steps": steps, "tokens_per_step": tokens_per_step, "lr": train_cfg.lr,
                  "warmup_steps": train_cfg.warmup_steps, "holdout_fraction": fraction,
                  "seeds": list(range(seeds))},
        "eval": {k: v for k, v in evaluation.items() if k not in ("tokens", "ids")},
        "variants": results,
    }
    ablation["comparisons"] = summarise(ablation)
    write_outputs(ablation, out)
    return ablation


def variant_out(out: str, name: str) -> str:
    return storage.join(out, "variants", name)


def run_variant(config: Config, variant: Variant, out: str, full_out: str, runner: str | None, log) -> dict:
    """The variant's pipeline run (resumed when finished before), with the full run's tokenizer and, when
    its per-file work is the full run's, the full run's per-file records."""
    target = variant_out(out, variant.name)
    derived = variant_config(config, variant, target)
    if variant.name != FULL and not variant.per_file_changed:
        seed_per_file_work(derived, full_out)
    off = f" ({', '.join(variant.stages_off)} off)" if variant.stages_off else ""
    log(f"== variant {variant.name}{off}")
    run(derived, runner=runner, log=lambda line: log(f"   {line}"),
        tokenizer_from=None if variant.name == FULL else full_out)
    paths = OutputLayout(target)
    record = storage.read_json(paths.run)
    manifest = storage.read_json(paths.manifest)
    documents = sum(entry["documents"] for entry in manifest["sources"].values())
    return {"manifest": manifest, "manifest_path": paths.manifest, "files": record.get("files", {}),
            "corpus": {"documents": documents, "tokens": manifest["total_tokens"]}}


def seed_per_file_work(config: Config, full_out: str) -> None:
    """Hard-link the full run's per-file records into the variant's folder (a copy where links cannot
    be made), and write the variant's run record so that `run` takes the folder for a run of this config.
    Only into a folder that holds nothing yet, or a run of this same config (a rerun: the records the
    variant has are kept, missing ones linked)."""
    paths, source = OutputLayout(config.output), OutputLayout(full_out)
    if storage.is_remote(config.output) or storage.is_remote(full_out):
        return  # object stores have no links; the variant does its own per-file work
    if not os.path.exists(paths.run):
        os.makedirs(config.output, exist_ok=True)
        storage.write_json(paths.run, {"config": config_as_dict(config), "stages": {},
                                       "seeded_from": full_out})
    for folder, _, names in os.walk(source.files):
        target = os.path.join(paths.files, os.path.relpath(folder, source.files))
        os.makedirs(target, exist_ok=True)
        for name in names:
            destination = os.path.join(target, name)
            if os.path.exists(destination):
                continue
            try:
                os.link(os.path.join(folder, name), destination)
            except OSError:
                shutil.copy2(os.path.join(folder, name), destination)


def _tokens_by_source_from_shards(manifest_path: str, sources: tuple[str, ...],
                                  keep: Callable[[str], bool]) -> dict[str, list[tuple[str, list[int]]]]:
    import pyarrow.parquet as pq

    manifest = storage.read_json(manifest_path)
    root = storage.dirname(manifest_path)
    found: dict[str, list[tuple[str, list[int]]]] = {}
    for name in sources:
        entry = manifest["sources"].get(name)
        if not entry:
            continue
        docs = []
        for shard in entry["shards"]:
            with storage.open_read(storage.resolve(root, shard["path"])) as f:
                table = pq.read_table(f, columns=["doc_id", "tokens"])
            for doc_id, tokens in zip(table.column("doc_id").to_pylist(), table.column("tokens").to_pylist(),
                                      strict=True):
                if keep(doc_id):
                    docs.append((doc_id, tokens))
        if docs:
            found[name] = docs
    return found


def heldout_eval_set(manifest_path: str, sources: tuple[str, ...], fraction: float) -> dict:
    """The full run's held-out documents of `sources`, in id-hash order, up to EVAL_TOKENS_PER_SOURCE
    tokens per source (the last document cut)."""
    import xxhash

    from llamapipe.model.data import is_held_out

    held = _tokens_by_source_from_shards(manifest_path, sources, lambda i: is_held_out(i, fraction))
    result = {"kind": "heldout", "fraction": fraction, "from": manifest_path, "sources": {}, "tokens": {},
              "ids": {}}
    for name, docs in held.items():
        docs.sort(key=lambda d: xxhash.xxh64_intdigest(d[0].encode("utf-8")))
        tokens, ids = [], []
        for doc_id, doc_tokens in docs:
            if len(tokens) >= EVAL_TOKENS_PER_SOURCE:
                break
            tokens += doc_tokens
            ids.append(doc_id)
        result["tokens"][name] = tokens[:EVAL_TOKENS_PER_SOURCE]
        result["ids"][name] = ids
        result["sources"][name] = {"documents": len(ids), "tokens": len(result["tokens"][name]), "ids": ids}
    return result


def file_eval_set(path: str, manifest: dict, full_out: str) -> dict:
    """`--eval FILE`: a .jsonl (each line's `text`; its `source`, if any, names the group) or any other
    file read as text lines, tokenized with the shared tokenizer (BOS first, as the shards)."""
    import sentencepiece as spm

    model = OutputLayout(full_out).tokenizer
    with storage.local_copy(model) as local:
        processor = spm.SentencePieceProcessor(model_file=local)
    bos = manifest["tokenizer"].get("bos_id", processor.bos_id())
    texts: dict[str, list[str]] = {}
    for number, line in enumerate(storage.read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        if path.endswith(".jsonl"):
            try:
                row = json.loads(line)
            except ValueError:
                raise ConfigError(f"--eval: {path}:{number} is not a JSON line") from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise ConfigError(f"--eval: {path}:{number} has no string `text` field")
            texts.setdefault(str(row.get("source") or "eval"), []).append(row["text"])
        else:
            texts.setdefault("eval", []).append(line)
    result = {"kind": "file", "from": path, "sources": {}, "tokens": {}}
    for name, group in texts.items():
        tokens = [t for text in group for t in [bos, *processor.encode(text)]]
        result["tokens"][name] = tokens[:EVAL_TOKENS_PER_SOURCE]
        result["sources"][name] = {"documents": len(group), "tokens": len(result["tokens"][name])}
    return result


def train_and_evaluate(manifest_path: str, train_dir: str, cfg, evaluation: dict, log) -> dict:
    """`model.train.train` (resumed when its checkpoint is finished already), then the loss per token of
    the final weights on the evaluation set."""
    from llamapipe.model.train import train

    summary = train(manifest_path, train_dir, cfg, resume=True, progress=False)
    losses = evaluate(train_dir, evaluation, cfg.seq_len, cfg.batch_size)
    metrics = [json.loads(line) for line in storage.read_text(storage.join(train_dir, "metrics.jsonl"))
               .splitlines() if line.strip()]
    log(f"   trained seed {cfg.seed}: {summary['tokens']:,} tokens, held-out loss {losses['all']:.4f}")
    return {"seed": cfg.seed, "eval_loss": losses["all"], "train_tokens": summary["tokens"],
            "eval_loss_by_source": {k: v for k, v in losses.items() if k != "all"},
            "curve": [[m["step"], round(m["loss"], 5)] for m in metrics]}


def evaluate(train_dir: str, evaluation: dict, seq_len: int, batch_size: int) -> dict[str, float]:
    """Summed cross-entropy / predicted tokens, per source (windows of seq_len + 1 tokens over the
    source's evaluation tokens, stride seq_len, the last one shorter) and over all sources."""
    import torch
    import torch.nn.functional as F

    from llamapipe.model.checkpoints import CHECKPOINT_NAME
    from llamapipe.model.llama import Transformer
    from llamapipe.model.presets import ModelArgs

    with storage.local_copy(storage.join(train_dir, CHECKPOINT_NAME)) as path:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model = Transformer(ModelArgs(**checkpoint["model_args"]))
    model.load_state_dict(checkpoint["model"])
    model.eval()
    losses, total_loss, total_tokens = {}, 0.0, 0
    with torch.no_grad():
        for name, tokens in sorted(evaluation["tokens"].items()):
            windows = [tokens[i:i + seq_len + 1] for i in range(0, max(1, len(tokens) - 1), seq_len)]
            windows = [w for w in windows if len(w) > 1]
            loss_sum, count = 0.0, 0
            full = [w for w in windows if len(w) == seq_len + 1]
            batches = [full[i:i + batch_size] for i in range(0, len(full), batch_size)]
            batches += [[w] for w in windows if len(w) != seq_len + 1]  # the last, shorter window
            for batch in batches:
                t = torch.tensor(batch, dtype=torch.long)
                logits, _ = model(t[:, :-1])
                loss_sum += F.cross_entropy(logits.reshape(-1, logits.size(-1)), t[:, 1:].reshape(-1),
                                            reduction="sum").item()
                count += t[:, 1:].numel()
            losses[name] = loss_sum / count
            total_loss, total_tokens = total_loss + loss_sum, total_tokens + count
    losses["all"] = total_loss / total_tokens
    return losses

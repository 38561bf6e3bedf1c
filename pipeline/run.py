"""`llamapipe run`: clean (per-file work, then corpus-wide stages) -> tokenizer -> tokenize -> manifest,
each stage a step a user can see.

The output folder (OUT = config.output) and its paths: `output/layout.py`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import textwrap
import time
from contextlib import contextmanager

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from llamapipe.pipeline.config import Config, ConfigError, Whole, config_as_dict, config_defaults
from llamapipe.pipeline.file_work import Records, build_file_work, list_inputs
from llamapipe.pipeline.output.layout import (
    CLEAN_STEP,
    RUN_RECORD,
    TOKENIZE_STEP,
    TOKENIZER_STEP,
    OutputLayout,
)
from llamapipe.pipeline.output.ledger import format_funnel, merge_ledger, write_ledger
from llamapipe.pipeline.output.manifest import build_manifest, write_manifest
from llamapipe.pipeline.output.token_shards import chars_per_token
from llamapipe.pipeline.plumbing.progress import LiveProgress
from llamapipe.pipeline.plumbing.runners import normalize_flags, runner_class, sharing_a_local_cluster
from llamapipe.pipeline.recipe import build_cleaning, build_tokenization
from llamapipe.pipeline.report.build import refresh_report
from llamapipe.pipeline.resume import CompletedStages, complete_shard_sources, remove_path
from llamapipe.pipeline.run_lock import RunLock
from llamapipe.pipeline.stages.decontamination import ensure_index, index_summary
from llamapipe.pipeline.stages.dedup.statistics import format_dedup_summary, read_dedup_stats
from llamapipe.pipeline.stages.quality import check_rules
from llamapipe.pipeline.stages.quality_models import check_quality_models
from llamapipe.pipeline.stages.registry import PER_FILE_PROGRESS, QUALITY_MODELS
from llamapipe.tokenizer.format import storage
from llamapipe.tokenizer.hf import write_hf_tokenizer
from llamapipe.tokenizer.train import sample_sentences, train_tokenizer, write_sample


class NothingKeptError(Exception):
    """Cleaning dropped every document: there is no text to train the tokenizer on or to tokenize.
    Not a bug to show a traceback for: the inputs or the filters are not what the user meant. The run
    stops after writing OUT/ledger.json and OUT/report.html, and the message says where the drops went."""


def beam_options(config: Config, runner: str | None, extra_args: list[str]) -> PipelineOptions:
    """Pipeline options from the config's `runner` section, a `--runner` override and passthrough flags."""
    flags = [f"--runner={runner_class(runner or config.runner.runner)}"]
    for key, value in config.runner.options.items():
        if isinstance(value, bool):
            value = str(value).lower()
        flags.append(f"--{key}={value}")
    flags = normalize_flags(flags + list(extra_args))  # --dask-address, --dask_address
    if not any(f.startswith("--default_sdk_harness_log_level") for f in flags):
        # Local worker processes log every bundle at INFO; the funnel is what users want to read.
        flags.append("--default_sdk_harness_log_level=WARNING")
    return PipelineOptions(flags)


def first_difference(old, new, key: str = "") -> str | None:
    """The dotted key of the first value that differs between two config dicts, or None."""
    if isinstance(old, dict) and isinstance(new, dict):
        for name in sorted(set(old) | set(new)):
            found = first_difference(old.get(name), new.get(name), f"{key}.{name}" if key else name)
            if found:
                return found
        return None
    return None if old == new else (key or "config")


def with_defaults(old, defaults):
    """`old` (a config dict recorded by an earlier llamapipe) with every field of a config section it lacks
    taken from `defaults` (`config_defaults`): a section or option added since (`decontamination`, `pii`,
    `quality_models` in December 2026) is what that run did when it is at its default (off), so a run
    upgraded across it resumes instead of being refused as a different config. Only the fields of a
    section are filled: a mapping of the user's own keys (`filters.rules: {c4: [...]}`) is compared as
    written, not completed with the default's other keys."""
    if isinstance(defaults, Whole) or not (isinstance(old, dict) and isinstance(defaults, dict)):
        return old
    filled = {k: _plain(d) for k, d in defaults.items() if k not in old}
    return {**filled, **{k: with_defaults(v, defaults.get(k)) for k, v in old.items()}}


def _plain(defaults):
    if isinstance(defaults, Whole):
        return defaults.value
    return {k: _plain(v) for k, v in defaults.items()}


def input_keys(config: dict) -> dict:
    """The config without its input lists: what must match for a run to reuse another's per-file work."""
    sources = {name: {k: v for k, v in (options or {}).items() if k != "inputs"}
               for name, options in (config.get("sources") or {}).items()}
    return {**config, "sources": sources}


def prepare_output(out: str, config: dict | None = None, fresh: bool = True,
                   defaults: dict | None = None) -> CompletedStages:
    """An output folder is empty, or holds a previous run of the same config. A run of a different
    config is refused (naming the first key that differs): reusing its folder would silently destroy
    results the user may still want. The `runner` and `train` sections do not count: how a run is
    executed does not change what it produces.

    A config that differs only by its input files (`sources.<name>.inputs`, files added or removed) is
    an incremental run: every corpus-wide stage runs again, over the files now listed, and the per-file
    work recorded for a file still listed is reused (`file_work.py`).

    With `fresh` every stage runs again (its outputs replaced, the per-file records too); without it
    the stages a previous attempt finished are kept (see `resume.py`) and only the outputs of
    unfinished ones are deleted. Returns the record of the finished stages.

    `defaults`: the config's defaults (`config_defaults`); a field the recorded config lacks (a run of an
    earlier version) counts as its default."""
    if storage.is_file(out):
        raise ConfigError(f"output: {out!r} exists and is not a folder")
    entries = [e for e in storage.list_names(out) if not e.startswith(".")]
    inputs_changed = False
    if entries:
        if RUN_RECORD not in entries:
            raise ConfigError(f"output: {out!r} is not empty and does not hold a llamapipe run; "
                              "choose another folder")
        if config is not None:
            marker = OutputLayout(out).run
            try:
                previous = storage.read_json(marker).get("config")
            except (OSError, ValueError, AttributeError) as exc:
                raise ConfigError(f"output: {marker!r} is not a readable llamapipe run record ({exc}); "
                                  "choose another folder") from None
            ignored = {"runner": None, "train": None}  # how it runs and what trains on it later
            old, new = {**with_defaults(previous or {}, defaults), **ignored}, {**config, **ignored}
            differs = first_difference(input_keys(old), input_keys(new))
            if differs:
                raise ConfigError(f"output: {out!r} holds a run of a different config ({differs} differs); "
                                  "choose another folder or delete it")
            inputs_changed = first_difference(old, new) is not None
    storage.makedirs(out)
    completed = CompletedStages(out)
    if fresh or config is None:
        completed.forget()
    elif inputs_changed:
        completed.forget_stages()  # the corpus changed: every corpus-wide stage again
    completed.clear_unfinished()
    return completed


@contextmanager
def beam_logs_to(path: str, enabled: bool = True):
    """Send everything written to stderr (Beam's and its local worker processes' logs) to `path`.

    Local worker processes inherit file descriptor 2 and log at import time, before any option can
    quiet them; the console should show the funnel, not that. On failure the log's tail is shown.
    """
    if not enabled:
        yield
        return
    target, path = path, _local_log(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "ab") as log_file:
            os.dup2(log_file.fileno(), 2)
            try:
                yield
            except BaseException:
                sys.stderr.flush()
                os.dup2(saved, 2)
                with open(path, encoding="utf-8", errors="replace") as f:
                    tail = f.readlines()[-30:]
                if tail:
                    print(f"--- last lines of {path} ---\n{''.join(tail)}", file=sys.stderr)
                raise
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        if path != target:
            storage.upload(path, target)


def _local_log(path: str) -> str:
    """Where the log is written while a pipeline runs: `path` itself, or for an object store a local
    file (one per output folder, so both pipelines of a run append to it) uploaded after each."""
    if not storage.is_remote(path):
        return path
    digest = hashlib.sha1(path.encode()).hexdigest()[:12]
    return os.path.join(tempfile.gettempdir(), f"llamapipe-beam-{digest}.log")


@sharing_a_local_cluster  # `--runner dask` without an address: one LocalCluster for both pipelines
def run(config: Config, runner: str | None = None, extra_args: list[str] | None = None,
        log=print, quiet_beam: bool = True, fresh: bool = False, tokenizer_from: str | None = None) -> dict:
    """The whole data job. A rerun of the same config into the same folder resumes: stages a previous
    attempt finished are skipped (`resume.py`); `fresh=True` runs everything again. One run per
    output folder at a time (`run_lock.py`): a second one is refused before it touches anything.

    `tokenizer_from`: the OUT of a finished run whose tokenizer this run uses instead of training its
    own (`adopt_tokenizer`; `llamapipe ablate` tokenizes every variant with the full run's)."""
    options = beam_options(config, runner, extra_args or [])
    storage.use_options(options)  # the driver's own reads and writes, with the workers' settings
    check_rules(config.filters)  # the user's rules import and follow the protocol (ConfigError, exit 2)
    check_quality_models(config.quality_models)  # each (small) model loads and has its label
    with RunLock(config.output, "run", log):
        return _run(config, options, log, quiet_beam, fresh, tokenizer_from)


def _run(config: Config, options: PipelineOptions, log, quiet_beam: bool, fresh: bool,
         tokenizer_from: str | None = None) -> dict:
    paths = OutputLayout(config.output)
    record = {"config": config_as_dict(config), "stages": {}, "started_at": round(time.time(), 3)}
    completed = prepare_output(config.output, json.loads(json.dumps(record["config"])), fresh=fresh,
                               defaults=config_defaults(config))
    if completed.names():
        record["resumed"] = completed.names()
        log(f"resuming {config.output}: {', '.join(completed.names())} finished in an earlier attempt")
    storage.write_json(paths.run, record)
    beam_log = paths.beam_log

    started = time.time()
    if completed.done(CLEAN_STEP):
        log(f"[1/4] cleaning: done in an earlier attempt, kept ({paths.documents})")
        listed = len(list_inputs(config))
        record["files"] = {"total": listed, "reused": listed, "processed": 0, "started_at": round(started, 3)}
        ledger = storage.read_json(paths.ledger)
        classifier = read_classifier_status(paths.classifier)
        if classifier:
            record["classifier"] = classifier
    else:
        ledger = run_cleaning(config, options, paths, record, log, quiet_beam)
        completed.mark(CLEAN_STEP)
        record["stages"][CLEAN_STEP] = round(time.time() - started, 2)
    log(format_funnel(ledger))
    log(format_dedup_summary(ledger["dedup"]))
    if "classifier" in record:
        log(format_classifier(record["classifier"]))

    started = time.time()
    chars_kept = {s: e["chars_kept"] for s, e in ledger["sources"].items()}
    if not any(chars > 0 for chars in chars_kept.values()):
        # The tokenizer would fail on an empty sample; stop here, with the run's record and report.
        record["stopped"] = "every document was dropped"
        record["finished_at"] = round(time.time(), 3)
        storage.write_json(paths.run, record)
        log(refresh_report(config.output))
        raise NothingKeptError(nothing_kept_message(config.enabled_sources(), ledger, paths))
    if completed.done(TOKENIZER_STEP):
        tokenizer = completed.info(TOKENIZER_STEP)
        log(f"[2/4] tokenizer: trained in an earlier attempt, kept ({paths.tokenizer})")
    elif tokenizer_from:
        log(f"[2/4] tokenizer: the one of {tokenizer_from}, copied ({paths.tokenizer})")
        tokenizer = adopt_tokenizer(tokenizer_from, paths)
        completed.mark(TOKENIZER_STEP, tokenizer)
        record["stages"][TOKENIZER_STEP] = round(time.time() - started, 2)
    else:
        log(f"[2/4] training the tokenizer (vocab {config.tokenizer.vocab_size}) on a share-weighted sample")
        tokenizer = train_run_tokenizer(config, paths, chars_kept)
        if tokenizer["vocab_size"] != tokenizer["requested_vocab_size"]:
            log(f"      the sample supports at most {tokenizer['vocab_size']} pieces; using that")
        completed.mark(TOKENIZER_STEP, tokenizer)
        record["stages"][TOKENIZER_STEP] = round(time.time() - started, 2)
    record["tokenizer"] = tokenizer

    started = time.time()
    done_sources = complete_shard_sources(paths.shards)
    pending = {s: c for s, c in chars_kept.items() if s not in done_sources}
    if done_sources:
        log(f"[3/4] tokenizing -> {paths.shards} ({', '.join(sorted(done_sources))}: shards complete "
            "from an earlier attempt, kept)")
    else:
        log(f"[3/4] tokenizing -> {paths.shards}")
    if any(c > 0 for c in pending.values()):
        totals = {TOKENIZE_STEP: sum(ledger["sources"][s]["kept"] for s in pending if s in ledger["sources"])}
        with beam_logs_to(beam_log, quiet_beam), LiveProgress(paths.work, options, totals) as progress, \
                beam.Pipeline(options=options) as p:
            build_tokenization(p, config, paths, tokenizer, pending, progress)
        remove_path(paths.token_runs)
    completed.mark(TOKENIZE_STEP)
    record["stages"][TOKENIZE_STEP] = round(time.time() - started, 2)

    started = time.time()
    manifest = build_manifest(paths.shards, paths.tokenizer, tokenizer["vocab_size"], config.mixture)
    write_manifest(manifest, paths.manifest)
    record["stages"]["manifest"] = round(time.time() - started, 2)
    log(f"[4/4] manifest -> {paths.manifest}")
    log(format_mixture(manifest))
    record["finished_at"] = round(time.time(), 3)
    storage.write_json(paths.run, record)
    log(refresh_report(config.output))
    return {"ledger": ledger, "manifest": manifest, "tokenizer": tokenizer, "paths": paths}


def run_cleaning(config: Config, options: PipelineOptions, paths: OutputLayout, record: dict, log=print,
                 quiet_beam: bool = True) -> dict:
    """Cleaning: the per-file work of the files not recorded yet, then the corpus-wide stages over the
    records of every listed file; returns the ledger (also written to OUT/ledger.json)."""
    started = time.time()
    if config.decontamination.enabled:  # before any work: a bad evaluation set file is a config error
        record["decontamination"] = index_summary(ensure_index(
            config.decontamination, paths.decontamination_index, log))
        storage.write_json(paths.run, record)
    records = clean_files(config, options, paths, record, log, quiet_beam)
    record["stages"]["clean_files"] = round(time.time() - started, 2)
    started = time.time()
    log(f"      corpus-wide stages over {len(records)} recorded splits -> {paths.documents}")
    with beam_logs_to(paths.beam_log, quiet_beam), LiveProgress(paths.work, options) as progress, \
            beam.Pipeline(options=options) as p:
        build_cleaning(p, config, paths, records, progress)
    # A copy of the corpus, no longer needed (an interrupted attempt's is removed with the stage's
    # other unfinished outputs, by `prepare_output`).
    remove_path(paths.spill)
    ledger = collect_cleaning(paths, record)
    record["stages"]["clean_corpus"] = round(time.time() - started, 2)
    return ledger


def clean_files(config: Config, options: PipelineOptions, paths: OutputLayout, record: dict, log,
                quiet_beam: bool) -> list[tuple[str, str]]:
    """The per-file work (`file_work.py`) of every listed file not recorded yet; returns the records
    of all listed files. `record["files"]` says what this run did and what it reused (`status`)."""
    files = list_inputs(config)
    records = Records(paths.files)
    pending = [f for f in files if not records.is_done(f)]
    record["files"] = {"total": len(files), "reused": len(files) - len(pending), "processed": None,
                       "bytes_reused": sum(f.size for f in files if records.is_done(f)),
                       "started_at": round(time.time(), 3)}
    storage.write_json(paths.run, record)
    reused = len(files) - len(pending)
    kept = f" ({reused} recorded in an earlier run, kept)" if reused else ""
    log(f"[1/4] cleaning {', '.join(config.enabled_sources())}: per-file work on {len(pending)} of "
        f"{len(files)} input files{kept}")
    if pending:
        with beam_logs_to(paths.beam_log, quiet_beam), LiveProgress(paths.work, options) as progress, \
                beam.Pipeline(options=options) as p:
            steps = [s for s in PER_FILE_PROGRESS if s != QUALITY_MODELS.name or config.quality_models]
            build_file_work(p, config, paths.files, pending, records, progress.declare(*steps))
        records = Records(paths.files)
    missing = [f.path for f in files if not records.is_done(f)]
    if missing:
        raise RuntimeError(f"the per-file work left {len(missing)} files unrecorded, e.g. {missing[0]}")
    record["files"]["processed"] = len(pending)
    storage.write_json(paths.run, record)
    return records.records(files)


def train_run_tokenizer(config: Config, paths: OutputLayout, chars_kept: dict[str, int]) -> dict:
    """SentencePiece on a share-weighted sample of the cleaned documents, plus the Hugging Face files.

    SentencePiece reads and writes local files only: with OUT on an object store, the sample and the
    model are made in a local temporary folder and uploaded (each file complete or absent; the stage
    counts once `completed.json` records it)."""
    shares = {s: m.share for s, m in config.mixture.sources.items()}
    probes: dict[str, list[str]] = {}
    with _local_twin(storage.dirname(paths.sample)) as work, \
            _local_twin(storage.dirname(paths.tokenizer)) as folder:
        sample = os.path.join(work, storage.basename(paths.sample))
        model = os.path.join(folder, storage.basename(paths.tokenizer))
        lines = write_sample(
            sample_sentences(paths.documents, shares, chars_kept, config.tokenizer.sample_chars,
                             config.tokenizer.seed, probes, files=storage),
            sample,
        )
        tokenizer = train_tokenizer(
            sample,
            model,
            vocab_size=config.tokenizer.vocab_size,
            input_sentence_size=config.tokenizer.input_sentence_size,
            max_sentence_length=config.tokenizer.max_sentence_length,
            num_threads=config.tokenizer.num_threads,
        )
        tokenizer["path"] = paths.tokenizer
        tokenizer["sample_lines"] = lines
        # Chooses each source's number of shards; measured on sampled documents in hash order, not on
        # whichever documents come first in its files (that varies with the workers: so would the shards).
        tokenizer["chars_per_token"] = chars_per_token(model, probes)
        # tokenizer.json + tokenizer_config.json beside tokenizer.model: LlamaTokenizerFast loads the folder
        tokenizer["hf_files"] = [os.path.basename(p) for p in write_hf_tokenizer(model)]
        # The model last: once it is there the other files are too
        for name in tokenizer["hf_files"] + [os.path.basename(model)]:
            _upload_twin(os.path.join(folder, name), storage.join(storage.dirname(paths.tokenizer), name))
        _upload_twin(sample, paths.sample)
    return tokenizer


def adopt_tokenizer(source_out: str, paths: OutputLayout) -> dict:
    """The tokenizer of the finished run in `source_out` (its model and Hugging Face files) copied into
    this run's tokenizer folder, with that run's summary (vocabulary, chars per token...): the same
    file, so the same sha256 in both manifests. A ConfigError when that run has no tokenizer yet."""
    completed = CompletedStages(source_out)
    if not completed.done(TOKENIZER_STEP):
        raise ConfigError(f"{source_out!r} holds no finished tokenizer to reuse")
    info = dict(completed.info(TOKENIZER_STEP))
    folder, target = storage.dirname(info["path"]), storage.dirname(paths.tokenizer)
    storage.makedirs(target)
    for name in [*info.get("hf_files", []), storage.basename(info["path"])]:  # the model last, as trained
        storage.write_bytes(storage.join(target, name), storage.read_bytes(storage.join(folder, name)))
    info["adopted_from"] = info.get("adopted_from") or info["path"]
    info["path"] = paths.tokenizer
    return info


@contextmanager
def _local_twin(folder: str):
    """`folder` itself when local; else a local temporary folder standing in for it (removed after)."""
    if not storage.is_remote(folder):
        os.makedirs(folder, exist_ok=True)
        yield folder
        return
    local = tempfile.mkdtemp(prefix="llamapipe-")
    try:
        yield local
    finally:
        shutil.rmtree(local, ignore_errors=True)


def _upload_twin(local: str, target: str) -> None:
    if storage.is_remote(target):
        storage.upload(local, target)


def collect_cleaning(paths: OutputLayout, record: dict) -> dict:
    """After the cleaning pipeline: OUT/ledger.json from the counts, the classifier's status into the
    run record, and a stage that could not run (the classifier without cited pages) into both."""
    ledger = merge_ledger(paths.ledger_parts + "*")
    ledger["dedup"] = read_dedup_stats(paths.dedup_stats)
    classifier = read_classifier_status(paths.classifier)
    if classifier:
        record["classifier"] = classifier
        if classifier["status"] == "skipped":
            ledger["skipped_stages"] = {"classifier": classifier["reason"]}
    write_ledger(ledger, paths.ledger)
    return ledger


def read_classifier_status(folder: str) -> dict | None:
    """OUT/classifier/metrics.json, written by the classifier stage (None when it did not run)."""
    path = storage.join(folder, "metrics.json")
    if not storage.is_file(path):
        return None
    return storage.read_json(path)


def format_classifier(status: dict) -> str:
    if status["status"] == "skipped":
        return f"reference classifier skipped: {status['reason']}"
    line = f"reference classifier {status['status']} ({status['model']}); cited pages found: " \
           f"{status['cited_pages_found']}"
    evaluation = status.get("heldout") or status.get("evaluation")
    if evaluation:
        line += (f"; held-out accuracy {evaluation['accuracy']} on {evaluation['examples']} pages, "
                 f"kept at P >= {status['threshold']}: {evaluation['positives_kept_at_threshold']} of cited, "
                 f"{evaluation['negatives_kept_at_threshold']} of random")
    return line


MAIN_REASONS = 3  # drop reasons named per source in the message of a run that kept nothing


def nothing_kept_message(sources: list[str], ledger: dict, paths: OutputLayout) -> str:
    """One paragraph for a run that kept no text: per source, the documents read and the main drop
    reasons (stage/reason and count, most frequent first), then where to look and what to change."""
    parts = []
    for source in sources:
        entry = ledger["sources"].get(source)
        if not entry or not entry["in"]:
            parts.append(f"{source}: no document read from its inputs")
            continue
        reasons = sorted(((count, f"{stage}/{reason}")
                          for stage, by_reason in entry["dropped_by_stage"].items()
                          for reason, count in by_reason.items()), key=lambda item: (-item[0], item[1]))
        named = ", ".join(f"{name} {count}" for count, name in reasons[:MAIN_REASONS])
        others = len(reasons) - MAIN_REASONS
        more = f", and {others} other reason{'s' if others > 1 else ''}" if others > 0 else ""
        parts.append(f"{source}: {entry['in']} read, {entry['dropped']} dropped ({named}{more})")
    message = (
        "every document was dropped, so there is no text to train the tokenizer on: "
        + "; ".join(parts) + f". The counts are in {paths.ledger} and {paths.report}; "
        f"`llamapipe inspect {paths.rejects_dir} --reason REASON` shows dropped texts. Check the sources' "
        "`inputs` (the right files, the right language) and the `langid` and `filters` settings."
    )
    return textwrap.fill(message, width=100, break_long_words=False, break_on_hyphens=False)


def format_mixture(manifest: dict) -> str:
    lines = [f"{'source':<14}{'documents':>10}{'tokens':>12}{'share':>8}{'target':>8}{'epochs':>8}"]
    for name, entry in manifest["sources"].items():
        lines.append(
            f"{name:<14}{entry['documents']:>10}{entry['tokens']:>12}{entry['share']:>8.3f}"
            f"{entry['configured_share']:>8.3f}{entry['epochs']:>8.2f}"
        )
    lines.append(f"{'total':<14}{'':>10}{manifest['total_tokens']:>12}   trained-token budget "
                 f"{manifest['token_budget']}")
    return "\n".join(lines)

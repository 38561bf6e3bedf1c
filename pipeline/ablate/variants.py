"""The pipeline variants of an ablation, in one table: a variant is the config with some stages off.

`full` is the config as given; `raw` switches off every stage the config can switch off (what is left:
the sources' readers, their own per-file cleaning, and HTML extraction); `no_<stage>` switches off one
stage. Only stages that are ON in the given config have a `no_<stage>` variant: switching off a stage
that is already off would train the same data twice under two names.

Each stage is switched off the way its config section says (pipeline/config.py), never by a flag of our
own, so a variant is an ordinary config a user could write and `llamapipe run` by hand.

`per_file`: the stage runs inside the per-file work (pipeline/file_work.py: read, extract, langid,
quality, quality_models). A variant switching one of those off cannot reuse the `full` run's per-file
records (they hold documents that stage already dropped) and does its own per-file work; every other
variant differs from `full` only downstream of it and reuses its records (runner.py)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

from llamapipe.pipeline.config import SOURCE_NAMES, Config, ConfigError


@dataclass(frozen=True)
class Switch:
    """One stage that a config can switch off: whether it is on, and how to switch it off."""

    stage: str  # the registry's stage name (pipeline/stages/registry.py)
    is_on: Callable[[Config], bool]
    switch_off: Callable[[Config], None]
    per_file: bool = False


# An empty list for every source, not an empty mapping: a run record's mapping is completed with the
# defaults' keys when a run is resumed (`run.with_defaults`), which would put the default rules and
# languages back into `{}` and refuse the variant's own folder as "a different config" on a rerun.
def _langid_off(c: Config) -> None:
    c.langid.allowed = {name: [] for name in SOURCE_NAMES}  # no policy: LanguageIdDoFn keeps every document


def _filters_off(c: Config) -> None:
    c.filters.rules = {name: [] for name in SOURCE_NAMES}


def _quality_models_off(c: Config) -> None:
    c.quality_models = []


def _decontamination_off(c: Config) -> None:
    c.decontamination.sets = {}


def _dedup_off(c: Config) -> None:
    c.dedup.exact = False
    c.dedup.near = False


def _line_dedup_off(c: Config) -> None:
    c.line_dedup.enabled = False


def _perplexity_off(c: Config) -> None:
    c.perplexity.model = None


def _classifier_off(c: Config) -> None:
    c.classifier.enabled = False


def _pii_off(c: Config) -> None:
    c.pii.enabled = False


# In the registry's order (pipeline/stages/registry.py STAGES). `read`, `clean` and `extract` cannot be
# switched off: without them there is no text.
SWITCHES: tuple[Switch, ...] = (
    Switch("langid", lambda c: any(c.langid.allowed.values()), _langid_off, per_file=True),
    Switch("quality", lambda c: any(c.filters.rules.values()), _filters_off, per_file=True),
    Switch("quality_models", lambda c: bool(c.quality_models), _quality_models_off, per_file=True),
    Switch("decontamination", lambda c: c.decontamination.enabled, _decontamination_off),
    Switch("dedup", lambda c: c.dedup.exact or c.dedup.near, _dedup_off),
    Switch("line_dedup", lambda c: c.line_dedup.enabled and bool(c.line_dedup.sources), _line_dedup_off),
    Switch("perplexity", lambda c: c.perplexity.model is not None, _perplexity_off),
    Switch("classifier", lambda c: c.classifier.enabled and bool(c.classifier.sources), _classifier_off),
    Switch("pii", lambda c: c.pii.enabled, _pii_off),
)
RAW, FULL = "raw", "full"


@dataclass(frozen=True)
class Variant:
    name: str
    stages_off: tuple[str, ...]

    @property
    def per_file_changed(self) -> bool:
        """Whether its per-file work differs from the full run's (then it cannot reuse those records)."""
        per_file = {s.stage for s in SWITCHES if s.per_file}
        return bool(per_file & set(self.stages_off))


def available_variants(config: Config) -> list[Variant]:
    """raw, full, then no_<stage> for every stage ON in `config`, in the stages' order."""
    on = [s.stage for s in SWITCHES if s.is_on(config)]
    return [Variant(RAW, tuple(on)), Variant(FULL, ()), *(Variant(f"no_{stage}", (stage,)) for stage in on)]


def select_variants(config: Config, names: list[str] | None) -> list[Variant]:
    """The variants named (all available ones when None), `full` always among them (it is the reference
    and the source of the shared tokenizer, per-file records and evaluation set). An unknown name, or a
    `no_<stage>` whose stage is already off, is a ConfigError naming it."""
    available = {v.name: v for v in available_variants(config)}
    if names is None:
        return list(available.values())
    chosen = []
    for name in names:
        if name not in available:
            raise ConfigError(f"--variants: unknown variant {name!r} for this config (available: "
                              f"{', '.join(available)})")
        if available[name] not in chosen:
            chosen.append(available[name])
    if FULL not in [v.name for v in chosen]:
        chosen.insert(0, available[FULL])
    return sorted(chosen, key=lambda v: list(available).index(v.name))


def variant_config(config: Config, variant: Variant, output: str) -> Config:
    """A copy of `config` with the variant's stages off, writing to `output`."""
    derived = copy.deepcopy(config)
    derived.output = output
    by_stage = {s.stage: s for s in SWITCHES}
    for stage in variant.stages_off:
        by_stage[stage].switch_off(derived)
    return derived

"""C4 `json.gz` lines (`c4-train.NNNNN-of-NNNNN.json.gz`)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from llamapipe.sources.demo.common import (
    C4_FILES,
    Plants,
    Ref,
    close_gzip,
    draw_seed,
    gzip_writer,
    scaled_count,
    scaled_files,
    warc_date,
)
from llamapipe.sources.demo.evals import PLANTED_PASSAGES, PLANTED_QUESTIONS, SET_NAME, EvalSet
from llamapipe.sources.demo.text import (
    EnglishWriter,
)
from llamapipe.sources.demo.web import C4Doc, c4_paragraphs, make_site, url_path

# --- C4 ----------------------------------------------------------------------------------------------

class C4Writer:
    """~530 C4 documents (scale 1) with exact and near duplicates and a few rule breakers."""

    def __init__(self, rng: random.Random, scale: float, plants: Plants,
                 evals_rng: random.Random | None = None):
        self.rng = rng
        self.files = scaled_files(C4_FILES, scale)
        self.docs: list[C4Doc] = []
        self.sites = [make_site(rng, "en", set()) for _ in range(scaled_count("c4_sites", scale, 3))]
        for _ in range(scaled_count("c4_normal", scale)):
            plants.add("normal_english", self._new().ref)
        for _ in range(scaled_count("c4_exact_pairs", scale)):
            original = self._new()
            plants.pair("exact_duplicates", original.ref, self._new("exact_copy", original).ref)
        for _ in range(scaled_count("c4_near_pairs", scale)):
            original = self._new(long=True)
            plants.pair("near_duplicates", original.ref, self._new("near_copy", original).ref)
        for kind, rule in (("lorem", "lorem_ipsum"), ("brace", "curly_bracket"),
                           ("few_sentences", "too_few_sentences")):
            for _ in range(scaled_count("c4_rule_breakers", scale)):
                plants.add("c4_rule_violations", self._new(kind).ref, rule=rule)
        self.cross_source = [self._new() for _ in range(scaled_count("cc_cross_source", scale))]
        # Documents copying text of the evaluation set, from their own random stream and written after the
        # others, at the end of the last file: the rest of the corpus is the same with or without them.
        self.evals = EvalSet(evals_rng) if evals_rng is not None else None
        self.contaminated: list[C4Doc] = []
        if self.evals is not None:
            planted = [e.passage for e in self.evals.examples[:max(1, round(PLANTED_PASSAGES * scale))]]
            planted += [e.question for e in self.evals.examples[-PLANTED_QUESTIONS:]]
            for text in planted:
                doc = self._new("contaminated", rng=evals_rng, keep=False)
                doc.planted = text
                self.contaminated.append(doc)
                plants.add("contaminated", doc.ref, set=SET_NAME, planted=text)

    def _new(self, kind: str = "normal", original: C4Doc | None = None, long: bool = False,
             rng: random.Random | None = None, keep: bool = True) -> C4Doc:
        rng = rng or self.rng
        site = rng.choice(self.sites)
        title = EnglishWriter(rng, topic=site.topic).title()
        url = f"https://{site.domain}{url_path(rng, title, site, datetime(2019, 4, 1))}"
        moment = datetime(2019, 4, 18, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 14 * 86400))
        doc = C4Doc(Ref("c4", url=url), draw_seed(rng), kind, original, long, warc_date(moment))
        if keep:
            self.docs.append(doc)
        return doc

    def write(self, out: Path) -> int:
        out.mkdir(parents=True, exist_ok=True)
        order = list(self.docs)
        self.rng.shuffle(order)
        per_file = -(-len(order) // self.files)
        for index in range(self.files):
            name = f"c4-train.{index:05d}-of-{self.files:05d}.json.gz"
            gz = gzip_writer(out / name)
            docs = order[index * per_file:(index + 1) * per_file]
            if index == self.files - 1:
                docs += self.contaminated
            for line, doc in enumerate(docs, start=1):
                doc.ref.id = f"c4:{name}:{line}"
                text = "\n".join(c4_paragraphs(doc))
                record = {"text": text, "timestamp": doc.timestamp, "url": doc.ref.url}
                gz.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
            close_gzip(gz)
        if self.evals is not None:
            self.evals.write(out.parent / "evals")  # the set the contaminated documents copy
        return len(order) + len(self.contaminated)

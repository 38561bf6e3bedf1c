"""HTML to text with trafilatura, for documents that still carry their page (`html` key).

Pages over `max_page_bytes` are dropped before parsing (huge pages are where extractors hang).
A per-page wall-clock limit that works inside Beam workers (trafilatura's own timeout relies on
signals, which only work in a main thread) is tracked in issue P3.
"""

from __future__ import annotations

import apache_beam as beam

from llamapipe.pipeline.config import ExtractConfig
from llamapipe.sources.base import DROPPED, dropped

STAGE = "extract"


class ExtractTextDoFn(beam.DoFn):
    def __init__(self, options: ExtractConfig):
        self._options = options

    def setup(self) -> None:
        import trafilatura  # imported on the worker; heavy

        self._extract = trafilatura.extract

    def process(self, doc: dict):
        html = doc.get("html")
        if html is None:
            yield doc
            return
        rest = {k: v for k, v in doc.items() if k != "html"}
        if len(html.encode("utf-8", errors="replace")) > self._options.max_page_bytes:
            yield dropped(doc["source"], STAGE, "page_too_large", doc["id"])
            return
        try:
            text = self._extract(
                html,
                url=doc.get("url") or None,
                favor_precision=self._options.favor_precision,
                favor_recall=self._options.favor_recall,
                include_tables=self._options.include_tables,
                include_comments=False,
                deduplicate=False,
            )
        except Exception as exc:  # noqa: BLE001 - one odd page must not stop the run; it is counted
            yield dropped(doc["source"], STAGE, "extraction_error", doc["id"], f"{type(exc).__name__}: {exc}")
            return
        if not text or not text.strip():
            yield dropped(doc["source"], STAGE, "no_text_extracted", doc["id"])
            return
        beam.metrics.Metrics.counter(f"{doc['source']}.{STAGE}", "extracted").inc()
        yield {**rest, "text": text.strip()}


class ExtractText(beam.PTransform):
    def __init__(self, options: ExtractConfig):
        super().__init__()
        self._options = options

    def expand(self, docs):
        out = docs | "Trafilatura" >> beam.ParDo(ExtractTextDoFn(self._options)).with_outputs(
            DROPPED, main="documents"
        )
        return {"documents": out.documents, "dropped": out[DROPPED]}

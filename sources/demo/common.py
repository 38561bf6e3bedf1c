"""What the demo corpus writers share: document counts per category at a scale, seeded draws, gzip
writers with mtime 0, and the record of what was planted (`Plants`)."""

from __future__ import annotations

import gzip
import math
import random
import string
import struct
import uuid
import zlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from llamapipe.sources.demo.text import (
    lexicon,
    load_snippets,
)

# Documents per category at scale 1.0 (multiplied by `scale`; see `scaled_count` for the minimums).
BASE_COUNTS = {
    "cc_normal": 590, "cc_heavy": 90, "cc_cited": 100, "cc_per_language": 9, "cc_spam": 20,
    "cc_gibberish": 20, "cc_short": 15, "cc_exact_pairs": 10, "cc_near_pairs": 10, "cc_cross_source": 10,
    "cc_404": 6, "cc_sites": 130,
    "c4_normal": 480, "c4_exact_pairs": 8, "c4_near_pairs": 8, "c4_rule_breakers": 2, "c4_sites": 60,
    "gh_repos": 56, "gh_duplicates": 6,
    "wiki_articles": 150, "wiki_redirects": 15, "wiki_other_ns": 15,
    "books": 12, "arxiv_tar": 60, "arxiv_single": 4, "se_questions_per_site": 80,
}
WARC_FILES, C4_FILES, GITHUB_FILES = 4, 2, 2  # at scale <= 1


def scaled_files(base: int, scale: float) -> int:
    """Files of a source at `scale`: real dumps grow by adding files of about the same size (Common
    Crawl's ~1 GB WARCs, C4's 1024 parts), so a scaled corpus does too, and the work can spread."""
    return max(base, math.ceil(base * scale))
SE_SITES = {"cooking": "cooking", "gardening": "gardening"}  # site -> topic of its vocabulary
CRAWL_START = datetime(2024, 5, 17, 23, 31, 22, tzinfo=UTC)


def scaled_count(name: str, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(BASE_COUNTS[name] * scale))


def draw_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def draw_seed(rng: random.Random) -> int:
    return rng.getrandbits(63)


def draw_ip(rng: random.Random) -> str:
    return f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def fill_snippet(name: str, rng: random.Random | None = None, **values: object) -> str:
    """One snippet of pages.txt (a random one when the section has several), placeholders filled."""
    options = load_snippets("pages")[name]
    chosen = rng.choice(options) if rng else options[0]
    return string.Template(chosen).safe_substitute({k: str(v) for k, v in values.items()})


def gzip_writer(path: Path) -> gzip.GzipFile:
    """A gzip file with an empty name and mtime 0 in its header (so output bytes are reproducible)."""
    return gzip.GzipFile(filename="", mode="wb", fileobj=open(path, "wb"), mtime=0)


def close_gzip(gz: gzip.GzipFile) -> None:
    raw = gz.fileobj
    gz.close()
    raw.close()


# --- plants ----------------------------------------------------------------------------------------

@dataclass(eq=False)
class Ref:
    """A document as the pipeline will see it; `id` may be filled in when the document is written."""

    source: str
    id: str = ""
    url: str = ""

    def item(self) -> dict:
        out = {"source": self.source, "id": self.id}
        if self.url:
            out["url"] = self.url
        return out


class Plants:
    """Planted cases by category: single refs with details, or pairs of refs."""

    def __init__(self) -> None:
        self._entries: dict[str, list] = defaultdict(list)

    def add(self, category: str, ref: Ref, **details) -> None:
        self._entries[category].append((ref, details))

    def pair(self, category: str, first: Ref, second: Ref) -> None:
        self._entries[category].append([first, second])

    def to_json(self) -> dict:
        return {
            category: [[ref.item() for ref in entry] if isinstance(entry, list)
                       else {**entry[0].item(), **entry[1]} for entry in entries]
            for category, entries in self._entries.items()
        }


def change_words(paragraphs: list[str], rng: random.Random, count: int) -> list[str]:
    """Replace `count` lowercase words at random positions by other words (a near duplicate)."""
    words = [p.split(" ") for p in paragraphs]
    positions = [(i, j) for i, para in enumerate(words) for j, word in enumerate(para)
                 if word.isalpha() and word.islower() and len(word) >= 4]
    replacements = lexicon().general_adjectives
    for i, j in rng.sample(positions, min(count, len(positions))):
        old = words[i][j]
        while words[i][j] == old:
            words[i][j] = rng.choice(replacements)
    return [" ".join(para) for para in words]


def png_bytes(rng: random.Random) -> bytes:
    """A valid 8x8 RGB PNG with random pixels."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)
    raw = b"".join(b"\x00" + bytes(rng.randrange(256) for _ in range(24)) for _ in range(8))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def warc_date(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

"""arXiv per-paper LaTeX sources: tarballs and single gzipped `.tex` files."""

from __future__ import annotations

import io
import random
import tarfile
from pathlib import Path

from llamapipe.sources.demo.common import (
    Plants,
    Ref,
    close_gzip,
    draw_seed,
    gzip_writer,
    png_bytes,
    scaled_count,
)
from llamapipe.sources.demo.text import (
    PaperWriter,
)

# --- ArXiv -----------------------------------------------------------------------------------------------

def _tar_member(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), mtime, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


class ArxivWriter:
    """~60 source tarballs (main.tex, sometimes sections/intro.tex and refs.bib, a figure) and a few
    single-file papers (one gzipped .tex, as arXiv serves them)."""

    def __init__(self, rng: random.Random, scale: float, plants: Plants):
        self.rng = rng
        self.plants = plants
        ids: set[str] = set()
        while len(ids) < scaled_count("arxiv_tar", scale) + scaled_count("arxiv_single", scale):
            ids.add(f"{rng.randint(21, 23):02d}{rng.randint(1, 12):02d}.{rng.randint(0, 29999):05d}")
        self.papers = sorted(ids)
        self.single = set(rng.sample(self.papers, scaled_count("arxiv_single", scale)))

    def write(self, out: Path) -> int:
        out.mkdir(parents=True, exist_ok=True)
        for paper_id in self.papers:
            rng = random.Random(draw_seed(self.rng))
            ref = Ref("arxiv", f"arxiv:{paper_id}")
            if paper_id in self.single:
                gz = gzip_writer(out / f"{paper_id}.gz")
                main = PaperWriter(rng).files(split_intro=False, bib_file=False)["main.tex"]
                gz.write(main.encode("utf-8"))
                close_gzip(gz)
                self.plants.add("arxiv_single_file", ref)
                continue
            split_intro, bib_file = rng.random() < 0.4, rng.random() < 0.5
            files = PaperWriter(rng).files(split_intro=split_intro, bib_file=bib_file)
            mtime = 1_600_000_000 + int(paper_id.replace(".", "")) % 100_000_000
            gz = gzip_writer(out / f"{paper_id}.tar.gz")
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                for name in sorted(files):
                    _tar_member(tar, name, files[name].encode("utf-8"), mtime)
                _tar_member(tar, "figures/fig1.png", png_bytes(rng), mtime)
            close_gzip(gz)
            if split_intro:
                self.plants.add("arxiv_with_input", ref, input="sections/intro.tex")
            if bib_file:
                self.plants.add("arxiv_bib_file", ref)
        return len(self.papers)

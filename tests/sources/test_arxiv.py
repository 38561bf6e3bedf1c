"""arXiv reader: LaTeX cleaning (comments, macros, section/bibliography cuts), main-file choice and
\\input inlining, safe streaming of hostile tar archives, single-file gzip papers."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import stat
import tarfile
import zipfile

from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from llamapipe.sources import arxiv

PAPER = r"""\documentclass{article}
\usepackage{amsmath}
\newcommand{\R}{\mathbb{R}}
\newcommand{\vect}[1]{\mathbf{#1}}
\newcommand*{\pair}[2][0]{(#1, #2)}
\def\norm#1{\left\|#1\right\|}
\newcommand\Rn{\R^n}
\renewcommand{\section}{\@startsection{section}{1}{0pt}}
\DeclareMathOperator*{\argmax}{arg\,max}
\begin{document}
\title{A Paper}
\maketitle
\begin{abstract}Text before the first section.\end{abstract}
\section{Introduction}\label{sec:intro}
% a line that is only a comment
We use 50\% of $\vect{v} \in \Rn$, the pair \pair{x}, \pair[1]{y} and $\norm{v}$. % a trailing comment
Also $\argmax_x f$ and \R.
\input{body}
\appendix
\section{Proofs}
Appendix text.
\bibliographystyle{plain}
\bibliography{refs}
\end{document}
"""

BODY = r"""\subsection{Method}
The method is in section~\ref{sec:intro}. % keep the sentence
\input{sub/deeper}
"""

DEEPER = r"""Deeper text, including \input{body} itself again (a cycle).
"""


def clean(text: str, cut_appendix: bool = True) -> str:
    return arxiv.clean_latex(text, cut_appendix)


# --- clean_latex ---------------------------------------------------------------------------------


def test_comments_removed_but_escaped_percent_kept():
    text = clean("\\section{A}\n50\\% of it % comment\n% whole line\n  % indented whole line\n"
                 "a line break \\\\% comment\nend")
    assert text == "\\section{A}\n50\\% of it\na line break \\\\\nend"


def test_macros_with_arguments_defaults_and_nesting_expand():
    text = clean(PAPER.replace("\\input{body}\n", ""))
    assert "We use 50\\% of $\\mathbf{v} \\in \\mathbb{R}^n$, the pair (0, x), (1, y) and " \
           "$\\left\\|v\\right\\|$." in text
    assert "$\\operatorname*{arg\\,max}_x f$ and \\mathbb{R}." in text
    for leftover in ("\\newcommand", "\\def", "\\vect", "\\pair", "\\norm", "\\Rn", "\\DeclareMathOperator"):
        assert leftover not in text


def test_text_before_first_section_and_after_bibliography_is_cut():
    text = clean(PAPER.replace("\\input{body}\n", ""))
    assert text.startswith("\\section{Introduction}\\label{sec:intro}\n")  # not the \renewcommand one
    assert "Text before the first section" not in text
    assert "Appendix text" not in text and "\\bibliography" not in text
    with_appendix = clean(PAPER.replace("\\input{body}\n", ""), cut_appendix=False)
    assert with_appendix.endswith("\\section{Proofs}\nAppendix text.")  # \bibliographystyle goes too


def test_every_bibliography_form_is_cut():
    for bibliography in ("\\begin{thebibliography}{9}\n\\bibitem{a} A.\n\\end{thebibliography}",
                         "\\bibliography{refs}", "\\begin{references}\nR\n\\end{references}",
                         "\\printbibliography"):
        assert clean(f"\\section{{S}}\nBody.\n{bibliography}\nAfter.") == "\\section{S}\nBody."


def test_no_section_gives_empty_text():
    assert clean("\\documentclass{article}\\begin{document}Just text.\\end{document}") == ""


def test_def_forms_and_spacing_between_tokens():
    source = ("\\def\\a{\\alpha}\\def\\R{R}\\def\\pair#1#2{#1,#2}\\def\\delim#1.{x#1}"
              "\\newcommand{\\bv}[1]{\\mathbf#1}\\newcommand{\\loopy}{\\loopy a}\n"
              "\\section{S}\n$\\a b \\a\\R \\pair{u}{v} \\bv{w}$ \\delim 1. \\loopy")
    text = clean(source)
    # \a followed by letters must stay separated; #1 after a control word too
    assert text == "\\section{S}\n$\\alpha b \\alpha R u,v \\mathbf w$ \\delim 1. \\loopy"


def test_expansion_is_bounded_for_mutually_recursive_macros():
    text, expanded = arxiv.clean_latex_with_stats(
        "\\newcommand{\\ping}{\\pong}\\newcommand{\\pong}{\\ping}\n\\section{S}\n\\ping")
    assert text.startswith("\\section{S}\n\\p")
    assert expanded == arxiv.MAX_EXPANSION_PASSES


# --- archives ------------------------------------------------------------------------------------


def add_member(archive: tarfile.TarFile, name: str, data: bytes = b"", **attributes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attributes.items():
        setattr(info, key, value)
    archive.addfile(info, io.BytesIO(data) if data else None)


def write_tar(path, members: list[tuple], mode: str = "w:gz") -> str:
    with tarfile.open(path, mode) as archive:
        for name, data, attributes in members:
            add_member(archive, name, data, **attributes)
    return str(path)


def run_read(inputs, check_documents, check_drops, **options) -> None:
    with TestPipeline() as pipeline:
        outputs = pipeline | arxiv.Read(arxiv.Options(inputs=inputs, **options))
        assert_that(outputs["documents"], check_documents, label="CheckDocuments")
        assert_that(outputs["dropped"], check_drops, label="CheckDrops")


def test_archive_with_inputs_and_appledouble_files(tmp_path):
    path = write_tar(tmp_path / "2101.00001v2.tar.gz", [
        ("./._paper.tex", b"\x00\x05\x16\x07junk \\documentclass{x}\\begin{document}\\section{Junk}", {}),
        ("./paper.tex", PAPER.encode(), {}),
        ("./body.tex", BODY.encode(), {}),
        ("./sub/deeper.tex", DEEPER.encode("latin-1"), {}),
        ("./figure.pdf", b"%PDF-1.4", {}),
    ])

    def check_documents(documents):
        assert len(documents) == 1
        document = documents[0]
        assert document["id"] == "arxiv:2101.00001v2"
        assert document["url"] == "https://arxiv.org/abs/2101.00001v2"
        assert document["meta"]["main_file"] == "paper.tex"
        assert document["meta"]["macros_expanded"] >= 7
        text = document["text"]
        assert "\\subsection{Method}\nThe method is in section~\\ref{sec:intro}.\n\nDeeper text" in text
        assert "\\input{body} itself again" in text  # the cycle is not followed
        assert "Junk" not in text

    run_read([path], check_documents, equal_to([]))


def test_hostile_archive_is_read_without_writing_or_following_links(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    secret = tmp_path / "secret.tex"
    secret.write_text("\\section{Secret}\nSECRET CONTENT\n")
    main = "\\documentclass{article}\\begin{document}\n\\section{Main}\nMain text.\n\\input{evil}\n" \
           "\\input{link}\n\\input{hard}\n\\end{document}\n"
    path = write_tar(work / "hostile.tar", [
        ("main.tex", main.encode(), {}),
        ("../evil.tex", b"Evil text, read in memory only.", {}),
        ("/abs/absolute.tex", b"\\documentclass{x}", {}),
        ("link.tex", b"", {"type": tarfile.SYMTYPE, "linkname": str(secret)}),
        ("hard.tex", b"", {"type": tarfile.LNKTYPE, "linkname": "main.tex"}),
        ("dev.tex", b"", {"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3}),
    ], mode="w")
    before = sorted(os.listdir(tmp_path)), sorted(os.listdir(work)), sorted(os.listdir(os.getcwd()))

    def check_documents(documents):
        assert [d["id"] for d in documents] == ["arxiv:hostile"]
        text = documents[0]["text"]
        assert "Evil text" not in text and "\\input{evil}" in text  # hostile names are skipped
        assert "SECRET" not in text
        assert "\\input{link}" in text and "\\input{hard}" in text  # links are not members we read
        assert documents[0]["url"] == ""

    run_read([path], check_documents, equal_to([]))
    assert (sorted(os.listdir(tmp_path)), sorted(os.listdir(work)), sorted(os.listdir(os.getcwd()))) == before


def test_single_file_gzip_paper_and_drops(tmp_path):
    single = tmp_path / "hep-th9901001.gz"
    with open(single, "wb") as raw, gzip.GzipFile("paper_v1.tex", "wb", fileobj=raw) as compressed:
        compressed.write(PAPER.replace("\\input{body}\n", "").encode())
    write_tar(tmp_path / "1901.00002.tar.gz", [("README", b"no tex here", {}), ("fig.eps", b"%!PS", {})])
    (tmp_path / "1901.00003.gz").write_bytes(gzip.compress(b"\\documentclass{article}\\begin{document}"
                                                           b"No sections at all.\\end{document}"))
    (tmp_path / "1901.00004.gz").write_bytes(gzip.compress(b"%PDF-1.5 binary pdf"))
    write_tar(tmp_path / "1901.00005.tgz", [("big.tex", b"\\section{A}" + b"x" * 2000, {})])

    def check_documents(documents):
        assert [(d["id"], d["url"], d["meta"]["main_file"]) for d in documents] == [
            ("arxiv:hep-th/9901001", "https://arxiv.org/abs/hep-th/9901001", "paper_v1.tex")]
        assert documents[0]["text"].startswith("\\section{Introduction}")

    def check_drops(drops):
        assert sorted((d["stage"], d["reason"], d["id"]) for d in drops) == [
            ("clean", "no_section", "arxiv:1901.00003"),
            ("read", "no_tex_source", "arxiv:1901.00002"),
            ("read", "no_tex_source", "arxiv:1901.00004"),
            ("read", "tex_too_large", "arxiv:1901.00005"),
        ]

    run_read([str(tmp_path / "*")], check_documents, check_drops, max_member_bytes=1000)


def test_archive_over_the_size_cap_is_one_drop(tmp_path):
    path = write_tar(tmp_path / "1901.00006.tar", [("a.tex", b"\\section{A}" + b" " * 5000, {}),
                                                   ("b.tex", b"\\section{B}" + b" " * 5000, {})], mode="w")
    run_read([path], equal_to([]), lambda drops: _assert_reasons(drops, ["archive_too_large"]),
             max_archive_bytes=8000)


def _assert_reasons(drops, reasons):
    assert [d["reason"] for d in drops] == reasons


def test_main_file_prefers_documentclass_with_begin_document():
    files = {
        "macros.tex": "\\newcommand{\\x}{y}" * 100,
        "old.tex": "% \\documentclass{article}\n" * 50,
        "template.tex": "\\documentclass{article}",
        "paper.tex": "\\documentclass{article}\\begin{document}",
    }
    assert arxiv.choose_main_file(files) == "paper.tex"
    assert arxiv.choose_main_file({}) is None


# --- real archives ---------------------------------------------------------------------------------


# What the real papers must turn into is derived from their raw .tex at test time (their text is
# never copied into the repository).
RAW_SIMPLE_MACRO = re.compile(
    r"^\s*\\(?:(?:re)?newcommand\*?\{(\\[A-Za-z]+)\}|def(\\[A-Za-z]+))\{(.*)\}\s*$", re.MULTILINE)
RAW_DEFINED_NAME = re.compile(
    r"\\(?:(?:re)?newcommand\*?\{?|def|DeclareMathOperator\*?\{)(\\[A-Za-z]+)")


def raw_tex_sources(paths: list[str]) -> dict[str, str]:
    """Source file -> the raw text of its one .tex file (a tar's only .tex that is not AppleDouble junk, or
    a single-file paper's gunzipped bytes), comments removed."""
    sources = {}
    for path in paths:
        if tarfile.is_tarfile(path):
            with tarfile.open(path) as archive:
                tex = [member for member in archive.getmembers()
                       if member.isfile() and member.name.endswith(".tex")
                       and not os.path.basename(member.name).startswith("._")]
                assert len(tex) == 1, path
                data = archive.extractfile(tex[0]).read()
        else:
            with gzip.open(path) as stream:
                data = stream.read()
        sources[path] = re.sub(r"(?<!\\)%.*", "", data.decode("utf-8", "replace"))
    return sources


def raw_expand(line: str, tex: str) -> str:
    """`line` with the argument-less one-line macros the raw file defines expanded (nested ones too)."""
    macros = {match.group(1) or match.group(2): match.group(3) for match in RAW_SIMPLE_MACRO.finditer(tex)}
    pattern = re.compile("|".join(re.escape(name) + "(?![A-Za-z])" for name in macros))
    for _ in range(5):
        line = pattern.sub(lambda match: macros[match.group(0)], line)
    return line


def raw_expectations(tex: str) -> dict:
    lines = tex.split("\n")
    first = next(n for n, line in enumerate(lines) if line.lstrip().startswith("\\section{"))
    first_body_line = next(line for line in lines[first + 1:] if line.strip())
    appendix = next((n for n, line in enumerate(lines) if line.strip() == "\\appendix"), None)
    appendix_sections = [] if appendix is None else [
        match.group(1) for match in re.finditer(r"\\section\{([^{}]+)\}", "\n".join(lines[appendix:]))]
    return {
        "first_lines": [lines[first].strip(), " ".join(raw_expand(first_body_line, tex).split())],
        # prose lines (no markup) before the first \section: title page, abstract
        "front_prose": [" ".join(line.split()) for line in lines[:first]
                        if len(line.split()) >= 5 and not re.search(r"[\\$%{}]", line)],
        "defined_macros": sorted(set(RAW_DEFINED_NAME.findall(tex))),
        "appendix_sections": appendix_sections,
    }


def test_real_archives(realdata):
    folder = realdata / "arxiv"
    paths = sorted(str(p) for p in folder.glob("arxiv-filemanager_*"))
    assert len(paths) == 3
    expected = {path: raw_expectations(tex) for path, tex in raw_tex_sources(paths).items()}
    assert all(len(e["front_prose"]) >= 2 and len(e["defined_macros"]) >= 5 for e in expected.values())

    def check_documents(documents):
        by_main = {d["meta"]["main_file"]: d for d in documents}
        assert sorted(by_main) == ["defective-fpt.tex", "hepth_desitterv3.tex", "main_a.tex"]
        for document in documents:
            text = document["text"]
            assert re.match(r"\\section\{", text), document["id"]
            assert not re.search(r"(?<!\\)%", text), document["id"]
            for cut in ("\\bibliography{", "\\begin{thebibliography}", "\\appendix", "\\newcommand",
                        "\\documentclass", "\\end{document}"):
                assert cut not in text, (document["id"], cut)
            raw = expected[document["meta"]["source_file"]]
            # starts at the raw file's first \section, its first line with the file's macros expanded
            assert [line.strip() for line in text.split("\n") if line.strip()][:2] == raw["first_lines"]
            flat = " ".join(text.split())
            leaked = [line for line in raw["front_prose"] if line in flat]  # title page and abstract cut
            assert not leaked, (document["id"], leaked)
            for name in raw["defined_macros"]:  # every macro the paper defines is expanded or removed
                assert not re.search(re.escape(name) + "(?![A-Za-z])", text), (document["id"], name)
            for title in raw["appendix_sections"]:
                assert title not in text, (document["id"], title)
        defective = by_main["defective-fpt.tex"]
        assert defective["id"] == "arxiv:1801.03879"
        assert defective["url"] == "https://arxiv.org/abs/1801.03879"
        assert expected[defective["meta"]["source_file"]]["appendix_sections"]  # it has an appendix
        assert defective["meta"]["macros_expanded"] > 100
        single = by_main["hepth_desitterv3.tex"]
        assert single["id"] == "arxiv:arxiv-filemanager_upload4"

    run_read(paths, check_documents, equal_to([]))


def test_clean_latex_on_real_paper_bodies(realdata):
    # 20 real papers (RedPajama's output: bodies from the first section on, comments partly left in)
    with gzip.open(realdata / "arxiv" / "llm-foundry_redpajama-arxiv-format_example.jsonl.gz", "rt") as lines:
        bodies = [json.loads(line)["text"] for line in lines]
    assert len(bodies) == 20
    for body in bodies:
        text = arxiv.clean_latex(body)
        assert re.match(r"\\(?:chapter|part|section|subsection|subsubsection|paragraph)\b", text)
        assert not re.search(r"(?<!\\)%", text)
        assert "\n\n\n" not in text


# --- zip submissions, provenance -----------------------------------------------------------------------


def zip_member(archive: zipfile.ZipFile, name: str, data: bytes, mode: int = stat.S_IFREG | 0o644,
               flag_bits: int = 0) -> None:
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    info.flag_bits |= flag_bits
    archive.writestr(info, data)


def test_zip_submission_is_read_in_memory_with_hostile_entries_skipped(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    secret = tmp_path / "secret.tex"
    secret.write_text("\\section{Secret}\nSECRET CONTENT\n")
    main = ("\\documentclass{article}\\begin{document}\n\\section{Main}\nMain text.\n\\input{sub/body}\n"
            "\\input{evil}\n\\input{absolute}\n\\input{link}\n\\input{big}\n\\end{document}\n")
    path = work / "2203.00007v1.zip"
    with zipfile.ZipFile(path, "w") as archive:
        zip_member(archive, "paper/main.tex", main.encode())
        zip_member(archive, "paper/sub/body.tex", b"Body from a subfolder.")
        zip_member(archive, "paper/sub/", b"", mode=stat.S_IFDIR | 0o755)
        zip_member(archive, "../evil.tex", b"Evil text.")
        zip_member(archive, "/abs/absolute.tex", b"Absolute text.")
        zip_member(archive, "C:\\temp\\drive.tex", b"\\documentclass{x} Drive text.")
        zip_member(archive, "paper/link.tex", str(secret).encode(), mode=stat.S_IFLNK | 0o777)
        zip_member(archive, "__MACOSX/paper/._main.tex", b"\\documentclass{x}\\section{Junk}")
        zip_member(archive, "paper/big.tex", b"\\section{Big}" + b"x" * 5000)
        zip_member(archive, "paper/figure.pdf", b"%PDF-1.4")
    (tmp_path / "2203.00008.zip").write_bytes(b"PK\x03\x04 a cut-off zip")
    before = sorted(os.listdir(tmp_path)), sorted(os.listdir(work)), sorted(os.listdir(os.getcwd()))

    def check_documents(documents):
        assert [d["id"] for d in documents] == ["arxiv:2203.00007v1"]
        document = documents[0]
        assert document["meta"]["main_file"] == "paper/main.tex"
        assert document["meta"]["source_file"] == str(path) and document["meta"]["offset"] == 0
        text = document["text"]
        assert text.startswith("\\section{Main}\nMain text.\n\nBody from a subfolder.")
        for leaked in ("Evil", "Absolute", "Drive", "SECRET", "Junk", "xxxx"):
            assert leaked not in text
        assert "\\input{link}" in text and "\\input{big}" in text

    def check_drops(drops):
        assert [(d["reason"], d["id"]) for d in drops] == [("unreadable_archive", "arxiv:2203.00008")]

    inputs = [str(path), str(tmp_path / "2203.00008.zip")]
    run_read(inputs, check_documents, check_drops, max_member_bytes=1000)
    assert (sorted(os.listdir(tmp_path)), sorted(os.listdir(work)), sorted(os.listdir(os.getcwd()))) == before


def test_zip_limits_count_decompressed_bytes(tmp_path):
    path = tmp_path / "2203.00009.zip"
    with zipfile.ZipFile(path, "w") as archive:
        zip_member(archive, "a.tex", b"\\documentclass{x}\\section{A}" + b" " * 5000)
        zip_member(archive, "b.tex", b"\\section{B}" + b" " * 5000)
    run_read([str(path)], equal_to([]), lambda drops: _assert_reasons(drops, ["archive_too_large"]),
             max_archive_bytes=8000)

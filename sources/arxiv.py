"""arXiv: per-paper LaTeX source archives (`.tar.gz`/`.tgz`/`.tar`, `.zip`, or a gzipped single `.tex`)
-> the paper body as cleaned LaTeX (RedPajama's arXiv recipe, with user macros expanded including
those that take arguments).

Archives are never extracted: tar files are read in tarfile's streaming mode, zip files through
zipfile's central directory, and only regular `.tex` members are read, into memory. Links, devices,
directories, encrypted zip members, macOS `._*`/`__MACOSX` files and members with hostile names
(absolute paths, drive letters, `..` components) are skipped, so nothing can be written or
followed anywhere. The main file (the one with `\\documentclass`) gets
its `\\input`/`\\include` files inlined, then `clean_latex` does the recipe's cleaning.
"""

from __future__ import annotations

import bisect
import posixpath
import re
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from llamapipe.pipeline.plumbing.drops import drop
from llamapipe.pipeline.plumbing.names import CLEAN_STAGE, READ_STAGE
from llamapipe.sources.reading import (
    DecompressionLimitError,
    ReadFileDoFn,
    ReadSourceFiles,
    SourceOptions,
    make_document,
    open_input,
    open_raw,
    provenance,
    short_name,
)

SOURCE = "arxiv"


@dataclass
class Options(SourceOptions):
    cut_appendix: bool = True  # RedPajama cut the paper at \appendix
    max_member_bytes: int = 20 * 1024 * 1024
    max_archive_bytes: int = 512 * 1024 * 1024


# --------------------------------------------------------------------------------------------------
# Small LaTeX scanning helpers (brace-aware, escape-aware)
# --------------------------------------------------------------------------------------------------

CONTROL_SEQUENCE = re.compile(r"\\([A-Za-z]+|.)", re.DOTALL)
DEFINITION_NAME = re.compile(r"\\([A-Za-z@]+|.)", re.DOTALL)  # \makeatletter names in preambles


def skip_spaces(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


def skip_spaces_on_line(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r":
        index += 1
    return index


BRACE_BRACKET_OR_ESCAPE = re.compile(r"\\.|[{}\]]", re.DOTALL)
MAX_OPTIONAL_ARGUMENT = 2000  # [optional] arguments are short; an unclosed [ must not scan the paper


class LatexScanner:
    """A LaTeX string whose brace pairs are matched once, in one linear pass, so reading a {group}
    is O(1) and an [optional] group O(log n), even in hostile input full of unbalanced braces.
    Escaped braces and brackets (\\{ \\} \\]) do not count."""

    def __init__(self, text: str):
        self.text = text
        self._closing: dict[int, int] = {}
        self._stops: list[int] = []  # positions of { and ], where an [optional] scan has to look
        openings: list[int] = []
        for match in BRACE_BRACKET_OR_ESCAPE.finditer(text):
            token = match.group(0)
            if token == "{":
                openings.append(match.start())
                self._stops.append(match.start())
            elif token == "]":
                self._stops.append(match.start())
            elif token == "}" and openings:
                self._closing[openings.pop()] = match.start()

    def group(self, index: int) -> tuple[str, int] | None:
        """Content of the {group} opening at `index` and the index after it, or None."""
        end = self._closing.get(index)
        if end is None:
            return None
        return self.text[index + 1:end], end + 1

    def optional(self, index: int) -> tuple[str, int] | None:
        """Content of the [group] opening at `index` (brackets inside {...} do not count)."""
        text = self.text
        if index >= len(text) or text[index] != "[":
            return None
        limit = index + MAX_OPTIONAL_ARGUMENT
        position = index + 1
        while True:
            next_stop = bisect.bisect_left(self._stops, position)  # the next unescaped { or ]
            if next_stop == len(self._stops) or self._stops[next_stop] >= limit:
                return None
            position = self._stops[next_stop]
            if text[position] == "]":
                return text[index + 1:position], position + 1
            end = self._closing.get(position)  # a {group}: brackets inside it do not count
            if end is None:
                return None
            position = end + 1

    def argument(self, index: int) -> tuple[str, int] | None:
        """An undelimited TeX macro argument at or after `index`: a {group}'s content or one token."""
        text = self.text
        index = skip_spaces(text, index)
        if index >= len(text) or text[index] in "}]":
            return None
        if text[index] == "{":
            return self.group(index)
        match = CONTROL_SEQUENCE.match(text, index)
        if match:
            return match.group(0), match.end()
        return text[index], index + 1


ENDS_WITH_CONTROL_WORD = re.compile(r"\\[A-Za-z]+$")


def join_tokens(left: str, right: str) -> str:
    """Concatenate LaTeX so a control word on the left does not swallow letters on the right
    (`\\alpha` + `b` must not become `\\alphab`)."""
    if right[:1].isalpha() and ENDS_WITH_CONTROL_WORD.search(left[-64:]):
        return left + " " + right
    return left + right


# --------------------------------------------------------------------------------------------------
# Comments
# --------------------------------------------------------------------------------------------------

# A comment starts at a % that is not escaped (\% is a percent sign; \\% is a line break + comment).
# \verb|...| spans are skipped because a % inside them is literal.
COMMENT_SCAN = re.compile(r"\\verb\*?([^A-Za-z\s]).*?\1|\\.|%")
VERBATIM_BEGIN = re.compile(r"\\begin\{(verbatim\*?|lstlisting|minted|Verbatim)\}")
COMMENT_ENV_BEGIN = re.compile(r"^\s*\\begin\{comment\}")
COMMENT_ENV_END = re.compile(r"\\end\{comment\}")


def comment_start(line: str) -> int | None:
    for match in COMMENT_SCAN.finditer(line):
        if match.group(0) == "%":
            return match.start()
    return None


def remove_comments(text: str) -> str:
    """Drop `%` comments; lines holding only a comment go entirely. Also drops the `comment`
    environment, and leaves verbatim-like environments untouched."""
    kept: list[str] = []
    verbatim_end: str | None = None
    in_comment_environment = False
    for line in text.split("\n"):
        if verbatim_end is not None:
            kept.append(line)
            if verbatim_end in line:
                verbatim_end = None
            continue
        if in_comment_environment:
            in_comment_environment = not COMMENT_ENV_END.search(line)
            continue
        if COMMENT_ENV_BEGIN.match(line):
            in_comment_environment = not COMMENT_ENV_END.search(line)
            continue
        start = comment_start(line)
        if start is not None:
            if not line[:start].strip():
                continue
            line = line[:start].rstrip()
        kept.append(line)
        verbatim = VERBATIM_BEGIN.search(line)
        if verbatim and f"\\end{{{verbatim.group(1)}}}" not in line[verbatim.end():]:
            verbatim_end = f"\\end{{{verbatim.group(1)}}}"
    return "\n".join(kept)


# --------------------------------------------------------------------------------------------------
# Macros
# --------------------------------------------------------------------------------------------------

DEFINITION_COMMANDS = re.compile(
    r"\\(newcommand|renewcommand|providecommand|DeclareRobustCommand|DeclareMathOperator|def|gdef|edef|xdef)"
    r"(?![A-Za-z@])(\*?)"
)
# Never expanded even if (re)defined: the cleaning below needs to see them.
PROTECTED_MACROS = frozenset(
    """chapter part section subsection subsubsection paragraph subparagraph begin end appendix
    bibliography bibliographystyle printbibliography input include documentclass documentstyle
    usepackage""".split()
)
MAX_EXPANSION_PASSES = 10


@dataclass
class Macro:
    name: str
    arguments: int
    default: str | None  # default of an optional first argument (\newcommand{\x}[2][default]{...})
    body: str
    expandable: bool


def _parse_definition(scanner: LatexScanner, match: re.Match) -> tuple[Macro, int] | None:
    """Parse the definition starting at `match`; returns the macro and the index after it."""
    text = scanner.text
    command, star = match.group(1), match.group(2)
    index = skip_spaces(text, match.end())
    if command.endswith("def"):
        name_match = DEFINITION_NAME.match(text, index)
        if not name_match:
            return None
        name = name_match.group(1)
        body_start = name_match.end()
        limit = min(len(text), body_start + 200)  # parameter text is short; do not run off
        while body_start < limit and text[body_start] != "{":
            body_start += 2 if text[body_start] == "\\" else 1
        parameters = text[name_match.end():body_start].replace(" ", "")
        group = scanner.group(body_start)
        if group is None:
            return None
        count = len(parameters) // 2
        undelimited = parameters == "".join(f"#{n}" for n in range(1, count + 1))
        macro = Macro(name, count, None, group[0], undelimited)
        return macro, group[1]

    if index < len(text) and text[index] == "{":
        group = scanner.group(index)
        if group is None:
            return None
        name_match = DEFINITION_NAME.fullmatch(group[0].strip())
        index = group[1]
    else:
        name_match = DEFINITION_NAME.match(text, index)
        index = name_match.end() if name_match else index
    if not name_match:
        return None
    name = name_match.group(1)

    if command == "DeclareMathOperator":
        group = scanner.group(skip_spaces(text, index))
        if group is None:
            return None
        return Macro(name, 0, None, f"\\operatorname{star}{{{group[0]}}}", True), group[1]

    arguments, default = 0, None
    index = skip_spaces(text, index)
    count = scanner.optional(index)
    if count is not None:
        if not count[0].strip().isdigit():
            return None
        arguments, index = int(count[0]), skip_spaces(text, count[1])
        optional = scanner.optional(index)
        if optional is not None:
            default, index = optional[0], skip_spaces(text, optional[1])
    body = scanner.argument(index)
    if body is None:
        return None
    return Macro(name, arguments, default, body[0], True), body[1]


def find_macro_definitions(text: str) -> tuple[dict[str, Macro], str]:
    """User macros defined in `text` (in order: \\providecommand does not override) and the text
    with their definitions removed."""
    scanner = LatexScanner(text)
    macros: dict[str, Macro] = {}
    pieces: list[str] = []
    position = 0
    search_from = 0
    while True:
        match = CONTROL_SEQUENCE.search(text, search_from)
        if match is None:
            break
        search_from = match.end()
        definition = DEFINITION_COMMANDS.match(text, match.start())
        if definition is None:
            continue
        parsed = _parse_definition(scanner, definition)
        if parsed is None:
            continue
        macro, end = parsed
        macro.expandable = macro.expandable and _can_expand(macro)
        if not (definition.group(1) == "providecommand" and macro.name in macros):
            macros[macro.name] = macro
        start = match.start()
        # a definition alone on its line takes the line with it (no blank line left behind)
        line_start = text.rfind("\n", position, start) + 1 or position
        line_end = skip_spaces_on_line(text, end)
        if not text[line_start:start].strip() and (line_end == len(text) or text[line_end] == "\n"):
            start, end = line_start, min(line_end + 1, len(text))
        pieces.append(text[position:start])
        position = search_from = end
    pieces.append(text[position:])
    return macros, "".join(pieces)


def _can_expand(macro: Macro) -> bool:
    return (
        re.fullmatch(r"[A-Za-z]+", macro.name) is not None
        and macro.name not in PROTECTED_MACROS
        and not re.search(r"\\[A-Za-z]*@", macro.body)  # LaTeX internals: no use in the text
        and not DEFINITION_COMMANDS.search(macro.body)
        and not re.search(rf"\\{macro.name}(?![A-Za-z])", macro.body)  # \def\x{\x a} never ends
        and macro.arguments <= 9
    )


def _substitute(body: str, arguments: list[str]) -> str:
    result = ""
    position = 0
    for match in re.finditer(r"#(#|[1-9])", body):
        result = join_tokens(result, body[position:match.start()])
        if match.group(1) == "#":
            value = "#"
        else:
            number = int(match.group(1))
            value = arguments[number - 1] if number <= len(arguments) else match.group(0)
        result = join_tokens(result, value)
        position = match.end()
    return join_tokens(result, body[position:])


def _expand_once(text: str, macros: dict[str, Macro]) -> tuple[str, int]:
    scanner = LatexScanner(text)
    pieces: list[str] = []
    count = 0
    position = 0
    for match in CONTROL_SEQUENCE.finditer(text):
        if match.start() < position:
            continue  # inside the arguments of an expansion made in this pass
        macro = macros.get(match.group(1))
        if macro is None or not macro.expandable:
            continue
        arguments: list[str] = []
        end = match.end()
        if macro.default is not None:
            optional = scanner.optional(skip_spaces(text, end))
            if optional is not None:
                arguments.append(optional[0])
                end = optional[1]
            else:
                arguments.append(macro.default)
        while len(arguments) < macro.arguments:
            argument = scanner.argument(end)
            if argument is None:
                break
            arguments.append(argument[0])
            end = argument[1]
        if len(arguments) < macro.arguments:
            continue  # not enough arguments: leave this use alone
        replacement = _substitute(macro.body, arguments)
        pieces.append(text[position:match.start()])
        output_tail = next((piece for piece in reversed(pieces) if piece), "")
        if replacement[:1].isalpha() and ENDS_WITH_CONTROL_WORD.search(output_tail[-64:]):
            pieces.append(" ")  # \foo\R with \R -> R must not become \fooR
        pieces.append(replacement)
        if end < len(text) and text[end].isalpha() and ENDS_WITH_CONTROL_WORD.search(replacement):
            pieces.append(" ")
        position = end
        count += 1
    pieces.append(text[position:])
    return "".join(pieces), count


def expand_macros(text: str, macros: dict[str, Macro]) -> tuple[str, int]:
    """Expand user macros (also those used inside other macros) until none is left, with a bounded
    number of passes and a size limit so recursive definitions cannot run away."""
    total = 0
    size_limit = 4 * len(text) + 100_000
    if not any(macro.expandable for macro in macros.values()):
        return text, 0
    for _ in range(MAX_EXPANSION_PASSES):
        expanded, count = _expand_once(text, macros)
        if count == 0 or len(expanded) > size_limit:
            break
        text, total = expanded, total + count
    return text, total


# --------------------------------------------------------------------------------------------------
# The recipe's cleaning
# --------------------------------------------------------------------------------------------------

BEGIN_DOCUMENT = re.compile(r"\\begin\s*\{document\}")
END_DOCUMENT = re.compile(r"\\end\s*\{document\}")
FIRST_SECTION = re.compile(
    r"(?<!\\)\\(?:chapter|part|section|subsection|subsubsection|paragraph)(?![A-Za-z@])\*?"
)
BIBLIOGRAPHY = re.compile(
    r"\\begin\s*\{thebibliography\}|\\bibliography\s*\{|\\begin\s*\{references\}|\\printbibliography(?![A-Za-z])",
    re.IGNORECASE,
)
APPENDIX = re.compile(r"\\appendix(?![A-Za-z])|\\begin\s*\{appendices\}")
BIBLIOGRAPHY_STYLE = re.compile(r"\\bibliographystyle\s*\{[^{}]*\}")
MANY_NEWLINES = re.compile(r"\n{3,}")


def clean_latex_with_stats(text: str, cut_appendix: bool = True) -> tuple[str, int]:
    """`clean_latex` plus the number of macro uses expanded."""
    text = remove_comments(text.replace("\r\n", "\n"))
    macros, text = find_macro_definitions(text)
    text, expanded = expand_macros(text, macros)
    begin = BEGIN_DOCUMENT.search(text)
    if begin:  # a \section inside a preamble definition is not the start of the paper
        text = text[begin.end():]
    end = END_DOCUMENT.search(text)
    if end:
        text = text[:end.start()]
    first_section = FIRST_SECTION.search(text)
    if first_section is None:
        return "", expanded
    text = text[first_section.start():]
    cuts = [BIBLIOGRAPHY.search(text)] + ([APPENDIX.search(text)] if cut_appendix else [])
    cut = min((match.start() for match in cuts if match), default=len(text))
    text = BIBLIOGRAPHY_STYLE.sub("", text[:cut])
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return MANY_NEWLINES.sub("\n\n", text).strip(), expanded


def clean_latex(text: str, cut_appendix: bool = True) -> str:
    """RedPajama's arXiv cleaning, done better: comments removed (not `\\%`), user macros expanded
    (\\newcommand/\\renewcommand/\\providecommand/\\DeclareMathOperator/\\def, with arguments and
    optional-argument defaults) and their definitions removed, everything before the first
    sectioning command dropped, the bibliography (and by default the appendix) cut off, runs of
    blank lines collapsed. Returns "" when there is no sectioning command."""
    return clean_latex_with_stats(text, cut_appendix)[0]


# --------------------------------------------------------------------------------------------------
# Archives
# --------------------------------------------------------------------------------------------------

INPUT_COMMAND = re.compile(
    r"\\(?:input|include|subfile)(?![A-Za-z@])\s*(?:\{\s*([^{}]*?)\s*\}|([A-Za-z0-9_./-]+))"
)
MAX_INPUT_DEPTH = 8
NEW_STYLE_ID = re.compile(r"(?<!\d)(\d{4}\.\d{4,5}(?:v\d+)?)(?!\d)")
OLD_STYLE_ID = re.compile(r"(?<![A-Za-z])([a-z]+(?:-[a-z]+)?(?:\.[A-Z]{2})?)[/_]?(\d{7}(?:v\d+)?)(?!\d)")


def decode_tex(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _safe_name(name: str) -> str:
    """Member name as a relative posix path (nothing is written; this only keys \\input lookups)."""
    return posixpath.normpath("/" + name.replace("\\", "/")).lstrip("/")


def hostile_member_name(name: str) -> bool:
    """An archive member name that points outside the archive: absolute, drive letter, or `..`."""
    name = name.replace("\\", "/")
    return name.startswith("/") or re.match(r"^[A-Za-z]:", name) is not None or ".." in name.split("/")


def wanted_tex_member(name: str) -> bool:
    """A LaTeX source member worth reading (not macOS resource-fork junk)."""
    base = posixpath.basename(name.replace("\\", "/"))
    return base.lower().endswith(".tex") and not base.startswith("._") and "__MACOSX/" not in name


def _skip_hostile(name: str) -> bool:
    if hostile_member_name(name):
        beam.metrics.Metrics.counter(SOURCE, "skipped.hostile_member").inc()
        return True
    return False


def read_tex_members(stream, max_member_bytes: int) -> tuple[dict[str, str], int] | None:
    """The .tex members of a tar stream (None if it is not a tar) and how many were too large."""
    try:
        archive = tarfile.open(fileobj=stream, mode="r|*")
    except (tarfile.ReadError, tarfile.CompressionError):
        return None
    files: dict[str, str] = {}
    too_large = 0
    with archive:
        for member in archive:
            # isreg(): not a symlink, hard link, device, fifo or directory, so nothing is followed
            if not member.isreg() or not wanted_tex_member(member.name) or _skip_hostile(member.name):
                continue
            if member.size > max_member_bytes:
                too_large += 1
                continue
            files[_safe_name(member.name)] = decode_tex(archive.extractfile(member).read())
    return files, too_large


def _zip_member_is_regular_file(info: zipfile.ZipInfo) -> bool:
    """Not a directory, and not a symlink or device (Unix mode in the high bits of external_attr)."""
    mode = info.external_attr >> 16
    return not info.is_dir() and (mode == 0 or stat.S_ISREG(mode))


def read_zip_tex_members(path: str, max_member_bytes: int,
                         max_archive_bytes: int) -> tuple[dict[str, str], int]:
    """The .tex members of a zip archive and how many were too large. Sizes are checked on what is
    actually decompressed, not only on what the (forgeable) headers claim."""
    files: dict[str, str] = {}
    too_large = total = 0
    with closing(open_raw(path)) as raw, zipfile.ZipFile(raw) as archive:
        for info in archive.infolist():
            if not _zip_member_is_regular_file(info) or not wanted_tex_member(info.filename):
                continue
            if _skip_hostile(info.filename):
                continue
            if info.flag_bits & 0x1:  # encrypted: nothing to read without the password
                beam.metrics.Metrics.counter(SOURCE, "skipped.encrypted_member").inc()
                continue
            if info.file_size > max_member_bytes:
                too_large += 1
                continue
            with archive.open(info) as member:
                data = member.read(max_member_bytes + 1)
            if len(data) > max_member_bytes:
                too_large += 1
                continue
            total += len(data)
            if total > max_archive_bytes:
                raise DecompressionLimitError(f"decompressed size exceeds the limit of {max_archive_bytes}")
            files[_safe_name(info.filename)] = decode_tex(data)
    return files, too_large


def gzip_original_name(path: str) -> str:
    """The file name stored in a gzip header (arXiv single-file papers carry the .tex name)."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        header = raw.read(4096)
    if header[:2] != b"\x1f\x8b" or len(header) < 10 or not header[3] & 0x08:
        return ""
    start = 10
    if header[3] & 0x04:  # FEXTRA
        start += 2 + int.from_bytes(header[10:12], "little")
    end = header.find(b"\x00", start)
    return _safe_name(header[start:end].decode("latin-1")) if end > start else ""


def has_document_class(text: str) -> bool:
    return bool(re.search(r"\\document(?:class|style)(?![A-Za-z])", text))


def choose_main_file(files: dict[str, str]) -> str | None:
    """The file with \\documentclass (preferring one with \\begin{document}); else the largest."""
    if not files:
        return None

    def rank(name: str) -> tuple:
        text = remove_comments(files[name])
        return has_document_class(text), bool(BEGIN_DOCUMENT.search(text)), len(text), name

    return max(files, key=rank)


def inline_inputs(files: dict[str, str], main: str) -> str:
    """The main file with its \\input/\\include files inlined (comments removed first, so a
    commented-out \\input is not followed); depth-limited, cycles are left as they are."""

    def resolve(target: str, including: str) -> str | None:
        # LaTeX resolves names from the main file's folder; authors also write them relative to
        # the including file, or to the archive root
        target = target.strip().strip('"')
        for folder in (posixpath.dirname(main), posixpath.dirname(including), ""):
            for candidate in (target, target + ".tex"):
                name = _safe_name(posixpath.join(folder, candidate))
                if name in files:
                    return name
        return None

    # a file \input twice at every level would otherwise grow the paper exponentially
    budget = [2 * sum(len(text) for text in files.values()) + 1_000_000]

    def inline(name: str, stack: tuple[str, ...]) -> str:
        text = remove_comments(files[name])
        budget[0] -= len(text)

        def replace(match: re.Match) -> str:
            target = resolve(match.group(1) or match.group(2), name)
            if target is None or target in stack or len(stack) >= MAX_INPUT_DEPTH or budget[0] <= 0:
                return match.group(0)
            return "\n" + inline(target, (*stack, target)) + "\n"

        return INPUT_COMMAND.sub(replace, text)

    return inline(main, (main,))


def arxiv_id(path: str) -> str | None:
    name = short_name(path)
    match = NEW_STYLE_ID.search(name)
    if match:
        return match.group(1)
    match = OLD_STYLE_ID.search(name)
    if match:
        return f"{match.group(1)}/{match.group(2)}"
    return None


def file_stem(path: str) -> str:
    return re.sub(r"(\.tar\.gz|\.tgz|\.tar|\.gz|\.zip|\.tex)$", "", short_name(path), flags=re.IGNORECASE)


# --------------------------------------------------------------------------------------------------
# Beam
# --------------------------------------------------------------------------------------------------


class ReadPaperSource(ReadFileDoFn):
    """One paper's source archive -> one document or one drop."""

    source = SOURCE

    def __init__(self, options: Options):
        super().__init__()
        self._options = options

    def _load(self, path: str) -> tuple[dict[str, str], int]:
        """All .tex sources of the paper: zip or tar members, or the whole file for a single-file paper."""
        options = self._options
        with closing(open_raw(path)) as raw:
            is_zip = raw.read(4) in (b"PK\x03\x04", b"PK\x05\x06")  # a member, or an empty archive
        if is_zip:
            return read_zip_tex_members(path, options.max_member_bytes, options.max_archive_bytes)
        with open_input(path, max_bytes=options.max_archive_bytes) as stream:
            members = read_tex_members(stream, options.max_member_bytes)
        if members is not None:
            return members
        with open_input(path, max_bytes=options.max_archive_bytes) as stream:
            data = stream.read(options.max_member_bytes + 1)
        if len(data) > options.max_member_bytes:
            return {}, 1
        if data.lstrip()[:5] in (b"%PDF-", b"%!PS-") or b"\\" not in data:
            return {}, 0  # a gzipped PDF/PostScript-only submission, or not TeX at all
        name = (gzip_original_name(path) if path.lower().endswith(".gz") else "") or file_stem(path) + ".tex"
        return {name: decode_tex(data)}, 0

    def read(self, path: str) -> Iterator:
        paper_id = arxiv_id(path)
        doc_id = f"{SOURCE}:{paper_id or file_stem(path)}"
        try:
            files, too_large = self._load(path)
        except DecompressionLimitError as exc:
            yield drop(SOURCE, READ_STAGE, "archive_too_large", doc_id, str(exc))
            return
        except zipfile.BadZipFile as exc:
            yield drop(SOURCE, READ_STAGE, "unreadable_archive", doc_id, f"{path}: {exc}")
            return
        if too_large:
            beam.metrics.Metrics.counter(SOURCE, "skipped.tex_too_large").inc(too_large)
        main = choose_main_file(files)
        if main is None:
            reason = "tex_too_large" if too_large else "no_tex_source"
            yield drop(SOURCE, READ_STAGE, reason, doc_id, path)
            return
        text, expanded = clean_latex_with_stats(inline_inputs(files, main), self._options.cut_appendix)
        if not text:
            yield drop(SOURCE, CLEAN_STAGE, "no_section", doc_id, main)
            return
        yield make_document(
            SOURCE,
            doc_id,
            text,
            f"https://arxiv.org/abs/{paper_id}" if paper_id else "",
            main_file=main,
            macros_expanded=expanded,
            **provenance(path, offset=0),
        )


class Read(ReadSourceFiles):
    """arXiv source archives -> {"documents", "dropped"}."""

    dofn_class = ReadPaperSource
    step_label = "ReadArxivSources"

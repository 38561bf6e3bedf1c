"""GitHub rows (`jsonl.gz` with content, repo_name, path, license, language)."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from llamapipe.sources.demo.common import (
    GITHUB_FILES,
    Plants,
    Ref,
    close_gzip,
    fill_snippet,
    gzip_writer,
    scaled_count,
    scaled_files,
)
from llamapipe.sources.demo.text import (
    CodeWriter,
    EnglishWriter,
    lexicon,
)

# --- GitHub ----------------------------------------------------------------------------------------------

_PERMISSIVE = ("mit", "mit", "mit", "apache-2.0", "apache-2.0", "bsd-3-clause")
_PATHS = {
    "Python": ("src/{pkg}/{name}.py", "{pkg}/{name}.py", "tests/test_{name}.py", "scripts/{name}.py"),
    "JavaScript": ("src/{name}.js", "lib/{name}.js", "src/utils/{name}.js"),
    "C": ("src/{name}.c", "{name}.c", "lib/{name}.c"),
    "Go": ("internal/{pkg}/{name}.go", "pkg/{pkg}/{name}.go", "cmd/{pkg}/main.go"),
    "Rust": ("src/{name}.rs", "src/{pkg}/mod.rs", "crates/{pkg}/src/lib.rs"),
    "Java": ("src/main/java/com/{pkg}/{Name}.java", "src/main/java/org/{pkg}/{Name}.java"),
    "Shell": ("scripts/{name}.sh", "bin/{name}.sh", "{name}.sh"),
    "Markdown": ("README.md", "docs/{name}.md", "CONTRIBUTING.md", "docs/guide/{name}.md"),
}
_COMMENT_STYLE = {"Python": "#", "C": "/*", "Java": "/*", "JavaScript": "//", "Go": "//", "Rust": "//"}
_LICENCE_SNIPPET = {"apache-2.0": "licence.apache", "mit": "licence.mit", "bsd-3-clause": "licence.bsd"}


def licence_header(rng: random.Random, licence: str, language: str) -> str:
    """A licence comment in the language's comment style, as it opens many files."""
    holder = EnglishWriter(rng).person()
    text = fill_snippet(_LICENCE_SNIPPET[licence], rng, YEAR=rng.randint(2012, 2023), HOLDER=holder)
    style = _COMMENT_STYLE[language]
    if style == "/*":
        return "/*\n" + "\n".join((" * " + line).rstrip() for line in text.split("\n")) + "\n */\n\n"
    return "\n".join((f"{style} " + line).rstrip() for line in text.split("\n")) + "\n\n"


@dataclass(eq=False)
class Repo:
    name: str
    licence: str
    language: str
    package: str


@dataclass(eq=False)
class GithubRow:
    ref: Ref
    repo: Repo
    path: str
    language: str
    content: str


class GithubWriter:
    """~260 files in ~60 repositories; non-permissive licences, duplicates and bad files planted."""

    def __init__(self, rng: random.Random, scale: float, plants: Plants):
        self.rng = rng
        self.files = scaled_files(GITHUB_FILES, scale)
        self.plants = plants
        self.code = CodeWriter(rng)
        self.rows: list[GithubRow] = []
        self._paths: set[str] = set()
        repos = [self._repo(rng.choice(_PERMISSIVE)) for _ in range(scaled_count("gh_repos", scale, 4))]
        for licence, files in (("gpl-3.0", 4), ("agpl-3.0", 3), ("unknown", 3)):
            for row in self._fill(self._repo(licence), files, header_rate=0.0):
                plants.add("non_permissive_code", row.ref, license=licence)
        normal = [row for repo in repos for row in self._fill(repo, rng.randint(3, 6), header_rate=0.25)]
        for original in rng.sample(normal, min(len(normal), scaled_count("gh_duplicates", scale))):
            target = rng.choice([repo for repo in repos if repo is not original.repo])
            copy = self._add(target, original.language, original.content, original.path)
            plants.pair("exact_duplicates", original.ref, copy.ref)
        self._plant_bad_files(rng.choice(repos))

    def _repo(self, licence: str) -> Repo:
        rng = self.rng
        words = lexicon().words
        owner = rng.choice((
            rng.choice(words["last_names"]).lower() + rng.choice(("", "-dev", "labs", "hq")),
            rng.choice(words["first_names.f"] + words["first_names.m"]).lower() + str(rng.randint(1, 99))))
        name = f"{self.code.noun()}-{rng.choice(('kit', 'tools', 'lite', 'core', 'utils', 'server', 'cli'))}"
        return Repo(f"{owner}/{name}", licence, rng.choice(CodeWriter.LANGUAGES[:7]), self.code.noun())

    def _add(self, repo: Repo, language: str, content: str, path: str = "") -> GithubRow:
        if not path:
            main_class = re.search(r"public class (\w+)", content)  # Java files are named after their class
            path = self.rng.choice(_PATHS[language]).format(
                pkg=repo.package, name=self.code.snake(), Name=main_class.group(1) if main_class else "Main")
        while f"{repo.name}/{path}" in self._paths:
            stem, dot, ext = path.rpartition(".")
            path = f"{stem}_{self.rng.randint(2, 99)}{dot}{ext}"
        self._paths.add(f"{repo.name}/{path}")
        row = GithubRow(Ref("github", f"github:{repo.name}/{path}"), repo, path, language, content)
        self.rows.append(row)
        return row

    def _fill(self, repo: Repo, files: int, header_rate: float) -> list[GithubRow]:
        rng = self.rng
        rows = [self._add(repo, "Markdown", self.code.file("Markdown"), "README.md")]
        for _ in range(files - 1):
            language = repo.language if rng.random() < 0.75 else rng.choice(CodeWriter.LANGUAGES)
            content = self.code.file(language)
            header = language in _COMMENT_STYLE and rng.random() < header_rate
            if header:
                content = licence_header(rng, repo.licence, language) + content
            rows.append(self._add(repo, language, content))
            if header:
                self.plants.add("licence_headers", rows[-1].ref, license=repo.licence)
        return rows

    def _plant_bad_files(self, repo: Repo) -> None:
        rng, code = self.rng, self.code
        bad = []
        minified = " ".join(" ".join(code.file("JavaScript").split()) for _ in range(4))
        bad.append((self._add(repo, "JavaScript", minified + "\n", f"dist/{code.noun()}.min.js"),
                    "line_longer_than_1000"))
        lock = "".join(f'[[package]]\nname = "{code.noun()}-{code.verb()}"\n'
                       f'version = "{rng.randint(0, 3)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"\n'
                       f'checksum = "{rng.getrandbits(256):064x}"\n\n' for _ in range(30))
        bad.append((self._add(repo, "", lock, "Cargo.lock"), "extension_not_whitelisted"))
        binary = "".join(chr(rng.randrange(32, 256)) for _ in range(3000))
        bad.append((self._add(repo, "", binary, f"assets/{code.noun()}.bin"), "extension_not_whitelisted"))
        # Base64 of a mostly-0xFF bitmap: digits, '+' and '/', no letters in the payload at all.
        payload = ("".join(rng.choice("0123456789+/") for _ in range(76)) for _ in range(60))
        lines = "\n".join(f'    "{line}"' for line in payload)
        blob = f"ICON_ATLAS = (\n{lines}\n)\n"
        row = self._add(repo, "Python", blob, f"src/{repo.package}/_icon_atlas.py")
        bad.append((row, "low_alpha_per_token"))
        numbers = ",\n".join("    " + ", ".join(str(rng.randint(0, 65535)) for _ in range(12))
                             for _ in range(80))
        table = f"static const unsigned short crc_table[] = {{\n{numbers}\n}};\n"
        bad.append((self._add(repo, "C", table, f"src/{repo.package}_table.c"), "low_alpha_per_token"))
        for row, problem in bad:
            self.plants.add("code_quality", row.ref, problem=problem)

    def write(self, out: Path) -> int:
        out.mkdir(parents=True, exist_ok=True)
        order = list(self.rows)
        self.rng.shuffle(order)
        per_file = -(-len(order) // self.files)
        for index in range(self.files):
            gz = gzip_writer(out / f"github-{index:05d}.jsonl.gz")
            for row in order[index * per_file:(index + 1) * per_file]:
                record = {"content": row.content, "repo_name": row.repo.name, "path": row.path,
                          "license": row.repo.licence, "language": row.language}
                gz.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
            close_gzip(gz)
        return len(order)

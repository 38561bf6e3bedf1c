"""GitHub reader: licence/extension/quality filters, header stripping, exact dedup, json lines and Parquet."""

from __future__ import annotations

import gzip
import json

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from llamapipe.sources.github import (
    DEFAULT_LICENSES,
    Options,
    Read,
    ReadCodeFileDoFn,
    extension_allowed,
    license_allowed,
    quality_problem,
    strip_license_header,
)

GOOD_PY = "import os\n\n\ndef main():\n    print(os.getcwd())\n"
MIT_HEADER = "# Copyright (c) 2021 Jane Doe\n# Licensed under the MIT License.\n\n"


# ---------------------------------------------------------------------------------------------
# Pure helpers


@pytest.mark.parametrize("content, expected", [
    ("/*\n * Copyright (c) 2020 Foo Inc.\n * SPDX-License-Identifier: BSD-3-Clause\n */\n\n"
     "#include <a.h>\nint x;\n",
     "#include <a.h>\nint x;\n"),
    ("#!/usr/bin/env python\n" + MIT_HEADER + GOOD_PY, "#!/usr/bin/env python\n" + GOOD_PY),
    ("// SPDX-License-Identifier: Apache-2.0\n/* Copyright 2019 */\npackage main\n", "package main\n"),
    ("-- Copyright 2020 Foo\n-- Permission is hereby granted\nSELECT 1;\n", "SELECT 1;\n"),
    # not boilerplate: kept as is
    ("# Parse the command line.\nimport sys\n", "# Parse the command line.\nimport sys\n"),
    ("#include <license.h>\nint x;\n", "#include <license.h>\nint x;\n"),
    ("# Check user permissions first.\nimport auth\n", "# Check user permissions first.\nimport auth\n"),
    ("int x; /* copyright is not leading */\n", "int x; /* copyright is not leading */\n"),
    ("#!/bin/sh\necho hi\n", "#!/bin/sh\necho hi\n"),
])
def test_strip_license_header(content, expected):
    assert strip_license_header(content) == expected


def test_markdown_headings_are_not_comments():
    readme = "# License\n\nMIT, see LICENSE.\n"
    assert strip_license_header(readme, "docs/README.md") == readme


def test_licences_are_compared_normalised_and_dual_licences_pass_if_one_is_allowed():
    assert license_allowed("MIT", DEFAULT_LICENSES)
    assert license_allowed("Apache License 2.0", DEFAULT_LICENSES)
    assert license_allowed("BSD_3_Clause", DEFAULT_LICENSES)
    assert license_allowed("GPL-3.0 OR MIT", DEFAULT_LICENSES)
    assert license_allowed(["gpl-2.0", "bsd-2-clause"], DEFAULT_LICENSES)
    assert not license_allowed("gpl-3.0", DEFAULT_LICENSES)
    assert not license_allowed(None, DEFAULT_LICENSES)
    assert not license_allowed("", DEFAULT_LICENSES)


def test_extension_whitelist_is_redpajamas_and_case_insensitive():
    extensions = Options().extensions
    for path in ("a/b.py", "x.C", "src/main.RS", "Dockerfile", "build/Makefile", "README.md"):
        assert extension_allowed(path, extensions), path
    for path in ("logo.png", "a.min.json", "LICENSE", "data.csv", "notes.txt"):
        assert not extension_allowed(path, extensions), path


@pytest.mark.parametrize("content, reason", [
    (GOOD_PY, ""),
    ("x = 1\n" + "a" * 1001 + "\n", "line_too_long"),
    (("word " * 30 + "\n") * 10, "mean_line_too_long"),
    ("{ } ; ( ) [ ] < > = + - *\n" * 20, "low_alphanumeric"),
    ("1 2 3 4 5 6 7 8 9 0\n" * 10, "low_alpha_per_token"),
])
def test_quality_thresholds(content, reason):
    assert quality_problem(content, Options()) == reason


# ---------------------------------------------------------------------------------------------
# Pipeline


def row(repo, path, content, license="mit", language="Python"):
    return {"repo_name": repo, "path": path, "content": content, "license": license, "language": language}


def run(inputs, options, expected_documents, expected_drops):
    """Run Read; documents compared as (id, text), drops as (id, stage, reason)."""
    options.inputs = [str(path) for path in inputs]
    pipeline = TestPipeline()
    out = pipeline | Read(options, work_folder=str(inputs[0].parent / "work"))
    assert_that(out["documents"] | "IdAndText" >> beam.Map(lambda d: (d["id"], d["text"])),
                equal_to(expected_documents), label="CheckDocuments")
    assert_that(out["dropped"] | "IdStageReason" >> beam.Map(lambda d: (d["id"], d["stage"], d["reason"])),
                equal_to(expected_drops), label="CheckDrops")
    pipeline.run().wait_until_finish()


def test_rows_are_filtered_cleaned_and_deduplicated(tmp_path):
    rows = [
        row("acme/tool", "src/main.py", MIT_HEADER + GOOD_PY),
        row("zz/fork", "main.py", GOOD_PY),                         # same file once the header is gone
        row("aa/copy", "lib/main.py", GOOD_PY, license="apache-2.0"),  # smallest id of the three: kept
        row("gnu/thing", "a.py", GOOD_PY + "# gpl\n", license="gpl-3.0"),
        row("acme/tool", "logo.svg.png", "binary-ish"),
        row("acme/tool", "min.js", "var a=1;" * 200 + "\n"),
        row("acme/tool", "table.sql", ("word " * 30 + "\n") * 10),
        row("acme/tool", "punct.c", "{ } ; ( ) [ ] < > = + - *\n" * 20),
        row("acme/tool", "nums.py", "1 2 3 4 5 6 7 8 9 0\n" * 10),
        row("acme/tool", "only_licence.py", MIT_HEADER),
        row("acme/tool", "unicode.go", "package main\n\n// Grüße aus Köln\nfunc main() {}\n", language="Go"),
    ]
    path = tmp_path / "github_000.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for item in rows:
            out.write(json.dumps(item) + "\n")
        out.write('{"repo_name": "broken/json", \n')
        out.write(json.dumps({"repo_name": "no/content", "path": "a.py", "license": "mit"}) + "\n")

    run(
        [path], Options(),
        expected_documents=[
            ("github:aa/copy/lib/main.py", GOOD_PY),
            ("github:acme/tool/unicode.go", "package main\n\n// Grüße aus Köln\nfunc main() {}\n"),
        ],
        expected_drops=[
            ("github:acme/tool/src/main.py", "clean", "exact_duplicate_file"),
            ("github:zz/fork/main.py", "clean", "exact_duplicate_file"),
            ("github:gnu/thing/a.py", "clean", "license_not_allowed"),
            ("github:acme/tool/logo.svg.png", "clean", "extension_not_allowed"),
            ("github:acme/tool/min.js", "clean", "line_too_long"),
            ("github:acme/tool/table.sql", "clean", "mean_line_too_long"),
            ("github:acme/tool/punct.c", "clean", "low_alphanumeric"),
            ("github:acme/tool/nums.py", "clean", "low_alpha_per_token"),
            ("github:acme/tool/only_licence.py", "clean", "empty"),
            ("github:github_000.jsonl.gz:12", "read", "malformed_json"),
            ("github:github_000.jsonl.gz:13", "read", "bad_schema"),
        ],
    )


def test_document_fields_and_meta(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(row("acme/tool", "src/app.ts", "const greeting: string = 'hello world';\n",
                                   license="MIT", language=[{"name": "TypeScript", "bytes": 9},
                                                            {"name": "CSS", "bytes": 2}])) + "\n")
    pipeline = TestPipeline()
    out = pipeline | Read(Options(inputs=[str(path)]), work_folder=str(tmp_path / "work"))
    assert_that(out["documents"], equal_to([{
        "id": "github:acme/tool/src/app.ts",
        "source": "github",
        "text": "const greeting: string = 'hello world';\n",
        "url": "https://github.com/acme/tool/blob/HEAD/src/app.ts",
        "meta": {"repo_name": "acme/tool", "path": "src/app.ts", "license": "MIT", "language": "TypeScript",
                 "source_file": str(path), "line": 1, "offset": 0},
    }]))
    pipeline.run().wait_until_finish()


def test_parquet_export_is_read_across_row_groups(tmp_path):
    rows = [row("acme/lib", f"pkg/mod_{n}.py", f"def f_{n}():\n    return 'value {n}'\n") for n in range(25)]
    rows.append(row("acme/lib", "bad.py", None))
    path = tmp_path / "part-000.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=4)
    assert pq.ParquetFile(path).num_row_groups == 7

    run(
        [path], Options(),
        expected_documents=[(f"github:acme/lib/pkg/mod_{n}.py", f"def f_{n}():\n    return 'value {n}'\n")
                            for n in range(25)],
        expected_drops=[("github:part-000.parquet:25", "read", "bad_schema")],
    )


def test_parquet_is_split_by_row_groups_with_the_same_result_and_row_provenance(tmp_path):
    rows = [row("acme/big", f"src/file_{n}.py", f"def g_{n}():\n    return {n} + {n}\n") for n in range(300)]
    path = tmp_path / "part-001.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=20)
    size = path.stat().st_size
    splits = ReadCodeFileDoFn(Options()).plan(str(path), size, split_bytes=size // 5)
    assert 3 <= len(splits) < 15
    assert [s.start for s in splits] == [0] + [s.stop for s in splits[:-1]]  # contiguous row groups
    assert splits[-1].stop == 15 and [s.records_before for s in splits] == [20 * s.start for s in splits]

    def provenance(document):
        meta = document["meta"]
        return document["meta"]["path"], meta["source_file"], meta["row_group"], meta["row"]

    expected = [(f"src/file_{n}.py", str(path), n // 20, n) for n in range(300)]
    with TestPipeline() as pipeline:
        out = pipeline | Read(Options(inputs=[str(path)], split_bytes=size // 5),
                              work_folder=str(tmp_path / "work"))
        assert_that(out["documents"] | beam.Map(provenance), equal_to(expected))


def test_options_change_the_filters(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(
        json.dumps(row("gnu/thing", "a.py", GOOD_PY, license="gpl-3.0")) + "\n"
        + json.dumps(row("acme/tool", "notes.txt", "Some plain notes about the tool.\n")) + "\n"
    )
    run([path], Options(licenses=["gpl-3.0"], extensions=[".py"]),
        expected_documents=[("github:gnu/thing/a.py", GOOD_PY)],
        expected_drops=[("github:acme/tool/notes.txt", "clean", "license_not_allowed")])


def test_copies_in_different_exports_are_found_and_the_smallest_id_kept(tmp_path):
    # The two exports are read by different bundles and spilled to different files: the copy marks
    # must meet the file that holds each copy.
    first, second = tmp_path / "github_000.jsonl.gz", tmp_path / "github_001.jsonl.gz"
    other = GOOD_PY + "# x\n"
    exports = {first: [row("zz/fork", "main.py", GOOD_PY), row("acme/tool", "x.py", other)],
               second: [row("aa/copy", "main.py", GOOD_PY)]}
    for path, rows in exports.items():
        with gzip.open(path, "wt", encoding="utf-8") as out:
            for item in rows:
                out.write(json.dumps(item) + "\n")
    run([first, second], Options(),
        expected_documents=[("github:aa/copy/main.py", GOOD_PY), ("github:acme/tool/x.py", other)],
        expected_drops=[("github:zz/fork/main.py", "clean", "exact_duplicate_file")])

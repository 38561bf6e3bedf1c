"""What a run leaves for the trainer, and how it is stored: the token-shard format (`shards`), the
manifest's reading and validation (`manifest`), and the one filesystem layer for local paths, s3:// and
gs:// (`storage`, with `beam_s3`'s two corrections to Beam's S3 filesystem, applied on import).

Why here: the pipeline (`llamapipe.pipeline`) writes shards and the manifest, and the trainer
(`llamapipe.model`) reads them, both through `storage`; `model/` and `tokenizer/` never import
`pipeline/`, so the format and the filesystem layer live in the lowest layer both already import,
the tokenizer's package, whose output the shards are. This package imports nothing else of the project
(a contract in pyproject.toml, `make lint`). The rest of `tokenizer/` keeps taking its files as a
parameter (`sample_sentences(files=storage)`).

The corrections of `beam_s3` are applied by importing this package (as by importing `llamapipe.pipeline`),
so a process that only trains or inspects reads an S3 OUT the same way a pipeline worker does.
"""

from llamapipe.tokenizer.format import beam_s3

beam_s3.install()  # empty objects on S3, one S3 client per process (see beam_s3.py)

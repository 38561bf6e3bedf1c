"""`llamapipe export FORMAT SHARDS DIR`: a run's token shards for the trainers people use, with the
mixture kept: Megatron-LM / NeMo indexed datasets and their `--data-path` blend (`megatron`),
nanoGPT-style flat token files (`numpy_files`), a Hugging Face dataset card (`hf_card`).

Reads the shards and the manifest (`llamapipe.tokenizer.format`) and nothing of the run's stages or its
driver: an export is a reader of finished output (the import-linter contract in pyproject.toml)."""

"""The cleaning stages of the recipe, one module each: `extract` (HTML to text, in `extract_subprocess`),
`langid` (lid.176, `lid176`), `quality` (the quality rules; Gopher's words in `gopher_words`), `dedup/`
(exact and near-duplicate removal), `line_dedup`, `perplexity` and `classifier` (trained by
`fasttext_train`).

May import: `plumbing`, the config and `llamapipe.tokenizer.format`; never the driver (`run`), `inspect`
or `report` (pyproject.toml's import contracts, `make lint`)."""

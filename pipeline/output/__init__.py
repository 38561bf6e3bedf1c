"""What a run writes under OUT: where (`layout`: every path, once), the documents (`documents`), the
rejects sample (`rejects`), the ledger (`ledger`), the token shards (`token_shards`) and their manifest
(`manifest`).

May import: the stages' registry (names and order), the config, `plumbing`, `sources` (the source names),
`llamapipe.tokenizer` and `llamapipe.model.train_config`; never the driver, `inspect` or `report`."""

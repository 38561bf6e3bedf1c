"""What a run writes under OUT: the documents (`documents`), the rejects sample (`rejects`), the ledger
(`ledger`), the token shards (`token_shards`) and their manifest (`manifest`).

May import: the stages (their names and order), `plumbing`, the config and `llamapipe.tokenizer.format`."""

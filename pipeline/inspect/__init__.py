"""`llamapipe inspect`: token shards (`shards`, `verify`), the rejects sample (`rejects`) and duplicate
clusters (`dups`) of a run's OUT; `cli` dispatches the subcommands.

May import everything below the driver (output, stages, plumbing, `llamapipe.tokenizer.format`)."""

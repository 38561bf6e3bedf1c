"""`OUT/report.html`: `build` gathers the numbers from what a run wrote, `html` lays out the page and
`charts` draws its SVG charts.

May import `output` (the ledger), the stages' registry, `plumbing` and `llamapipe.tokenizer.format`."""

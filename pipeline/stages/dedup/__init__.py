"""Document dedup, exact and near (MinHash LSH), across all sources: `deduplicate` (the stage),
`fingerprints` (what it knows of one document), `buckets` (LSH buckets grouped through files),
`connected_components` (chains of near duplicates joined, distributed) and `statistics` (cluster
statistics and example clusters for the ledger, the report and `llamapipe inspect OUT --dups`)."""

"""`llamapipe ablate`: does each cleaning stage help? The same model, tokenizer, token budget and seeds
trained on the output of each pipeline variant (`variants.py`), scored on one held-out set
(`runner.py`), reported as ablation.json and report.html (`report.py`)."""

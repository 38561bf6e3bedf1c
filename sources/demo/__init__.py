"""Demo corpus generator: a small corpus in each LLaMA source's real dump format (`llamapipe demo-data`)."""

from llamapipe.sources.demo.corpus import write_demo_corpus

__all__ = ["write_demo_corpus"]

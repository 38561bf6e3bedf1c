"""The bundled LLaMA trainer: `llama` (the network), `data` (mixture-aware streaming over the pipeline's
token shards) and `train` (the training loop: AdamW, cosine schedule, exact resume, DDP).

Submodules are imported explicitly (`from llamapipe.model.train import train`) so that importing the
package does not pull in torch."""

"""Sampling from a trained checkpoint (`llamapipe generate CHECKPOINT --prompt TEXT`).

The prompt is encoded with the SentencePiece model the shards were made with and prefixed with BOS, as
every training document is; tokens are drawn one at a time from the softmax at `temperature`, restricted
to the `top_k` most likely, until `max_new_tokens` or the end of the document (EOS, or BOS: the next
document). Each step re-runs the whole context (no key/value cache): simple, and fast enough for the
samples this prints; the context is cut to the model's `max_seq_len` when it grows past it.
"""

from __future__ import annotations

import sentencepiece as spm
import torch

from llamapipe.model.checkpoints import find_tokenizer, load_model
from llamapipe.model.llama import Transformer
from llamapipe.tokenizer.format import storage


@torch.no_grad()
def generate(
    model: Transformer,
    prompt: list[int],
    max_new_tokens: int,
    *,
    temperature: float = 0.8,
    top_k: int | None = 200,
    stop_ids: tuple[int, ...] = (),
    generator: torch.Generator | None = None,
) -> list[int]:
    """The token ids that follow `prompt` (temperature 0: greedy)."""
    if not prompt:
        raise ValueError("the prompt needs at least one token (BOS)")
    device = next(model.parameters()).device
    tokens = torch.tensor([prompt], dtype=torch.long, device=device)
    new: list[int] = []
    for _ in range(max_new_tokens):
        context = tokens[:, -model.params.max_seq_len:]
        logits = model(context)[0][0, -1]
        if temperature <= 0:
            next_id = int(logits.argmax())
        else:
            logits = logits / temperature
            if top_k is not None and top_k < logits.numel():
                threshold = torch.topk(logits, top_k).values[-1]
                logits = logits.masked_fill(logits < threshold, float("-inf"))
            probs = torch.softmax(logits, dim=-1)
            next_id = int(torch.multinomial(probs, 1, generator=generator))
        if next_id in stop_ids:
            break
        new.append(next_id)
        tokens = torch.cat([tokens, torch.tensor([[next_id]], device=device)], dim=1)
    return new


def sample(
    checkpoint: str,
    prompt: str,
    *,
    max_new_tokens: int = 100,
    temperature: float = 0.8,
    top_k: int | None = 200,
    seed: int = 0,
    tokenizer: str | None = None,
    device: str = "cpu",
) -> str:
    """Prompt plus continuation, decoded."""
    model, saved = load_model(checkpoint, device)
    info = find_tokenizer(saved, checkpoint, tokenizer)
    # The model's bytes, wherever it sits (a local file, or an object under an s3:// or gs:// OUT).
    processor = spm.SentencePieceProcessor(model_proto=storage.read_bytes(info.path))
    if processor.get_piece_size() != model.params.vocab_size:
        raise ValueError(
            f"tokenizer {info.path} has {processor.get_piece_size()} pieces, "
            f"the model {model.params.vocab_size}"
        )
    ids = [info.bos_id] + processor.encode(prompt)
    generator = torch.Generator(device=device).manual_seed(seed)
    new = generate(model, ids, max_new_tokens, temperature=temperature, top_k=top_k,
                   stop_ids=(info.bos_id, info.eos_id), generator=generator)
    return processor.decode(ids[1:] + new)

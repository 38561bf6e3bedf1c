"""A small evaluation set for the demo's benchmark decontamination (`evals/demo_eval.jsonl`), in the shape of
a multiple-choice benchmark (HellaSwag, MMLU): a context passage, a question, short choices and a label.
Its text is composed by `text.py` from its own random stream, like the rest of the demo corpus.

A few C4 documents copy one of its passages (or one question, matched whole: it is shorter than the
13-word n-grams) into one of their paragraphs; `plants.json` lists them under `contaminated`, with the
set and the copied text, and the demo config's `decontamination:` block drops them.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from llamapipe.sources.demo.text import EnglishWriter

SET_NAME = "demo_eval"
FILE_NAME = f"{SET_NAME}.jsonl"
EXAMPLES = 40  # questions in the set (any scale)
PLANTED_PASSAGES = 3  # C4 documents holding a passage, at scale 1 (at least 1)
PLANTED_QUESTIONS = 1  # C4 documents holding a whole question


@dataclass
class EvalExample:
    id: str
    passage: str
    question: str
    choices: list[str]
    label: int

    def record(self) -> dict:
        return {"id": self.id, "ctx": self.passage, "question": self.question,
                "choices": self.choices, "label": self.label}


class EvalSet:
    """The demo evaluation set, drawn from `rng` (its own stream: the corpus around it does not move)."""

    def __init__(self, rng: random.Random):
        self.examples = []
        for index in range(EXAMPLES):
            writer = EnglishWriter(rng, register="formal")
            passage = writer.paragraph(2)
            subject = writer.render("{NP}")
            subject = subject[:1].lower() + subject[1:]  # render() capitalises a sentence's start
            question = f"According to the passage, what happened to {subject} in the end?"
            choices = [writer.render("{A} {N}") for _ in range(4)]  # short: left out of the index
            self.examples.append(EvalExample(f"{SET_NAME}-{index:04d}", passage, question, choices,
                                             rng.randrange(4)))

    def write(self, folder: Path) -> int:
        folder.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps(e.record(), ensure_ascii=False) + "\n" for e in self.examples]
        (folder / FILE_NAME).write_text("".join(lines), encoding="utf-8")
        return len(lines)

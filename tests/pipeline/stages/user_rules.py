"""A user's own quality rules, as a user would write them in a module of their own, named in a config by
dotted path (`filters.rules.c4: [tests.pipeline.stages.user_rules:FewerThan100Words]`). Used by
tests/pipeline/stages/test_user_rules.py and tests/pipeline/test_beyond_recipe.py; the broken ones are the
mistakes the config check must name."""

from __future__ import annotations

from llamapipe.pipeline.stages.quality import LineCleaner


class FewerThan100Words:
    """A document rule without subclassing anything: callable, (keep, reason)."""

    name = "fewer_than_100_words"

    def __call__(self, text: str) -> tuple[bool, str]:
        if len(text.split()) < 100:
            return False, "user_fewer_than_100_words"
        return True, ""


class NoShoutedLines(LineCleaner):
    """A line cleaner: drops lines written all in capitals (at least three letters)."""

    name = "no_shouted_lines"

    def clean(self, text: str) -> str:
        def shouted(line: str) -> bool:
            letters = [c for c in line if c.isalpha()]
            return len(letters) >= 3 and all(c.isupper() for c in letters)

        return "\n".join(line for line in text.split("\n") if not shouted(line))


class EmptyReason:
    """A rule that drops everything without a reason: the drop is named after the class."""

    def __call__(self, text: str) -> tuple[bool, str]:
        return False, ""


class ReturnsABool:
    """Breaks the protocol at run time: returns a bare bool."""

    def __call__(self, text: str):
        return True


class NotARule:
    """Neither callable nor a cleaner."""

    threshold = 3


class NeedsArguments:
    def __init__(self, minimum: int):
        self.minimum = minimum

    def __call__(self, text: str) -> tuple[bool, str]:
        return True, ""

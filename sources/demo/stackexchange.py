"""Stack Exchange dump rows (`<site>.stackexchange.com/Posts.xml`)."""

from __future__ import annotations

import html
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from llamapipe.sources.demo.common import SE_SITES, Plants, Ref, draw_seed, scaled_count
from llamapipe.sources.demo.text import (
    EnglishWriter,
)
from llamapipe.sources.demo.web import escape_text

# --- Stack Exchange ---------------------------------------------------------------------------------------

_SE_TAGS = {
    "cooking": ("baking", "bread", "sauce", "knife-skills", "food-safety", "storage-method", "vegetables",
                "temperature", "substitutions", "spices", "equipment", "frying", "soup", "cheese", "eggs"),
    "gardening": ("pruning", "tomatoes", "soil", "compost", "pests", "watering", "trees", "lawn", "seeds",
                  "containers", "roses", "fertilizer", "propagation", "indoor", "vegetables"),
}


def _attr(value: object) -> str:
    """Escape an XML attribute value as the dumps do (newlines as &#xA;)."""
    escaped = html.escape(str(value), quote=True).replace("&#x27;", "'")
    return escaped.replace("\n", "&#xA;").replace("\r", "&#xD;")


def _se_date(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


@dataclass(eq=False)
class Question:
    asked: datetime
    seed: int
    scores: list[int]
    answered: list[datetime]
    planted: bool
    post_id: int = 0
    answer_ids: dict[int, int] = field(default_factory=dict)  # answer position -> post id


class StackExchangeWriter:
    """Two sites of ~80 questions (scale 1) with 0-5 answers each, and tag-wiki rows."""

    def __init__(self, rng: random.Random, scale: float, plants: Plants, link_urls: list[str]):
        self.rng = rng
        self.questions = scaled_count("se_questions_per_site", scale, 2)
        self.plants = plants
        self.link_urls = link_urls or ["https://example.org/"]

    def _body(self, rng: random.Random, writer: EnglishWriter, paragraphs: int, question: str = "") -> str:
        parts = [f"<p>{escape_text(writer.paragraph(rng.randint(2, 4)))}</p>" for _ in range(paragraphs)]
        if rng.random() < 0.3:
            items = "".join(f"<li>{escape_text(writer.sentence())}</li>\n" for _ in range(rng.randint(2, 4)))
            parts.insert(rng.randint(0, len(parts)), f"<ul>\n{items}</ul>")
        if rng.random() < 0.3:
            code = rng.choice((f"{rng.randint(150, 240)}C", f"{rng.randint(1, 4)}:{rng.randint(1, 3)}",
                               f"pH {rng.randint(5, 7)}.{rng.randint(0, 9)}", f"{rng.randint(2, 30)} g"))
            parts.append(f"<p>I measured <code>{code}</code> the last time I checked.</p>")
        if rng.random() < 0.3:
            url = html.escape(rng.choice(self.link_urls))
            parts.append(f'<p>There is more background in <a href="{url}" rel="nofollow noreferrer">this '
                         "article</a>.</p>")
        if question:
            parts.append(f"<p>{escape_text(question)}</p>")
        return "\n\n".join(parts) + "\n"

    def write(self, out: Path) -> int:
        for site, topic in SE_SITES.items():
            rows = self._site_rows(site, topic)
            lines = ['\ufeff<?xml version="1.0" encoding="utf-8"?>', "<posts>"]
            lines += ["  <row " + " ".join(f'{key}="{_attr(value)}"' for key, value in row.items()) + " />"
                      for row in rows]
            lines.append("</posts>")
            site_dir = out / f"{site}.stackexchange.com"
            site_dir.mkdir(parents=True, exist_ok=True)
            (site_dir / "Posts.xml").write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
        return self.questions * len(SE_SITES)

    def _plan(self) -> list[tuple[datetime, str, Question, int]]:
        """Posts in creation order: (time, kind q|a|w, question, answer position)."""
        rng = self.rng
        start = datetime(2012, 1, 1, tzinfo=UTC)
        posts = []
        for index in range(self.questions):
            asked = start + timedelta(seconds=rng.randint(0, 11 * 365 * 86400),
                                      milliseconds=rng.randint(0, 999))
            scores = [rng.randint(-3, 25) for _ in range(rng.choices(range(6), (10, 25, 25, 20, 12, 8))[0])]
            if index < 4:  # planted: 10 must sort above 9 (numerically), a negative score below both
                scores = [9, -2, 10, rng.randint(0, 8)]
                rng.shuffle(scores)
            answered = [asked + timedelta(seconds=rng.randint(600, 90 * 86400),
                                          milliseconds=rng.randint(0, 999)) for _ in scores]
            question = Question(asked, draw_seed(rng), scores, answered, index < 4)
            posts.append((asked, "q", question, 0))
            posts += [(when, "a", question, position) for position, when in enumerate(answered)]
        posts += [(start + timedelta(days=30), "w", None, 4), (start + timedelta(days=30), "w", None, 5)]
        posts.sort(key=lambda post: (post[0], post[1], post[3]))
        return posts

    def _site_rows(self, site: str, topic: str) -> list[dict]:
        rng = self.rng
        posts = self._plan()
        users = [rng.randint(2, 9000) for _ in range(60)]
        ids, next_id = [], 1
        # Ids grow with time, with gaps (deleted posts) as in the dumps.
        for _, kind, question, position in posts:
            ids.append(next_id)
            if kind == "q":
                question.post_id = next_id
            elif kind == "a":
                question.answer_ids[position] = next_id
            next_id += rng.randint(1, 3)
        rows = []
        for post_id, (when, kind, question, position) in zip(ids, posts, strict=True):
            licence = "CC BY-SA 3.0" if when.year < 2018 else "CC BY-SA 4.0"
            common = {"CreationDate": _se_date(when)}
            if kind == "w":  # tag wiki excerpt (4) and body (5)
                writer = EnglishWriter(random.Random(post_id), topic=topic)
                body = writer.sentence() if position == 4 else f"<p>{escape_text(writer.paragraph(3))}</p>\n"
                rows.append({"Id": post_id, "PostTypeId": str(position), **common, "Score": 0, "Body": body,
                             "OwnerUserId": rng.choice(users), "LastActivityDate": _se_date(when),
                             "CommentCount": 0, "ContentLicense": licence})
                ref = Ref("stackexchange", f"stackexchange:{site}.stackexchange.com/{post_id}")
                self.plants.add("stackexchange_non_questions", ref, post_type=position)
                continue
            prng = random.Random(question.seed + (0 if kind == "q" else 1 + position))
            writer = EnglishWriter(prng, topic=topic, register="casual")
            if kind == "a":
                owner = ({"OwnerUserId": rng.choice(users)} if prng.random() < 0.9
                         else {"OwnerDisplayName": writer.person()})
                body = self._body(prng, writer, prng.randint(1, 4))
                rows.append({"Id": post_id, "PostTypeId": "2", "ParentId": question.post_id, **common,
                             "Score": question.scores[position], "Body": body, **owner,
                             "LastActivityDate": _se_date(when), "CommentCount": prng.randint(0, 4),
                             "ContentLicense": licence})
                continue
            asking = EnglishWriter(prng, topic=topic, register="question")
            title = asking.sentence()
            row = {"Id": post_id, "PostTypeId": "1"}
            if question.answer_ids and prng.random() < 0.5:
                row["AcceptedAnswerId"] = prng.choice(sorted(question.answer_ids.values()))
            tags = "".join(f"<{tag}>" for tag in prng.sample(_SE_TAGS[site], prng.randint(1, 3)))
            row.update({**common, "Score": prng.randint(-2, 40), "ViewCount": prng.randint(20, 90000),
                        "Body": self._body(prng, writer, prng.randint(1, 3), asking.sentence()),
                        "OwnerUserId": rng.choice(users),
                        "LastActivityDate": _se_date(max([when, *question.answered])), "Title": title,
                        "Tags": tags, "AnswerCount": len(question.scores), "CommentCount": prng.randint(0, 6),
                        "ContentLicense": licence})
            rows.append(row)
            if question.planted:
                order = sorted(range(len(question.scores)), key=lambda i: -question.scores[i])
                ref = Ref("stackexchange", f"stackexchange:{site}.stackexchange.com/{post_id}")
                self.plants.add("stackexchange_answer_order", ref,
                                answer_ids_by_score=[question.answer_ids[i] for i in order],
                                scores_by_score=[question.scores[i] for i in order])
        return rows

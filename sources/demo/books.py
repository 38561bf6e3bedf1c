"""Project Gutenberg plain-text books (UTF-8, CRLF)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from llamapipe.sources.demo.common import Plants, Ref, draw_seed, scaled_count
from llamapipe.sources.demo.text import (
    Character,
    EnglishWriter,
    lexicon,
    load_snippets,
    title_case,
)

# --- Books -------------------------------------------------------------------------------------------------

_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV", "XV",
          "XVI", "XVII", "XVIII", "XIX")
# Header styles of the real files: the current one, the 2008-2015 "THIS" one, and one without spaces.
_MARKERS = {
    "modern": ("The Project Gutenberg eBook of {title}, by {author}",
               "*** START OF THE PROJECT GUTENBERG EBOOK {upper} ***",
               "*** END OF THE PROJECT GUTENBERG EBOOK {upper} ***"),
    "this": ("The Project Gutenberg EBook of {title}, by {author}",
             "*** START OF THIS PROJECT GUTENBERG EBOOK {upper} ***",
             "*** END OF THIS PROJECT GUTENBERG EBOOK {upper} ***"),
    "nospace": ("The Project Gutenberg eBook, {title}, by {author}",
                "***START OF THE PROJECT GUTENBERG EBOOK {upper}***",
                "***END OF THE PROJECT GUTENBERG EBOOK {upper}***"),
}


def wrap(text: str, width: int = 70) -> list[str]:
    """Greedy word wrap (Gutenberg files are wrapped at about 70 characters)."""
    lines, current = [], ""
    for word in text.split(" "):
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    return lines + [current] if current else lines


@dataclass(eq=False)
class Book:
    ref: Ref
    number: int
    seed: int
    title: str
    author: str
    style: str  # a key of _MARKERS
    release: str
    original: Book | None = None  # set on another edition of a book (a near duplicate)


class BooksWriter:
    """~12 novels of 10-20k words with Gutenberg headers, plus a second edition of one of them."""

    def __init__(self, rng: random.Random, scale: float, plants: Plants):
        count = scaled_count("books", scale)
        numbers = rng.sample(range(10000, 70000), count + 1)
        styles = ["modern", "this", "nospace"] + ["modern"] * 40
        self.books: list[Book] = []
        for index in range(count):
            seed = draw_seed(rng)
            naming = random.Random(seed)
            writer = EnglishWriter(naming, register="narrative", cast=self.cast(naming))
            title = title_case(writer.render(naming.choice(lexicon().words["book_titles"])))
            number = numbers[index]
            book = Book(Ref("books", f"books:pg{number}"), number, seed, title, writer.person(),
                        styles[index % len(styles)], self._release(rng, number))
            self.books.append(book)
            plants.add("book_header_styles", book.ref, style=book.style)
        original = self.books[min(3, count - 1)]
        edition = Book(Ref("books", f"books:pg{numbers[-1]}"), numbers[-1], original.seed, original.title,
                       original.author, "this" if original.style == "modern" else "modern",
                       self._release(rng, numbers[-1]), original=original)
        self.books.append(edition)
        plants.pair("near_duplicates", original.ref, edition.ref)

    @staticmethod
    def _release(rng: random.Random, number: int) -> str:
        month = rng.choice(lexicon().words["months"])
        return f"{month} {rng.randint(1, 28)}, {1996 + number // 4000} [eBook #{number}]"

    @staticmethod
    def cast(rng: random.Random) -> tuple[Character, ...]:
        words = lexicon().words
        cast = []
        for _ in range(rng.randint(3, 5)):
            female = rng.random() < 0.5
            first = rng.choice(words["first_names.f"] if female else words["first_names.m"])
            cast.append(Character(first, rng.choice(words["last_names"]), female))
        return tuple(cast)

    def body(self, book: Book) -> list[str]:
        """Title page, contents and chapters; another edition changes about 0.5% of the words."""
        rng = random.Random(book.seed)
        writer = EnglishWriter(rng, register="narrative", cast=self.cast(rng))
        target = rng.randint(10000, 20000)
        chapters = min(len(_ROMAN), max(5, target // 1600))
        titles = [title_case(writer.render("the {A} {HN}")) for _ in range(chapters)]
        lines = [book.title.upper(), "", f"By {book.author}", "", "", "CONTENTS", "",
                 *(f"     CHAPTER {_ROMAN[i]}. {titles[i]}" for i in range(chapters)), "", ""]
        for index in range(chapters):
            lines += ["", "", f"CHAPTER {_ROMAN[index]}.", "", titles[index].upper(), "", ""]
            written = 0
            while written < target // chapters:
                paragraph = writer.paragraph(rng.randint(1, 6))
                written += paragraph.count(" ") + 1
                lines += wrap(paragraph) + [""]
        lines += ["", "THE END", ""]
        if book.original is not None:
            tokens = "\n".join(lines).split(" ")
            edit = random.Random(book.number)
            for position in edit.sample(range(len(tokens)), len(tokens) // 200):
                if tokens[position].isalpha() and tokens[position].islower():
                    tokens[position] = edit.choice(lexicon().general_adjectives)
            lines = " ".join(tokens).split("\n")
        return lines

    def write(self, out: Path) -> int:
        out.mkdir(parents=True, exist_ok=True)
        snippets = load_snippets("pages")
        for book in self.books:
            first, start, end = (marker.format(title=book.title, author=book.author, upper=book.title.upper())
                                 for marker in _MARKERS[book.style])
            credits = "Produced by volunteers of the llamapipe demo project"
            if book.original is not None:
                credits = "Second edition. " + credits
            header = [first, "", *wrap(snippets["gutenberg.intro"][0]), "", "", f"Title: {book.title}", "",
                      f"Author: {book.author}", "", f"Release Date: {book.release}", "", "Language: English",
                      "", "Character set encoding: UTF-8", "", f"Credits: {credits}", "", "", start,
                      "", "", ""]
            footer = ["", "", "", end, "", ""]
            for paragraph in snippets["gutenberg.licence"]:
                footer += wrap(paragraph) + [""]
            text = "\r\n".join(header + self.body(book) + footer) + "\r\n"
            (out / f"pg{book.number}.txt").write_bytes(text.encode("utf-8"))
        return len(self.books)

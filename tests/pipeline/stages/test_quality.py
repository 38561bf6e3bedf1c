"""Each heuristic drops what it should, with the reason a user will see in the ledger."""

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from llamapipe.pipeline.stages.quality import (
    C4Document,
    C4Lines,
    CCNetMinLength,
    GopherQuality,
    GopherRepetition,
    QualityFilter,
    build_rules,
)

PROSE = (
    "The river valley was settled by farmers who grew wheat and barley on the terraces.\n"
    "Over the centuries they built stone walls to protect the fields from the spring floods.\n"
    "Travellers describe a quiet market town with a church, a mill and a bridge of seven arches.\n"
    "In the nineteenth century a railway connected the valley with the industrial cities of the north.\n"
    "Today the old mill houses a museum that explains how flour was ground with water power.\n"
    "Visitors can walk along the canal and watch herons fishing in the shallow water near the locks.\n"
)


def test_ccnet_min_length_drops_short_pages():
    assert CCNetMinLength()("Too short.") == (False, "too_short")
    assert CCNetMinLength()(PROSE) == (True, "")


def test_c4_lines_keeps_sentences_and_drops_menus_and_cookie_lines():
    text = "Home | About | Contact\nWe use cookies to improve your experience.\n" + PROSE + "Read more"
    cleaned = C4Lines().clean(text)
    assert "Home | About" not in cleaned
    assert "cookies" not in cleaned
    assert "Read more" not in cleaned
    assert cleaned.splitlines()[0].startswith("The river valley")


def test_c4_document_rules():
    assert C4Document()(PROSE + "Lorem ipsum dolor sit amet.") == (False, "c4_lorem_ipsum")
    assert C4Document()(PROSE + "Use the {braces} wisely.") == (False, "c4_curly_bracket")
    assert C4Document()("One sentence. Two sentences.") == (False, "c4_too_few_sentences")
    assert C4Document()(PROSE) == (True, "")


def test_gopher_quality_drops_gibberish_and_keeps_prose():
    gibberish = " ".join("xq" + "z" * (i % 7) + "kw" for i in range(80))
    assert GopherQuality()(gibberish) == (False, "gopher_stop_words")
    long_words = " ".join(["incomprehensibilities"] * 60)
    assert GopherQuality()(long_words) == (False, "gopher_mean_word_length")
    assert GopherQuality()("the cat and the dog") == (False, "gopher_short_doc")
    numbers = " ".join(str(i) for i in range(100)) + " the and of to"
    assert GopherQuality()(numbers)[1] in {"gopher_alpha_words", "gopher_mean_word_length"}
    assert GopherQuality()(PROSE) == (True, "")


def test_gopher_repetition_drops_spam():
    spam = "\n".join(["Buy cheap watches now, best price, click here!"] * 12)
    keep, reason = GopherRepetition()(spam)
    assert not keep and reason.startswith("gopher_dup")
    assert GopherRepetition()(PROSE) == (True, "")


def test_unknown_rule_name_is_an_error():
    with pytest.raises(ValueError, match="unknown filter rule 'gopher_typo'"):
        build_rules(["gopher_typo"])


def test_quality_filter_in_beam_routes_rejects_with_reasons():
    docs = [
        {"id": "commoncrawl:a", "source": "commoncrawl", "text": PROSE, "url": "", "meta": {}},
        {"id": "commoncrawl:b", "source": "commoncrawl", "text": "short", "url": "", "meta": {}},
        {"id": "github:c", "source": "github", "text": "x=1", "url": "", "meta": {}},
    ]
    rules = {"commoncrawl": ["ccnet_min_length", "gopher_repetition", "gopher_quality"]}
    with TestPipeline() as p:
        out = p | beam.Create(docs) | QualityFilter(rules)
        assert_that(out["documents"] | "Ids" >> beam.Map(lambda d: d["id"]),
                    equal_to(["commoncrawl:a", "github:c"]), label="kept")
        assert_that(out["dropped"] | "Reasons" >> beam.Map(lambda d: (d["id"], d["stage"], d["reason"])),
                    equal_to([("commoncrawl:b", "quality", "too_short")]), label="dropped")


def test_c4_lines_follow_c4s_order_of_checks():
    policy = "Our site uses cookies to give you the best experience possible."
    assert policy not in C4Lines().clean(PROSE + policy)
    # C4 checks "lorem ipsum" before "javascript" and "{" before the policy lines: the page is dropped
    cleaned = C4Lines().clean(PROSE + "Lorem ipsum javascript dolor sit amet, consectetur.")
    assert C4Document()(cleaned) == (False, "c4_lorem_ipsum")
    cleaned = C4Lines().clean(PROSE + "Read our privacy policy at {site} before you sign up.")
    assert C4Document()(cleaned) == (False, "c4_curly_bracket")
    # ... and a line that only mentions cookies (not one of C4's policy phrases) stays
    assert "cookies" in C4Lines().clean(PROSE + "She baked cookies for the whole village that day.")


def test_redpajama_code_rules():
    from llamapipe.pipeline.stages.quality import RedPajamaCode

    code = "def add(a, b):\n    return a + b\n\n\nprint(add(1, 2))\n"
    assert RedPajamaCode()(code) == (True, "")
    assert RedPajamaCode()("x = '" + "a" * 1200 + "'\n") == (False, "code_line_too_long")
    assert RedPajamaCode()(("y = " + "b" * 150 + "\n") * 5) == (False, "code_mean_line_too_long")
    assert RedPajamaCode()("{}[]();\n" * 20) == (False, "code_low_alphanumeric")
    assert RedPajamaCode()("10 20 30 40 a1\n" * 10) == (False, "code_low_alpha_per_token")
    assert RedPajamaCode()("") == (False, "code_empty")


def test_gopher_counts_hashes_and_ellipses_each_against_its_own_ratio():
    # Rae et al. 2021: "a symbol-to-word ratio greater than 0.1 for either the hash symbol or the ellipsis"
    hashes = PROSE + " ".join(["#tag"] * 16)  # 16 of 135 words ("#" and "tag" are two)
    ellipses = PROSE + " ".join(["wait..."] * 16)
    both = PROSE + " ".join(["#tag"] * 10 + ["wait..."] * 10)
    assert GopherQuality()(hashes) == (False, "gopher_hash_ratio")
    assert GopherQuality()(ellipses) == (False, "gopher_ellipsis_ratio")
    assert GopherQuality()(both) == (True, "")  # 0.07 each: neither ratio is over 0.1 (together 0.14)


def test_gopher_bullets_and_stop_words_as_datatrove():
    item = "Fresh apples and pears from the orchard of the valley farm with care\n"
    assert GopherQuality()(("- " + item) * 10) == (False, "gopher_bullet_lines")
    assert GopherQuality()(("\u2022 " + item) * 10) == (False, "gopher_bullet_lines")
    assert GopherQuality()(("* " + item) * 10) == (True, "")  # "*" is not a bullet
    # two different stop words, as written: "The ... the" is one, "THE" none
    one_stop_word = " ".join(["the", "cat", "sat", "on", "mats", "while", "birds", "sang"] * 8)
    assert GopherQuality()(one_stop_word) == (False, "gopher_stop_words")
    assert GopherQuality()(one_stop_word + " and so") == (True, "")


def test_gopher_words_split_like_spacy():
    from llamapipe.pipeline.stages.gopher_words import gopher_words

    assert gopher_words("Don't stop (now), it's 85°C. See e.g. U.S. and/or www.x.org :-).") == [
        "Do", "n't", "stop", "(", "now", ")", ",", "it", "'s", "85", "°", "C", ".", "See", "e.g.", "U.S.",
        "and/or", "www.x.org", ":-)", "."]


def test_c4_counts_sentences_line_by_line():
    from llamapipe.pipeline.stages.quality import c4_sentence_count

    assert c4_sentence_count("One sentence without an end mark") == 1
    assert c4_sentence_count("Mr. Smith came home. He slept! Did he dream? Yes.") == 4
    assert c4_sentence_count("In 2019. the rules changed, e.g. here.") == 1
    # three lines of one sentence each are enough for C4 (c4_utils: 3 sentences)
    assert C4Document()("First line of the page.\nSecond line of the page.\nThird line of the page.") == (
        True, "")

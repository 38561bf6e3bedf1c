"""PII redaction (pipeline/stages/pii.py): the patterns one form at a time, the classification of
addresses with `ipaddress` (public replaced; private, loopback, link-local, multicast, reserved and
documentation kept), addresses planted in real texts of ../shared/realdata (every planted public one
replaced, every private one kept, nothing else changed), and the stage in a Beam pipeline with its counts.
The stage in a whole run, with the ledger and the report, is tests/pipeline/test_beyond_recipe.py."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from llamapipe.pipeline.config import PIIConfig
from llamapipe.pipeline.plumbing.drops import DOCUMENTS, DROPPED, LEDGER_ROWS
from llamapipe.pipeline.stages.pii import (
    EMAIL_PLACEHOLDER as E,
)
from llamapipe.pipeline.stages.pii import (
    IP_PLACEHOLDER as IP,
)
from llamapipe.pipeline.stages.pii import (
    PIIRedaction,
    Redactor,
    is_public_ip,
)
from llamapipe.pipeline.stages.registry import PII_DOCUMENTS, PII_REDACTED
from tests.conftest import require_realdata
from tests.pipeline.stages.real_texts import _stackexchange_threads, c4_pages

REDACT = Redactor()

CASES = [
    # e-mail addresses
    ("write to jane.doe@gmail.com today.", f"write to {E} today."),
    ("<a href=\"mailto:bob@corp.co.uk\">", f"<a href=\"mailto:{E}\">"),
    ("https://x.org/form?contact=jane@x-mail.org&lang=en", f"https://x.org/form?contact={E}&lang=en"),
    ("https://user:s3cret@host.com/path", f"https://user:{E}/path"),  # credentials in a URL
    ("o'brien+tag@mail.ie, a_b%c@d.io", f"{E}, {E}"),
    ("https://medium.com/@jane.doe/my-post", None),  # a handle after a path: no local part
    ("icon@2x.png logo@3x.webp", None),  # retina image names
    ("python@2.7, pkg@1.2.3", None),  # numeric "top-level domains": versions
    ("john@example.com, a@b.example.org, x@host.test", None),  # reserved example domains (RFC 2606/6761)
    ("@decorator and user@localhost", None),
    # IPv4
    ("dns 8.8.8.8.", f"dns {IP}."),
    ("http://93.184.216.34:8080/x", f"http://{IP}:8080/x"),
    ("1.1.1.1/32", f"{IP}/32"),
    ("10.0.0.1 172.16.5.4 192.168.1.1 100.64.0.1", None),  # private, shared (RFC 1918, 6598)
    ("127.0.0.1 169.254.10.1 0.0.0.0 255.255.255.255", None),  # loopback, link-local, unspecified, broadcast
    ("224.0.0.251 239.1.2.3 240.0.0.1", None),  # multicast (is_global says True), reserved
    ("192.0.2.1 198.51.100.7 203.0.113.9", None),  # documentation (RFC 5737)
    ("01.02.03.04 1.2.3.4.5 1.2.3.456 a1.2.3.4", None),  # leading zeros, longer runs, octet > 255
    # version strings shaped like public addresses
    ("version 1.2.3.4, v1.2.3.4, Release 2.0.0.1, firmware v. 8.8.4.4", None),
    ("conversion 1.2.3.4", f"conversion {IP}"),  # no version word: an address (erring on privacy)
    # IPv6
    ("[2001:4860:4860::8888]:53", f"[{IP}]:53"),
    ("2a00:1450:4001:82a::200e and 2606:4700:4700::1111.", f"{IP} and {IP}."),
    ("2001:0db8:85a3:0000:0000:8a2e:0370:7334 3fff::1", None),  # documentation (RFC 3849, 9637)
    ("fe80::1%eth0 ::1 :: fc00::5 ff02::1", None),  # link-local, loopback, unspecified, ULA, multicast
    ("::ffff:8.8.8.8 ::ffff:10.0.0.1", f"{IP} ::ffff:10.0.0.1"),  # IPv4-mapped: its IPv4 decides
    ("std::vector a::b dead::beef 12:30:45 f :: Int -> Int", None),  # C++, reserved ::/8, times, Haskell
    # placeholders are not addresses: redacting twice changes nothing
    (f"{E} {IP}", None),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_patterns(text, expected):
    redacted, counts = REDACT.redact(text)
    assert redacted == (text if expected is None else expected)
    assert sum(counts.values()) == redacted.count(E) + redacted.count(IP) - text.count(E) - text.count(IP)


def test_kinds_are_independent():
    text = "jane@mail.com at 8.8.8.8"
    assert Redactor(["email"]).redact(text) == (f"{E} at 8.8.8.8", {"email": 1})
    assert Redactor(["ip"]).redact(text) == (f"jane@mail.com at {IP}", {"ip": 1})
    assert Redactor([]).redact(text) == (text, {})


def test_public_is_ipaddress_is_global_without_its_surprises():
    assert is_public_ip("8.8.8.8") and is_public_ip("2606:4700:4700::1111")
    for address in ("224.0.0.1", "a::b", "3fff::1", "ff0e::1", "not an address", "999.1.1.1"):
        assert not is_public_ip(address), address


PUBLIC = ["jane.roe@mailbox.org", "8.8.4.4", "k.smith@uni-example.de", "2a00:1450:4001:82a::200e",
          "151.101.1.69", "ops@infra.net", "2606:4700:4700::1111", "1.1.1.1"]
PRIVATE = ["192.168.0.12", "10.1.2.3", "127.0.0.1", "fe80::1", "2001:db8::7", "192.0.2.44",
           "info@example.com", "172.16.5.4"]


def test_addresses_planted_in_real_texts():
    """Real C4 pages and Stack Exchange threads (245 texts; the Wikipedia sample takes 15 s to render),
    each with one planted sentence: every planted public address is replaced, every private one kept,
    every other character unchanged."""
    realdata = require_realdata()
    texts = [t.text for t in c4_pages(realdata) + _stackexchange_threads(realdata) if t.text.strip()]
    assert len(texts) >= 200
    sentence = "Contact {} (not {}) for details."
    exact = 0
    for i, text in enumerate(texts):
        public, private = PUBLIC[i % len(PUBLIC)], PRIVATE[i % len(PRIVATE)]
        cut = text.find("\n") + 1 or len(text)
        planted = text[:cut] + sentence.format(public, private) + "\n" + text[cut:]
        redacted, counts = REDACT.redact(planted)
        assert public not in redacted and private in redacted
        if REDACT.redact(text)[0] != text:
            continue  # the real text has addresses of its own (a few): those are replaced too
        placeholder, kind = (E, "email") if "@" in public else (IP, "ip")
        assert redacted == text[:cut] + sentence.format(placeholder, private) + "\n" + text[cut:]
        assert counts == {kind: 1}
        exact += 1
    assert exact >= 200


def test_the_stage_redacts_drops_nothing_and_counts_per_source_and_kind():
    docs = [
        {"id": "1", "source": "c4", "text": "mail a.b@mail.com or c.d@mail.com, server 8.8.8.8", "meta": {}},
        {"id": "2", "source": "c4", "text": "private 10.0.0.1 only", "meta": {}},
        {"id": "3", "source": "github", "text": "host = '2606:4700:4700::1111'", "meta": {}},
    ]
    with TestPipeline() as p:
        out = p | beam.Create(docs) | PIIRedaction(PIIConfig(enabled=True))
        assert_that(out[DOCUMENTS] | "Texts" >> beam.Map(lambda d: (d["id"], d["text"])), equal_to([
            ("1", f"mail {E} or {E}, server {IP}"), ("2", "private 10.0.0.1 only"), ("3", f"host = '{IP}'")]),
            label="Redacted")
        assert_that(out[DROPPED], equal_to([]), label="NoDrops")
        assert_that(out[LEDGER_ROWS], equal_to([
            ["c4", PII_REDACTED, "email", 2, 0, 0], ["c4", PII_DOCUMENTS, "email", 1, 0, 0],
            ["c4", PII_REDACTED, "ip", 1, 0, 0], ["c4", PII_DOCUMENTS, "ip", 1, 0, 0],
            ["github", PII_REDACTED, "ip", 1, 0, 0], ["github", PII_DOCUMENTS, "ip", 1, 0, 0]]),
            label="Counts")


def test_off_the_stage_changes_nothing():
    docs = [{"id": "1", "source": "c4", "text": "a.b@mail.com 8.8.8.8"}]
    with TestPipeline() as p:
        out = p | beam.Create(docs) | PIIRedaction(PIIConfig(enabled=False))
        assert_that(out[DOCUMENTS], equal_to(docs), label="Same")
        assert_that(out[LEDGER_ROWS], equal_to([]), label="NoCounts")


def test_config_names_an_unknown_kind():
    from llamapipe.pipeline.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=r"pii.*unknown kind 'phone'"):
        parse_config({"output": "o", "sources": {"c4": {"inputs": ["x"]}},
                      "pii": {"kinds": ["email", "phone"]}})
    assert parse_config({"output": "o", "sources": {"c4": {"inputs": ["x"]}}}).pii.enabled is False

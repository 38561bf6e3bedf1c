"""PII redaction: e-mail addresses and public IP addresses replaced by fixed placeholders. Off by default
(`pii.enabled`): the LLaMA paper redacts nothing, and reproducing its recipe means keeping its text.

What is replaced, and by what:
- E-mail addresses -> `|||EMAIL_ADDRESS|||`, public IPv4 and IPv6 addresses -> `|||IP_ADDRESS|||`: Dolma's
  placeholders (Soldaini et al. 2024, section 3.1; OLMo's tokenizer has them as special tokens), fixed
  strings rather than datatrove's rotating look-alike addresses (`PIIFormatter`, whose six IPv4
  "replacements" are themselves public addresses): a placeholder cannot be taken for a real address, is
  counted by a plain string search, and redacting twice changes nothing (it holds no `@` and no digit).
- Which IPs: as datatrove's `PIIFormatter(only_remove_public_ips=True)`, a public address only, classified
  with the standard `ipaddress` module, but not with `is_global` alone, which says True for multicast
  (224.0.0.0/4, ff00::/8), and on Python 3.11 for IPv6 in reserved ::/8 (`a::b` in C++ or Perl text) and
  for the new documentation range 3fff::/20 (RFC 9637): an address is public when `is_global` and not
  multicast, reserved, unspecified, loopback, link-local or a documentation range (RFC 5737 192.0.2.0/24,
  198.51.100.0/24, 203.0.113.0/24; RFC 3849 2001:db8::/32; RFC 9637 3fff::/20), and an IPv6 address must
  also be in 2000::/3, the only global unicast block IANA allocates from (RFC 4291 section 2.4); an
  IPv4-mapped IPv6 address (::ffff:a.b.c.d) is its IPv4 address. Private (RFC 1918), shared (100.64/10),
  loopback, link-local and documentation addresses stay: they identify nobody.
- E-mail addresses of the reserved example domains (RFC 2606 example.com/.net/.org, and the TLDs .example,
  .test, .invalid, .localhost of RFC 6761) stay, as the documentation IP ranges do.

Patterns (datatrove's, tightened where real text showed false matches; `tests/pipeline/stages/test_pii.py`):
- E-mail: datatrove's local part without the characters that also delimit URLs (`/ = ? & #`): so
  `https://medium.com/@jane.doe` (a handle after a path) and `?contact=jane@x.org` (only `jane@x.org` is
  replaced) come out right; the domain's last label must start with a letter (so `python@2.7`, `pkg@1.2.3`
  are not addresses) and must not be an image extension (`icon@2x.png`, the retina naming convention).
  An address in a URL's user part (`https://user:secret@host.com/`) is replaced: it is credentials.
- IPv4: four dotted decimals 0-255, not inside a longer dotted or alphanumeric run (`1.2.3.4.5`,
  `v1.2.3.4`, `a1.2.3.4`), leading zeros refused by `ipaddress` (`01.02.03.04` is no address). A version
  number shaped like a public address (`1.2.3.4` is APNIC's) is an address to the pattern; it is kept only
  when a version word comes just before it (`version 1.2.3.4`, `v. 10.0.0.1`, `release`, `build`,
  `firmware`...), else it is redacted, erring on the side of privacy as datatrove does.
- IPv6: a run of hex digits and colons (optionally ending in a dotted IPv4) with at least two colons, not
  touching a word character, that `ipaddress.IPv6Address` parses whole: all the RFC 4291/5952 forms
  (full, `::`-compressed, IPv4-embedded), and not times (`12:30:45`) or C++ scopes (`std::vector`).

Where it runs: a corpus-wide stage after the reference classifier, the last before the documents are
written (`recipe.build_cleaning`), so that no other stage sees redacted text: dedup's fingerprints, line
dedup (the same contact line on two sites would become the same line once redacted, and be removed from
both) and the classifier decide on the text as read, every drop decision is the one the LLaMA recipe makes
with `pii` off, and only kept documents are scanned. It drops nothing; the text outside a replaced address
is unchanged byte for byte. What it does not cover: the rejects sample (OUT/rejects), the text of dropped
documents, which keeps its addresses.

Counts: per source and kind, the addresses replaced (`pii_redacted`) and the documents that had one
(`pii_documents`) go to the ledger (exact, from the pipeline's data) and to Beam counters
(`<source>.pii`: `redacted.<kind>`) for runners that report metrics.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

import apache_beam as beam

from llamapipe.pipeline.config import PII_KINDS, PIIConfig
from llamapipe.pipeline.plumbing.drops import LEDGER_ROWS
from llamapipe.pipeline.stages.base import Stage
from llamapipe.pipeline.stages.registry import PII, PII_DOCUMENTS, PII_REDACTED

EMAIL_PLACEHOLDER = "|||EMAIL_ADDRESS|||"  # Dolma's
IP_PLACEHOLDER = "|||IP_ADDRESS|||"  # Dolma's
PLACEHOLDERS = {"email": EMAIL_PLACEHOLDER, "ip": IP_PLACEHOLDER}

_LOCAL_CHAR = r"[A-Za-z0-9!$%'*+^_`{|}~-]"  # datatrove's, without the URL delimiters / = ? & #
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TLD = r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_LOCAL_START = r"(?<![A-Za-z0-9!$%'*+^_`{|}~-])(?=[A-Za-z0-9.!$%'*+^_`{|}~-]{1,64}@)"
EMAIL = (rf"{_LOCAL_START}{_LOCAL_CHAR}+(?:\.{_LOCAL_CHAR}+)*"
         rf"@(?:{_LABEL}\.)+{_TLD}(?![A-Za-z0-9-])")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
IPV6 = (r"(?<![\w:.])(?=[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:]{2,39}"
        r"(?:(?<=:)\d{1,3}(?:\.\d{1,3}){3})?(?!\.?[\w:])")
EMAIL_RE = re.compile(EMAIL)
IPV6_RE = re.compile(IPV6)
IPV4_RE = re.compile(IPV4)
# Speed (benchmarks/beyond_recipe.py): each kind is looked for only in a text that can hold one (an `@`;
# two colons; a run of digits and dots), and an IPv4 candidate is found by a pattern that starts with a
# character class (which `re` scans for quickly) and checked after: one pattern of the three kinds ran at
# 7 MB/s on real text, mostly spent trying each word as an e-mail's local part.
_IPV6_HINT = re.compile(r"::|[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:")
_IPV4_CANDIDATE = re.compile(r"[0-9][0-9.]{6,14}")
_WORD_OR_DOT = re.compile(r"[\w.]")

# Words that make the dotted number after them a version, not an address.
_VERSION_BEFORE = re.compile(
    r"(?:\b(?:version|ver|v|rev|revision|release|build|firmware|kernel|patch)\.?\s*)$", re.I)
_IMAGE_TLDS = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tif", "tiff", "avif"})
_EXAMPLE_DOMAINS = ("example.com", "example.net", "example.org")
_RESERVED_TLDS = frozenset({"example", "test", "invalid", "localhost"})
_DOCUMENTATION = tuple(ipaddress.ip_network(n) for n in (
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20"))
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")


def is_public_ip(address: str) -> bool:
    """Whether `address` (an IPv4 or IPv6 address as written) is a public, personal one (see above)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.version == 6 and ip not in _GLOBAL_UNICAST:
        return False
    if any(ip in network for network in _DOCUMENTATION if network.version == ip.version):
        return False
    return (ip.is_global and not ip.is_multicast and not ip.is_reserved and not ip.is_unspecified
            and not ip.is_loopback and not ip.is_link_local and not ip.is_private)


def is_personal_email(address: str) -> bool:
    """An address as the pattern found it: not one of the reserved example domains, not an image name."""
    domain = address.rsplit("@", 1)[1].lower()
    tld = domain.rsplit(".", 1)[-1]
    if tld in _IMAGE_TLDS or tld in _RESERVED_TLDS:
        return False
    return not any(domain == d or domain.endswith("." + d) for d in _EXAMPLE_DOMAINS)


class Redactor:
    """`redact(text)` -> (text with the configured kinds replaced, {kind: replacements})."""

    def __init__(self, kinds: Iterable[str] = PII_KINDS):
        self.kinds = frozenset(kinds)
        unknown = sorted(self.kinds - set(PII_KINDS))
        if unknown:
            raise ValueError(f"unknown PII kind {unknown[0]!r} (known: {', '.join(PII_KINDS)})")

    def redact(self, text: str) -> tuple[str, dict[str, int]]:
        counts: dict[str, int] = {}

        def replaced(kind: str, placeholder: str, found: str) -> str:
            counts[kind] = counts.get(kind, 0) + 1
            return placeholder

        if "email" in self.kinds and "@" in text:
            text = EMAIL_RE.sub(lambda m: replaced("email", EMAIL_PLACEHOLDER, m.group(0))
                                if is_personal_email(m.group(0)) else m.group(0), text)
        if "ip" in self.kinds:
            if _IPV6_HINT.search(text):
                text = IPV6_RE.sub(lambda m: replaced("ip", IP_PLACEHOLDER, m.group(0))
                                   if is_public_ip(m.group(0)) else m.group(0), text)
            text = self._redact_ipv4(text, replaced)
        return text, counts

    @staticmethod
    def _redact_ipv4(text: str, replaced) -> str:
        """Dotted quads not inside a longer dotted or alphanumeric run, not after a version word."""
        parts, last = [], 0
        for candidate in _IPV4_CANDIDATE.finditer(text):
            start, found = candidate.start(), candidate.group(0)
            if found.endswith("."):  # a sentence's full stop, not part of the address
                found = found[:-1]
            end = start + len(found)
            if (start > 0 and _WORD_OR_DOT.match(text, start - 1)) or not IPV4_RE.fullmatch(found):
                continue
            after = text[end:end + 2]
            if after[:1].isalnum() or after[:1] == "_" or (after[:1] == "." and after[1:2].isalnum()):
                continue
            if not is_public_ip(found) or _VERSION_BEFORE.search(text, max(0, start - 24), start):
                continue
            parts += [text[last:start], replaced("ip", IP_PLACEHOLDER, found)]
            last = end
        return "".join(parts) + text[last:] if parts else text


class RedactDoFn(beam.DoFn):
    """A document -> the same document with its addresses replaced, and on `LEDGER_ROWS` one count event per
    kind found: ((source, PII_REDACTED, kind), (replacements, 0, 0)) and ((source, PII_DOCUMENTS, kind),
    (1, 0, 0)), the ledger's rows."""

    def __init__(self, options: PIIConfig):
        self._options = options

    def setup(self) -> None:
        self._redactor = Redactor(self._options.kinds)

    def process(self, doc: dict):
        text, counts = self._redactor.redact(doc["text"])
        if not counts:
            yield doc
            return
        source = doc["source"]
        for kind, n in sorted(counts.items()):
            PIIRedaction.counter(source, f"redacted.{kind}").inc(n)
            yield beam.pvalue.TaggedOutput(LEDGER_ROWS, ((source, PII_REDACTED, kind), (n, 0, 0)))
            yield beam.pvalue.TaggedOutput(LEDGER_ROWS, ((source, PII_DOCUMENTS, kind), (1, 0, 0)))
        yield {**doc, "text": text}


class PIIRedaction(Stage):
    """The stage: documents -> the same documents redacted, no drop, and `LEDGER_ROWS`: count rows
    [source, row, kind, count, 0, 0] summed per key (a few rows, whatever the corpus size)."""

    entry = PII

    def __init__(self, options: PIIConfig):
        super().__init__()
        self._options = options

    def expand(self, docs):
        if not self._options.enabled or not self._options.kinds:
            return self.unchanged_counting(docs)
        return self.split_counting(docs, "Redact", RedactDoFn(self._options))

"""A message as a secret could hide in it: the text itself, unescaped, decoded and squeezed.

The learner's code can put text into its own failure messages (an assertion shows the value it returned), so
a hidden test's line can reach a report encoded. Before a message reaches a learner-visible file it is checked
against the hidden tests in every form here: backslash escapes, %-escapes and HTML entities undone, runs of
base64, base32 or hex decoded, reversed, and squeezed to its lower-case letters and digits (so spacing,
punctuation or case changes do not hide a line). No list of encodings is complete: this raises the price of a
leak; that the graded process cannot read hidden tests at all is what prevents it.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import re
import urllib.parse

MAX_TEXT = 20_000  # messages are one line; notes a few: longer text is looked at up to here
ENCODED_RUN = re.compile(r"[A-Za-z0-9+/=_-]{16,}")
HEX_RUN = re.compile(r"(?:[0-9a-fA-F]{2}){8,}")
MIN_SQUEEZED = 12  # a squeezed line shorter than this matches too much to mean anything
UNDO_ROUNDS = 3


def forms(text: str) -> list[str]:
    """`text` and what it may be hiding, each a string a secret can be searched in."""
    text = text[:MAX_TEXT]
    found = [text]
    for _ in range(UNDO_ROUNDS):  # a repr of an escaped text is escaped twice
        for form in list(found):
            for undo in (_unescape, urllib.parse.unquote, html.unescape):
                try:
                    found.append(undo(form))
                except (ValueError, UnicodeError):
                    continue
        found = list(dict.fromkeys(found))
    for form in list(found):
        found += _decoded_runs(form)
    found += [form[::-1] for form in list(found)]
    return list(dict.fromkeys(found))


def squeezed(text: str) -> str:
    """Only the lower-case letters and digits of `text`."""
    return "".join(char for char in text.lower() if char.isalnum())


def _unescape(text: str) -> str:
    return codecs.decode(text.encode("latin-1", "backslashreplace"), "unicode_escape")


def _decoded_runs(text: str) -> list[str]:
    decoded = []
    for match in HEX_RUN.finditer(text):
        decoded.append(_text(binascii.unhexlify(match[0])))
    for match in ENCODED_RUN.finditer(text):
        run = match[0]
        attempts = ((base64.b64decode, 4), (base64.urlsafe_b64decode, 4),
                    (lambda data: base64.b32decode(data, casefold=True), 8))
        for decode, block in attempts:
            try:
                decoded.append(_text(decode(run.rstrip("=") + "=" * (-len(run.rstrip("=")) % block))))
            except (ValueError, binascii.Error):
                continue
    return [d for d in decoded if d]


def _text(data: bytes) -> str:
    return data.decode("utf-8", "ignore")

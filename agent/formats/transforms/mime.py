"""MIME parts as JSON (Tychron's MMS `data`): the message text is the body of the first text/plain part."""

from __future__ import annotations

import base64
import binascii
import codecs
from typing import Any

_MAX_DEPTH = 8  # an MMS is SMIL + text + media, one or two levels deep; deeper input is not an MMS


def mime_text(part: Any) -> str | None:
    """The decoded text of the first text/plain part of a `{headers, encoding, body, parts}` tree.

    `headers` has lower-cased keys; `encoding` is base64 or identity; the charset comes from the content type
    (UTF-8 when it names none). None when there is no such part, or its body does not decode.
    """
    return _text(part, 0)


def _text(part: Any, depth: int) -> str | None:
    if not isinstance(part, dict) or depth > _MAX_DEPTH:
        return None
    headers = part.get("headers")
    ctype = headers.get("content-type") if isinstance(headers, dict) else None
    if isinstance(ctype, str) and ctype.strip().lower().startswith("text/plain"):
        return _decode(part.get("body"), part.get("encoding"), ctype)
    parts = part.get("parts")
    if isinstance(parts, list):
        for child in parts:
            text = _text(child, depth + 1)
            if text is not None:
                return text
    return None


def _decode(body: Any, encoding: Any, ctype: str) -> str | None:
    if not isinstance(body, str) or not body:
        return None
    if not isinstance(encoding, str) or encoding.lower() != "base64":
        return body
    charset = _charset(ctype)
    try:
        text = base64.b64decode(body, validate=False).decode(charset)
    except (binascii.Error, ValueError):  # not base64, or not text in its charset (UnicodeDecodeError)
        return None
    except LookupError:  # charset=base64, hex, zlib, rot13...: a codec of bytes, not of text; only the body is lost
        return None
    return text or None


def _charset(ctype: str) -> str:
    """The content type's charset if Python knows it, else UTF-8."""
    for param in ctype.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"')
            try:
                return codecs.lookup(charset).name
            except LookupError:
                break
    return "utf-8"

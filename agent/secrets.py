"""The Volt token: where it comes from, and a type that never prints it (invariant 5).

The token is unwrapped only where the Authorization header is built and by the redactor that scrubs
it from answers an echoing proxy might send back (agent/send/sender.py). Everything else (logs, errors,
metrics, dry-run output, exception text) only ever sees `Secret('***')` and the non-secret description
of where the token was found.
"""

from __future__ import annotations

import hmac
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

CREDENTIAL_NAME = "volt-token"
MIN_TOKEN_LENGTH = 8


_USERINFO = re.compile(r"(?<=://)[^/\s]*@")  # to the last @ before the path: a password may hold @ or quotes


def scrub_url_credentials(text: str) -> str:
    """`text` with `user:password@` removed from every URL in it (a proxy URL in an aiohttp error, say)."""
    return _USERINFO.sub("***@", text) if "@" in text else text


def shown_url(url: str) -> str:
    """A URL as it may be logged: without credentials, query or fragment (where a token could hide)."""
    return scrub_url_credentials(re.split(r"[?#]", url, maxsplit=1)[0])


class TokenError(Exception):
    """No usable token; the message says where the agent looked and what to do, never the token itself."""


class Secret:
    """Holds a secret string; str(), repr() and format() show a placeholder, never the value.

    `source` says where the value came from ("environment variable VOLT_TOKEN"), so error messages can
    point an operator at the right place without showing what is there.
    """

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str = "the config") -> None:
        self._value = value
        self.source = source

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(other._value.encode(), self._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> NoReturn:  # refuse pickling and copying so a token never lands in a dump by accident
        raise TypeError("Secret cannot be pickled")


def token_problem(value: str) -> str | None:
    """Why `value` (surrounding whitespace already stripped) cannot be a Volt token, or None; never shows it.

    No real token is shorter than MIN_TOKEN_LENGTH: a shorter value is a placeholder or a stray character,
    and redacting it would replace that text everywhere in the logs ("t" in every word).
    """
    if not value:
        return "is empty"
    if not all(33 <= ord(c) < 127 for c in value):
        return ("contains spaces, line breaks or non-ASCII characters; copy the token again as one word "
                "(without 'Bearer ' or quotes)")
    if len(value) < MIN_TOKEN_LENGTH:
        return (f"is shorter than {MIN_TOKEN_LENGTH} characters, so it is no real token (a placeholder or a "
                "stray character?); copy the whole token again")
    return None


def parse_token(value: str, source: str) -> Secret:
    """Refuse values that cannot be a bearer token, before they reach an HTTP header or a confusing 401 (or, from
    `service install`, a token file)."""
    value = value.strip()
    problem = token_problem(value)
    if problem:
        raise TokenError(f"the Volt token from {source} {problem}")
    return Secret(value, source)


def _readable_by_others(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH))
    except OSError:
        return False


def read_token_file(path: Path, source: str) -> Secret:
    try:
        value = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise TokenError(f"cannot read the Volt token from {source}: {reason}") from None
    return parse_token(value, source)


def load_token(
    *,
    env_name: str,
    token_file: str | None,
    inline: str | None,
    config_path: Path,
    warn: Callable[..., Any],
) -> Secret:
    """Find the token: systemd credential, then token_file, then the environment, then the config itself.

    A token file or a config holding the token that others can read is used, with a warning.
    """
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir and (Path(cred_dir) / CREDENTIAL_NAME).exists():
        cred = Path(cred_dir) / CREDENTIAL_NAME
        return read_token_file(cred, f"the systemd credential {cred}")
    if token_file:
        path = Path(token_file)
        if _readable_by_others(path):
            warn("token_file_readable_by_others", file=str(path), hint=f"chmod 600 {path}")
        return read_token_file(path, f"volt.token_file {path}")
    value = os.environ.get(env_name, "")
    if value.strip():
        return parse_token(value, f"the environment variable {env_name}")
    if inline:
        if _readable_by_others(config_path):
            warn(
                "token_in_config_readable_by_others",
                file=str(config_path),
                hint="move the token to volt.token_file, the environment or a systemd credential "
                f"(LoadCredential={CREDENTIAL_NAME}:...), or chmod 600 the config",
            )
        return parse_token(inline, f"volt.token in {config_path}")
    raise TokenError(
        f"no Volt token: set the environment variable {env_name}, or volt.token_file in the config, "
        f"or a systemd credential named {CREDENTIAL_NAME} (LoadCredential=)"
    )

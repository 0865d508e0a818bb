"""The Volt token: where it comes from, and a type that never prints it (invariant 5).

The token is unwrapped in exactly one place, where the Authorization header is built.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

CREDENTIAL_NAME = "volt-token"


class TokenError(Exception):
    """No usable token; the message says where the agent looked and what to do."""


class Secret:
    """Holds a secret string; str(), repr() and format() show a placeholder, never the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self):  # refuse pickling so a token never lands in a dump by accident
        raise TypeError("Secret cannot be pickled")


def _read_token_file(path: Path, what: str) -> Secret:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise TokenError(f"cannot read the Volt token from {what} {path}: {exc.strerror}") from None
    if not value:
        raise TokenError(f"the Volt token file {what} {path} is empty")
    return Secret(value)


def load_token(
    *,
    env_name: str,
    token_file: str | None,
    inline: str | None,
    config_path: Path,
    warn,
) -> Secret:
    """Find the token: systemd credential, then token_file, then the environment, then the config itself.

    A token written in the YAML is accepted only with a warning when others can read that file.
    """
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir and (Path(cred_dir) / CREDENTIAL_NAME).exists():
        return _read_token_file(Path(cred_dir) / CREDENTIAL_NAME, "systemd credential")
    if token_file:
        return _read_token_file(Path(token_file), "token_file")
    value = os.environ.get(env_name, "").strip()
    if value:
        return Secret(value)
    if inline:
        try:
            mode = config_path.stat().st_mode
        except OSError:
            mode = 0
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            warn(
                "token_in_world_readable_config",
                file=str(config_path),
                hint="move the token to token_file, the environment or a systemd credential, or chmod 600",
            )
        return Secret(inline)
    raise TokenError(
        f"no Volt token: set the environment variable {env_name}, or volt.token_file in the config, "
        f"or a systemd credential named {CREDENTIAL_NAME} (LoadCredential=)"
    )

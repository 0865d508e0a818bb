"""The token: where it is found, what is refused, and that a Secret never prints its value."""

from __future__ import annotations

import copy
import logging
import pickle
from pathlib import Path

import pytest

from agent.secrets import CREDENTIAL_NAME, Secret, TokenError, load_token

TOKEN = "tok-unit-9b1d7e"


def test_secret_never_shows_its_value():
    s = Secret(TOKEN, "the environment variable VOLT_TOKEN")
    texts = [repr(s), str(s), f"{s}", f"{s!r}", f"{s:>40}", "%s %r" % (s, s), repr([s]), repr({"t": s}),  # noqa: UP031
             str(ValueError(s)), repr(ValueError(s))]
    assert all(TOKEN not in t for t in texts)
    assert "***" in str(s)
    assert s.reveal() == TOKEN
    assert s == Secret(TOKEN) and s != Secret("other") and s != TOKEN


def test_secret_cannot_be_pickled_or_copied():
    s = Secret(TOKEN)
    with pytest.raises(TypeError):
        pickle.dumps(s)
    with pytest.raises(TypeError):
        copy.deepcopy(s)


def test_secret_in_a_log_record_is_redacted(caplog):
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("token is %s", Secret(TOKEN))
    assert TOKEN not in caplog.text


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.delenv("VOLT_TOKEN", raising=False)
    return monkeypatch


def _load(config: Path, warnings: list, token_file: str | None = None, inline: str | None = None) -> Secret:
    return load_token(env_name="VOLT_TOKEN", token_file=token_file, inline=inline, config_path=config,
                      warn=lambda event, **fields: warnings.append((event, fields)))


def _file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_precedence_credential_then_file_then_env_then_inline(tmp_path, clean_env):
    config = _file(tmp_path / "c.yaml", "x", 0o600)
    warnings: list = []
    assert _load(config, warnings, inline="inline-tok").reveal() == "inline-tok"
    clean_env.setenv("VOLT_TOKEN", "  env-tok\n")
    assert _load(config, warnings, inline="inline-tok").reveal() == "env-tok"
    token_file = _file(tmp_path / "token", "file-tok\n")
    got = _load(config, warnings, token_file=str(token_file), inline="inline-tok")
    assert got.reveal() == "file-tok" and str(token_file) in got.source
    creds = tmp_path / "creds"
    creds.mkdir()
    _file(creds / CREDENTIAL_NAME, "cred-tok\n", 0o400)
    clean_env.setenv("CREDENTIALS_DIRECTORY", str(creds))
    got = _load(config, warnings, token_file=str(token_file), inline="inline-tok")
    assert got.reveal() == "cred-tok" and "systemd credential" in got.source
    assert warnings == []


def test_inline_token_in_a_config_others_can_read_warns(tmp_path, clean_env):
    warnings: list = []
    config = _file(tmp_path / "c.yaml", "x", 0o644)
    assert _load(config, warnings, inline=TOKEN).reveal() == TOKEN
    assert [w[0] for w in warnings] == ["token_in_config_readable_by_others"]
    assert TOKEN not in repr(warnings) and "chmod 600" in warnings[0][1]["hint"]
    warnings.clear()
    config.chmod(0o600)
    _load(config, warnings, inline=TOKEN)
    assert warnings == []


def test_token_file_others_can_read_warns(tmp_path, clean_env):
    warnings: list = []
    token_file = _file(tmp_path / "token", TOKEN, 0o644)
    _load(tmp_path / "c.yaml", warnings, token_file=str(token_file))
    assert [w[0] for w in warnings] == ["token_file_readable_by_others"]


@pytest.mark.parametrize("bad", [f"{TOKEN} extra", f"Bearer {TOKEN}", f"{TOKEN}\nsecond-line", f"{TOKEN}é",
                                 f'"{TOKEN}\u00a0"'])
def test_tokens_that_cannot_be_a_bearer_token_are_refused_without_echo(tmp_path, clean_env, bad):
    clean_env.setenv("VOLT_TOKEN", bad)
    with pytest.raises(TokenError) as err:
        _load(tmp_path / "c.yaml", [])
    assert TOKEN not in str(err.value)
    assert "environment variable VOLT_TOKEN" in str(err.value)


def test_empty_or_unreadable_token_file_names_the_file(tmp_path, clean_env):
    empty = _file(tmp_path / "empty", "\n")
    with pytest.raises(TokenError, match="empty"):
        _load(tmp_path / "c.yaml", [], token_file=str(empty))
    with pytest.raises(TokenError, match=r"cannot read .*missing"):
        _load(tmp_path / "c.yaml", [], token_file=str(tmp_path / "missing"))


def test_no_token_anywhere_says_where_to_put_one(tmp_path, clean_env):
    with pytest.raises(TokenError) as err:
        _load(tmp_path / "c.yaml", [])
    message = str(err.value)
    assert "VOLT_TOKEN" in message and "token_file" in message and CREDENTIAL_NAME in message

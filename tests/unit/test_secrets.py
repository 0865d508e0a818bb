"""The token: where it is found, what is refused, that a Secret never prints its value, and exact redaction."""

from __future__ import annotations

import copy
import logging
import pickle
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from agent.secrets import CREDENTIAL_NAME, MIN_TOKEN_LENGTH, Secret, TokenError, load_token, token_problem
from agent.send.sender import Redactor

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
    assert _load(config, warnings, inline="inline-token").reveal() == "inline-token"
    clean_env.setenv("VOLT_TOKEN", "  env-token\n")
    assert _load(config, warnings, inline="inline-token").reveal() == "env-token"
    token_file = _file(tmp_path / "token", "file-token\n")
    got = _load(config, warnings, token_file=str(token_file), inline="inline-token")
    assert got.reveal() == "file-token" and str(token_file) in got.source
    creds = tmp_path / "creds"
    creds.mkdir()
    _file(creds / CREDENTIAL_NAME, "cred-token\n", 0o400)
    clean_env.setenv("CREDENTIALS_DIRECTORY", str(creds))
    got = _load(config, warnings, token_file=str(token_file), inline="inline-token")
    assert got.reveal() == "cred-token" and "systemd credential" in got.source
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


def _each_source(kind: str, tmp_path: Path, env: pytest.MonkeyPatch, value: str) -> tuple[dict, str]:
    """`value` placed where `kind` is read from; returns load arguments and how the message names that place."""
    if kind == "environment":
        env.setenv("VOLT_TOKEN", value)
        return {}, "the environment variable VOLT_TOKEN"
    if kind == "token_file":
        path = _file(tmp_path / "token", value + "\n")
        return {"token_file": str(path)}, f"volt.token_file {path}"
    if kind == "credential":
        creds = tmp_path / "creds"
        creds.mkdir()
        _file(creds / CREDENTIAL_NAME, value + "\n", 0o400)
        env.setenv("CREDENTIALS_DIRECTORY", str(creds))
        return {}, f"the systemd credential {creds / CREDENTIAL_NAME}"
    return {"inline": value}, f"volt.token in {tmp_path / 'c.yaml'}"


SOURCES = ["environment", "token_file", "credential", "inline"]


@pytest.mark.parametrize("kind", SOURCES)
@pytest.mark.parametrize(("value", "reason"), [("Zq7#x9W", "shorter than 8"), ("Zq", "shorter than 8"),
                                               ("Zq7#x 9Wk2", "spaces"), ("Zq7#x\t9Wk2", "spaces")])
def test_a_short_token_or_one_with_whitespace_inside_names_its_source_never_the_value(tmp_path, clean_env, kind,
                                                                                     value, reason):
    kwargs, where = _each_source(kind, tmp_path, clean_env, value)
    with pytest.raises(TokenError) as err:
        _load(_file(tmp_path / "c.yaml", "x"), [], **kwargs)
    message = str(err.value)
    assert message.startswith(f"the Volt token from {where} ") and reason in message
    assert value.strip() not in message.replace(where, "") and "Zq7" not in message


@pytest.mark.parametrize("kind", SOURCES)
def test_eight_characters_is_long_enough_from_every_source(tmp_path, clean_env, kind):
    kwargs, where = _each_source(kind, tmp_path, clean_env, "Zq7#x9Wk")
    got = _load(_file(tmp_path / "c.yaml", "x"), [], **kwargs)
    assert got.reveal() == "Zq7#x9Wk" and got.source == where
    assert token_problem("a" * MIN_TOKEN_LENGTH) is None and token_problem("a" * (MIN_TOKEN_LENGTH - 1))


# Tokens the rule lets through ("*" left out: it is what the redactor writes in the token's place).
PASSING = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="*"),
                  min_size=MIN_TOKEN_LENGTH, max_size=40)


@given(token=PASSING, text=st.text(max_size=200))
def test_redaction_leaves_text_without_the_token_exactly_as_it_was(token, text):
    redact = Redactor(Secret(token))
    assume(all(form not in text for form in (token, quote(token, safe=""), quote(token), repr(token)[1:-1])))
    assert redact(text) == text


@given(token=PASSING, before=st.text(max_size=80), after=st.text(max_size=80),
       encode=st.sampled_from([str, lambda t: quote(t, safe=""), quote, lambda t: repr(t)[1:-1]]))
def test_redaction_removes_every_form_of_a_passing_token(token, before, after, encode):
    redacted = Redactor(Secret(token))(f"{before}{encode(token)}{after}")
    assert "***" in redacted
    assert token not in redacted and encode(token) not in redacted


def test_redaction_in_exception_text_and_urls_is_exact():
    """The case that made logs unreadable with a one-letter token: with a real one, only the token goes."""
    token = "k3y/with+slash=="
    redact = Redactor(Secret(token))
    error = "ClientConnectorError: Cannot connect to host 127.0.0.1:9 ssl:default [Connect call failed]"
    assert redact(error) == error
    url = f"https://volt.example/data/messages?token={quote(token, safe='')}&k={quote(token)}"
    assert redact(url) == "https://volt.example/data/messages?token=***&k=***"
    assert redact(f"InvalidURL({token!r}) for https://{token}@proxy.example") == \
        "InvalidURL('***') for https://***@proxy.example"
    assert redact(repr(ValueError(f"bad header 'Bearer {token}'"))) == "ValueError(\"bad header 'Bearer ***'\")"

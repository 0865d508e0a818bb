"""volt: the endpoint (credentials never ride in the URL, a URL that cannot work is refused) and concurrency."""

from __future__ import annotations

import pytest

from agent.config import ConfigError, load
from agent.secrets import scrub_url_credentials, shown_url


def _load(tmp_path, endpoint: str):
    path = tmp_path / "agent.yaml"
    path.write_text(f"volt:\n  endpoint: '{endpoint}'\nstate_dir: {tmp_path}\nsources:\n  - name: a\n"
                    f"    format: volt-jsonl\n    paths: [x]\n")
    return load(path)


@pytest.mark.parametrize(("endpoint", "expected"), [
    ("https://user:s3cret@volt.example/data/messages", "without user:password@"),
    ("https://volt.example/data/messages?access_token=s3cret", "query or fragment"),
    ("https://volt.example/data/messages#s3cret", "query or fragment"),
    ("https://volt.example:99999/data/messages", "a valid host and port"),
    ("https://volt.example:0/data/messages", "a valid host and port"),
    ("https://[::1/data/messages?s3cret", "a valid host and port"),
    ("ftp://volt.example/data?s3cret", "an https:// URL"),
    ("s3cret-token-pasted-here", "an https:// URL"),
    ("https://:443/data/messages", "a valid host and port"),
    ("https://volt example/data?s3cret", "an https:// URL"),
])
def test_an_endpoint_that_cannot_work_or_carries_credentials_is_refused(tmp_path, endpoint, expected):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, endpoint)
    assert err.value.key == "volt.endpoint" and expected in err.value.expected
    assert "s3cret" not in str(err.value)


def test_a_plain_endpoint_with_a_port_is_accepted(tmp_path):
    assert _load(tmp_path, "https://volt.example:8443/data/messages").volt.endpoint == \
        "https://volt.example:8443/data/messages"


def test_urls_in_error_text_lose_their_credentials():
    text = "ClientHttpProxyError: 407, message='Nope', url='http://user:pa55@127.0.0.1:3128'"
    assert scrub_url_credentials(text) == "ClientHttpProxyError: 407, message='Nope', url='http://***@127.0.0.1:3128'"
    assert shown_url("https://u:p@volt.example/x?token=t#f") == "https://***@volt.example/x"
    text = "proxy http://u:s3cr@tPass@proxy:3128 refused"  # an @ in the password too
    assert scrub_url_credentials(text) == "proxy http://***@proxy:3128 refused"
    assert scrub_url_credentials("url='http://user:it's@proxy:3128'") == "url='http://***@proxy:3128'"


def test_a_token_pasted_into_token_env_is_refused_without_being_repeated(tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text(f"volt:\n  token_env: sk-live-s3cret99\nstate_dir: {tmp_path}\nsources:\n  - name: a\n"
                    f"    format: volt-jsonl\n    paths: [x]\n")
    with pytest.raises(ConfigError) as err:
        load(path)
    assert err.value.key == "volt.token_env" and "the name of an environment variable" in err.value.expected
    assert "s3cret" not in str(err.value)


def test_every_problem_in_the_file_is_named_not_only_the_first(tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text("volt:\n  endpoint: ftp://volt.example/x\n  timeout: soon\nshutdown_timeout: -1\n"
                    "queue: {max_records: 0, max_byte: 1}\nlog: [json]\ncolour: red\nsources:\n"
                    "  - {name: a, format: volt-jsonl}\n  - {name: b, format: volt-jsonl, paths: [x]}\n"
                    "  - {name: c, format: volt-jsonl, paths: [y], start_at: middle}\n")
    with pytest.raises(ConfigError) as err:
        load(path)
    found = [(e.file, e.key) for e in err.value.errors]
    assert found == [(str(path), key) for key in (
        "sources[a].paths", "sources[c].start_at", "volt.endpoint", "log", "queue.max_byte", "queue.max_records",
        "shutdown_timeout", "colour")]
    assert all(e.expected for e in err.value.errors)
    assert (err.value.key, str(err.value).splitlines()) == ("sources[a].paths", [str(e) for e in err.value.errors])


def test_one_problem_is_a_plain_config_error(tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text("sources:\n  - {name: a, format: volt-jsonl, paths: [x]}\nshutdown_timeout: never\n")
    with pytest.raises(ConfigError) as err:
        load(path)
    assert type(err.value) is ConfigError and err.value.errors == (err.value,)
    assert str(err.value) == f"{path}: shutdown_timeout: a duration such as 5, 250ms, 30s, 5m or 7d, got 'never'"


def _load_volt(tmp_path, volt: str):
    path = tmp_path / "agent.yaml"
    path.write_text(f"volt:\n{volt}state_dir: {tmp_path}\nsources:\n  - name: a\n    format: volt-jsonl\n"
                    f"    paths: [x]\n")
    return load(path).volt


def test_concurrency_is_auto_by_default_or_a_fixed_number(tmp_path):
    auto = _load_volt(tmp_path, "")
    assert (auto.concurrency, auto.min_concurrency, auto.max_concurrency, auto.ceiling) == (None, 1, 512, 512)
    assert _load_volt(tmp_path, "  concurrency: auto\n  max_concurrency: 64\n").ceiling == 64
    fixed = _load_volt(tmp_path, "  concurrency: 1000\n")
    assert (fixed.concurrency, fixed.ceiling) == (1000, 1000)


@pytest.mark.parametrize(("volt", "key", "expected"), [
    ("  concurrency: automatic\n", "volt.concurrency", "auto or a whole number >= 1, got 'automatic'"),
    ("  concurrency: 0\n", "volt.concurrency", "auto or a whole number >= 1"),
    ("  concurrency: true\n", "volt.concurrency", "auto or a whole number >= 1"),
    ("  max_concurrency: 0\n", "volt.max_concurrency", "a whole number >= 1"),
    ("  max_concurrency: 100000\n", "volt.max_concurrency", "a whole number >= 1, got 100000; at most 10,000"),
    ("  concurrency: 100000\n", "volt.concurrency", "auto or a whole number >= 1, got 100000; at most 10,000"),
    ("  min_concurrency: 20\n  max_concurrency: 10\n", "volt.min_concurrency", "no larger than max_concurrency (10)"),
])
def test_a_bad_concurrency_setting_names_the_key(tmp_path, volt, key, expected):
    with pytest.raises(ConfigError) as err:
        _load_volt(tmp_path, volt)
    assert err.value.key == key and expected in err.value.expected

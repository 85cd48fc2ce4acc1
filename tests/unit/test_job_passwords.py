"""Encryption of job document passwords: the key (configured, or made once in the data directory),
rotation, refusal of other keys' and altered tokens, the setting's validation, and logs that never
print local variables (where a decrypted password lives while a job runs)."""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import structlog
from cryptography.fernet import Fernet

from app.jobs.passwords import KEY_FILE, JobPasswords, PasswordUnreadable, read_or_create_key
from app.lib.logging import configure_logging
from app.lib.settings import AppSettings, ConfigurationError, JobSettings, load_settings

PASSWORD = "s3cret-pw"


def test_the_key_file_is_made_once_private_and_shared_by_concurrent_starts(tmp_path: Path) -> None:
    path = tmp_path / "data" / KEY_FILE
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: read_or_create_key(path), range(16)))
    assert len(keys) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [KEY_FILE]  # no temporary files left
    assert read_or_create_key(path) == keys.pop()


def test_a_corrupt_key_file_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    path.write_text("not a key")
    with pytest.raises(ConfigurationError, match="DOCEXTRACT_JOBS_SECRET_KEY"):
        read_or_create_key(path)


def test_without_a_setting_the_data_directory_key_encrypts(tmp_path: Path) -> None:
    settings = load_settings(app=AppSettings(data_dir=tmp_path), jobs=JobSettings())
    token = JobPasswords.from_settings(settings).seal(PASSWORD)
    assert PASSWORD not in token
    key = (tmp_path / KEY_FILE).read_text().strip()
    assert Fernet(key).decrypt(token.encode()).decode() == PASSWORD
    # Another process on the same data directory reads it.
    assert JobPasswords.from_settings(settings).open(token) == PASSWORD


def test_a_configured_key_is_used_and_no_file_is_made(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    settings = load_settings(app=AppSettings(data_dir=tmp_path), jobs=JobSettings(secret_key=key))
    token = JobPasswords.from_settings(settings).seal(PASSWORD)
    assert Fernet(key).decrypt(token.encode()).decode() == PASSWORD
    assert not (tmp_path / KEY_FILE).exists()


def test_other_keys_and_altered_tokens_are_refused() -> None:
    mine, theirs = (
        JobPasswords([Fernet.generate_key().decode()]),
        JobPasswords([Fernet.generate_key().decode()]),
    )
    token = theirs.seal(PASSWORD)
    with pytest.raises(PasswordUnreadable):
        mine.open(token)
    altered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    with pytest.raises(PasswordUnreadable):
        theirs.open(altered)
    with pytest.raises(PasswordUnreadable):
        theirs.open("not-a-token")


def test_rotation_reads_old_tokens_and_writes_with_the_new_key() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    queued_before = JobPasswords([old]).seal(PASSWORD)
    rotating = JobPasswords([new, old])
    assert rotating.open(queued_before) == PASSWORD
    assert JobPasswords([new]).open(rotating.seal(PASSWORD)) == PASSWORD


def test_the_setting_reads_one_or_several_keys(clean_env: pytest.MonkeyPatch) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    clean_env.setenv("DOCEXTRACT_JOBS_SECRET_KEY", f"{new}, {old}")
    settings = load_settings()
    assert settings.jobs.secret_keys == [new, old]
    assert new not in repr(settings) and old not in repr(settings)
    clean_env.setenv("DOCEXTRACT_JOBS_SECRET_KEY", "")
    assert load_settings().jobs.secret_keys == []


@pytest.mark.parametrize("value", ["CHANGE-ME", "c2hvcnQ=", "A" * 43 + "=,oops"])
def test_a_bad_key_is_refused_without_echoing_it(clean_env: pytest.MonkeyPatch, value: str) -> None:
    clean_env.setenv("DOCEXTRACT_JOBS_SECRET_KEY", value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert "DOCEXTRACT_JOBS_SECRET_KEY" in message and "openssl rand" in message
    assert value not in message


@pytest.fixture
def restore_logging() -> Iterator[None]:
    yield
    configure_logging("INFO", "json")


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("fmt", ["json", "console"])
def test_logged_tracebacks_show_no_local_variables(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", fmt)

    def run_job(password: str) -> None:
        raise RuntimeError("boom")

    try:
        run_job(PASSWORD)
    except RuntimeError:
        structlog.get_logger("test").exception("job_crashed")
    logged = capsys.readouterr().err
    assert "job_crashed" in logged and "boom" in logged
    assert PASSWORD not in logged


def test_the_idempotency_fingerprint_of_a_password_needs_the_secret_key() -> None:
    """A database reader who knows the rest of a request cannot test password guesses against the
    stored request fingerprint: the password enters it through an HMAC under the secret key."""
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    same = JobPasswords([first])
    assert same.fingerprint("s3cret") == JobPasswords([first, second]).fingerprint("s3cret")
    assert same.fingerprint("s3cret") != same.fingerprint("s3cret2")
    assert same.fingerprint("s3cret") != JobPasswords([second]).fingerprint("s3cret")
    assert same.fingerprint("s3cret") != hashlib.sha256(b"s3cret").hexdigest()

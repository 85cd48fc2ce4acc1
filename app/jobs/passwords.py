"""Document passwords of waiting jobs, encrypted at rest.

A job may wait (queued, or between retries) with the password of its encrypted PDF. Its row holds
only a Fernet token (AES with an HMAC, so a changed token is refused rather than misread) under
``DOCEXTRACT_JOBS_SECRET_KEY``; without that setting, under a key made once in the data directory
(mode 0600, beside the SQLite file), which serves the embedded setup but not processes on several
hosts. The executor decrypts the token just before running, and the row loses it when the job ends.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

import structlog
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from app.lib.settings import ConfigurationError, Settings

logger = structlog.get_logger(__name__)

ENCRYPTED = "password_encrypted"
"""The ``jobs.params`` entry holding the token."""
LEGACY = "password"
"""Where releases before encryption kept the password in plain text: still read, and wiped."""
SECRET_PARAMS = frozenset({ENCRYPTED, LEGACY})
"""Entries of ``jobs.params`` dropped when the job ends."""
KEY_FILE = "jobs-secret.key"


class PasswordUnreadable(Exception):
    """The token was made under a key this process does not have (or was altered)."""


class JobPasswords:
    """Encrypts passwords as jobs are submitted and decrypts them as jobs run."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one key")
        self._cipher = MultiFernet([Fernet(key) for key in keys])
        self._fingerprint_key = hashlib.sha256(
            b"docextract password fingerprint\x00" + keys[0].encode()
        ).digest()

    @classmethod
    def from_settings(cls, settings: Settings) -> JobPasswords:
        """The configured keys, else the data directory's key (made now if there is none yet)."""
        if settings.jobs.secret_keys:
            return cls(settings.jobs.secret_keys)
        path = settings.app.data_dir / KEY_FILE
        if settings.jobs.runner == "redis":
            logger.warning(
                "jobs_secret_key_local",
                key_file=str(path),
                message="Document passwords of jobs are encrypted with this file's key: workers that do "
                "not share it fail such jobs. Set DOCEXTRACT_JOBS_SECRET_KEY to the same key everywhere.",
            )
        return cls([read_or_create_key(path)])

    def seal(self, password: str) -> str:
        return self._cipher.encrypt(password.encode()).decode()

    def fingerprint(self, password: str) -> str:
        """What idempotency compares a retried request's password by: an HMAC under the secret
        key, so the stored request fingerprint cannot be used to test password guesses offline."""
        return hmac.new(self._fingerprint_key, password.encode(), hashlib.sha256).hexdigest()

    def open(self, token: str) -> str:
        try:
            return self._cipher.decrypt(token.encode()).decode()
        except InvalidToken:
            raise PasswordUnreadable from None


def read_or_create_key(path: Path) -> str:
    """The key in ``path``; the first of several processes starting at once creates it, and they
    all read the same one (it is written to a private temporary file, then linked into place)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(Fernet.generate_key())
                file.flush()
                os.fsync(file.fileno())
            with contextlib.suppress(FileExistsError):  # another process was first: use its key
                os.link(temporary, path)
        finally:
            temporary.unlink()
    key = path.read_text().strip()
    try:
        Fernet(key)
    except ValueError as exc:
        raise ConfigurationError(
            f"{path} does not hold a jobs secret key. Set DOCEXTRACT_JOBS_SECRET_KEY, or delete the "
            "file to make a new one (waiting jobs with a document password then fail)."
        ) from exc
    return key

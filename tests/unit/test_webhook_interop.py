"""Our Standard Webhooks signatures against the reference implementation (the ``standardwebhooks``
package of the spec's authors), so that a misreading of the spec shared by our signer and our own
verifier cannot pass: each side verifies what the other signs, and refuses the same forgeries. The
receiver code the README tells users to copy is held to the same."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook, WebhookVerificationError

from app.webhooks.signing import SECRET_PREFIX, InvalidSignature, new_secret, sign, verify

README = Path(__file__).resolve().parents[2] / "README.md"
BODY = b'{"type":"extraction.completed","data":{"job_id":"job_1","total":"12.50 \xe2\x82\xac"}}'
MSG_ID = "dlv_4f1c2a9b7e"

Verifier = Callable[[str, Mapping[str, str], bytes], None]


def reference_sign(secrets: list[str], msg_id: str, body: bytes, timestamp: int) -> dict[str, str]:
    """Headers as a sender built on the reference library writes them (one signature per secret)."""
    at = datetime.fromtimestamp(timestamp, tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(Webhook(s).sign(msg_id, at, body.decode()) for s in secrets),
    }


def reference_verify(secret: str, headers: Mapping[str, str], body: bytes) -> None:
    Webhook(secret).verify(body, dict(headers), json_parse=False)


def ours_verify(secret: str, headers: Mapping[str, str], body: bytes) -> None:
    verify(secret, headers, body)


def readme_verify() -> Verifier:
    """The ``verify`` of the README's receiver example, run as a user would paste it."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    (code,) = [block for block in blocks if "def verify(secret" in block]
    namespace: dict[str, Any] = {}
    exec(compile(code, "<README.md: verify>", "exec"), namespace)  # noqa: S102 - our own documentation
    function: Verifier = namespace["verify"]
    return function


def refuses(verifier: Verifier, secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    try:
        verifier(secret, headers, body)
    except (InvalidSignature, WebhookVerificationError, ValueError):
        return True
    return False


def test_the_specs_test_vector() -> None:
    """The example of the Standard Webhooks reference libraries' own test suites."""
    secret, msg_id, timestamp = (
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
    )
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign([secret], msg_id, body, timestamp=timestamp)["webhook-signature"] == expected
    assert reference_sign([secret], msg_id, body, timestamp)["webhook-signature"] == expected


def test_our_secrets_are_what_the_reference_expects() -> None:
    secret = new_secret()
    assert secret.startswith(SECRET_PREFIX)
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    assert 24 <= len(key) <= 64  # the spec's range
    assert Webhook(secret)._whsecret == key  # the reference decodes the same key bytes


@pytest.mark.parametrize("verifier", [reference_verify, readme_verify()], ids=["reference", "readme"])
def test_what_we_sign_verifies_elsewhere(verifier: Verifier) -> None:
    secret = new_secret()
    headers = sign([secret], MSG_ID, BODY)
    verifier(secret, headers, BODY)
    verifier(secret, {k.title(): v for k, v in headers.items()}, BODY)  # as some HTTP stacks spell them


@pytest.mark.parametrize("verifier", [ours_verify, readme_verify()], ids=["ours", "readme"])
def test_what_the_reference_signs_verifies_with_ours(verifier: Verifier) -> None:
    secret = new_secret()
    verifier(secret, reference_sign([secret], MSG_ID, BODY, int(time.time())), BODY)


@pytest.mark.parametrize("signer", ["ours", "reference"])
@pytest.mark.parametrize(
    "verifier", [ours_verify, reference_verify, readme_verify()], ids=["ours", "reference", "readme"]
)
def test_forgeries_fail_everywhere(signer: str, verifier: Verifier) -> None:
    secret, now = new_secret(), int(time.time())

    def signed(body: bytes = BODY, at: int = now, with_secret: str = secret) -> dict[str, str]:
        if signer == "ours":
            return sign([with_secret], MSG_ID, body, timestamp=at)
        return reference_sign([with_secret], MSG_ID, body, at)

    assert not refuses(verifier, secret, signed(), BODY)
    assert refuses(verifier, secret, signed(), BODY.replace(b"12.50", b"12.51"))  # tampered body
    assert refuses(verifier, secret, signed(), BODY + b" ")
    assert refuses(verifier, secret, signed(with_secret=new_secret()), BODY)  # wrong secret
    assert refuses(verifier, secret, signed(at=now - 3600), BODY)  # replayed an hour later
    assert refuses(verifier, secret, signed(at=now + 3600), BODY)  # from the future
    other_id = {**signed(), "webhook-id": "dlv_other"}
    assert refuses(verifier, secret, other_id, BODY)
    moved = {**signed(), "webhook-timestamp": str(now - 1)}  # the timestamp is signed too
    assert refuses(verifier, secret, moved, BODY)


@pytest.mark.parametrize("signer", ["ours", "reference"])
@pytest.mark.parametrize(
    "verifier", [ours_verify, reference_verify, readme_verify()], ids=["ours", "reference", "readme"]
)
def test_rotation_both_secrets_sign_and_either_verifies(signer: str, verifier: Verifier) -> None:
    new, old, now = new_secret(), new_secret(), int(time.time())
    if signer == "ours":
        headers = sign([new, old], MSG_ID, BODY, timestamp=now)
    else:
        headers = reference_sign([new, old], MSG_ID, BODY, now)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert not refuses(verifier, new, headers, BODY)
    assert not refuses(verifier, old, headers, BODY)
    assert refuses(verifier, new_secret(), headers, BODY)


@settings(max_examples=200, deadline=None)
@given(
    key=st.binary(min_size=24, max_size=64),
    msg_id=st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
    body=st.text(max_size=300).map(str.encode),
    age_s=st.integers(min_value=-299, max_value=299),
)
def test_ours_and_the_reference_agree_on_any_message(
    key: bytes, msg_id: str, body: bytes, age_s: int
) -> None:
    secret = SECRET_PREFIX + base64.b64encode(key).decode()
    timestamp = int(time.time()) - age_s
    ours = sign([secret], msg_id, body, timestamp=timestamp)
    assert ours == reference_sign([secret], msg_id, body, timestamp)
    reference_verify(secret, ours, body)
    verify(secret, ours, body)

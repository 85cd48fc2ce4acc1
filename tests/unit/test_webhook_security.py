"""Standard Webhooks signing and the callback SSRF guard."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import socket
from typing import Any

import pytest

from app.webhooks.signing import InvalidSignature, new_secret, sign, verify
from app.webhooks.ssrf import UnsafeCallback, is_public, resolve_callback


def test_signature_follows_the_standard() -> None:
    secret = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    headers = sign([secret], "msg_1", b'{"type":"extraction.completed"}', timestamp=1_700_000_000)
    signed = b'msg_1.1700000000.{"type":"extraction.completed"}'
    expected = base64.b64encode(
        hmac.new(b"0123456789abcdef0123456789abcdef", signed, hashlib.sha256).digest()
    )
    assert headers == {
        "webhook-id": "msg_1",
        "webhook-timestamp": "1700000000",
        "webhook-signature": "v1," + expected.decode(),
    }
    verify(secret, headers, b'{"type":"extraction.completed"}', now=1_700_000_010)


def test_tampering_replay_and_wrong_secret_are_refused() -> None:
    secret = new_secret()
    headers = sign([secret], "msg_2", b"{}", timestamp=1_700_000_000)
    with pytest.raises(InvalidSignature):
        verify(secret, headers, b'{"x":1}', now=1_700_000_000)
    with pytest.raises(InvalidSignature):
        verify(secret, headers, b"{}", now=1_700_000_000 + 3600)
    with pytest.raises(InvalidSignature):
        verify(new_secret(), headers, b"{}", now=1_700_000_000)
    with pytest.raises(InvalidSignature):
        verify(secret, {"webhook-id": "x"}, b"{}")


def test_rotation_signs_with_both_secrets() -> None:
    old, new = new_secret(), new_secret()
    headers = sign([new, old], "msg_3", b"{}")
    assert len(headers["webhook-signature"].split()) == 2
    verify(old, headers, b"{}")
    verify(new, headers, b"{}")


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("2002:7f00:1::", False),
        ("64:ff9b::a00:1", False),
        ("::ffff:93.184.216.34", True),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def fake_resolver(answers: dict[str, list[str]]) -> Any:
    def getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
        if host not in answers:
            raise socket.gaierror("no such host")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]

    return getaddrinfo


def test_callbacks_resolving_anywhere_private_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        fake_resolver(
            {
                "erp.example.com": ["93.184.216.34"],
                "mixed.example.com": ["93.184.216.34", "10.0.0.5"],
                "metadata.example.com": ["169.254.169.254"],
                "localhost": ["127.0.0.1"],
            }
        ),
    )
    assert resolve_callback("https://erp.example.com/hook") == [ipaddress.ip_address("93.184.216.34")]
    for url in [
        "https://mixed.example.com/",
        "http://metadata.example.com/latest",
        "http://localhost:8080/",
        "http://127.0.0.1/",
        "ftp://erp.example.com/",
        "https://user:pw@erp.example.com/",
        "https://nowhere.example.com/",
    ]:
        with pytest.raises(UnsafeCallback):
            resolve_callback(url)
    loopback = [ipaddress.ip_network("127.0.0.0/8")]
    assert resolve_callback("http://localhost:8080/", allow=loopback) == [ipaddress.ip_address("127.0.0.1")]

"""WebhookSender against a scripted receiver on loopback: every outcome, the SSRF guard at connect, pooling, TLS."""

from __future__ import annotations

import datetime
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chalicelib.adapters.webhook_http import WebhookSender
from chalicelib.domain import webhook_targets
from docora_local.harness.receivers import PythonReceiver, Reply

PUBLIC_IP = "93.184.216.34"
BODY = '{"file":{"path":"é.txt"}}'.encode()
HEADERS = {"Content-Type": "application/json", "X-Docora-Signature": "sha256=" + "0" * 64}


@pytest.fixture
def receiver() -> Iterator[PythonReceiver]:
    server = PythonReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def make_sender() -> Iterator[Callable[..., WebhookSender]]:
    built: list[WebhookSender] = []

    def make(*, allow_private: bool, resolver: Callable[[str], list[str]] | None = None, **kwargs) -> WebhookSender:
        built.append(WebhookSender(allow_private=allow_private, user_agent="Docora/test", resolver=resolver, **kwargs))
        return built[-1]

    yield make
    for sender in built:
        sender.close()


@pytest.fixture
def sender(make_sender) -> WebhookSender:
    return make_sender(allow_private=True)


def table(addresses: dict[str, list[str]]) -> Callable[[str], list[str]]:
    return lambda host: list(addresses.get(host, []))


def loopback(host: str) -> list[str]:
    return ["127.0.0.1"]


def test_a_2xx_delivers_the_exact_bytes_and_headers(receiver, sender):
    result = sender.send(f"{receiver.url}/create", BODY, HEADERS)

    assert (result.status_code, result.error, result.retry_after) == (200, None, None)
    [got] = receiver.requests
    assert got.path == "/create"
    assert got.body == BODY
    assert got.headers["X-Docora-Signature"] == HEADERS["X-Docora-Signature"]
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["User-Agent"] == "Docora/test"
    assert result.duration_ms >= 0


@pytest.mark.parametrize("status", [500, 404, 410, 503])
def test_an_error_status_is_returned_as_is(receiver, sender, status):
    receiver.script(Reply(status=status))

    result = sender.send(f"{receiver.url}/create", BODY, HEADERS)

    assert (result.status_code, result.error) == (status, None)


def test_a_redirect_is_not_followed(receiver, sender):
    receiver.script(Reply(status=301, headers={"Location": "http://169.254.169.254/latest/meta-data/"}))

    result = sender.send(f"{receiver.url}/create", BODY, HEADERS)

    assert result.status_code == 301
    assert len(receiver.requests) == 1


def test_429_returns_its_retry_after(receiver, sender):
    receiver.script(Reply(status=429, headers={"Retry-After": "120"}))

    result = sender.send(f"{receiver.url}/create", BODY, HEADERS)

    assert (result.status_code, result.retry_after) == (429, "120")


def test_a_receiver_that_hangs_times_out(receiver, sender):
    receiver.script(Reply(action="hang"))

    result = sender.send(f"{receiver.url}/create", BODY, HEADERS, timeout=0.5)

    assert (result.status_code, result.error) == (None, "timed out after 0.5 s")
    assert 450 <= result.duration_ms < 5000


def test_a_slow_2xx_within_the_timeout_is_delivered(receiver, sender):
    receiver.script(Reply(status=202, delay=0.6))

    result = sender.send(f"{receiver.url}/create", BODY, HEADERS, timeout=5)

    assert (result.status_code, result.error) == (202, None)
    assert result.duration_ms >= 550


def test_a_connection_reset_mid_body_is_reported_without_secrets(receiver, sender):
    receiver.script(Reply(action="reset"))

    result = sender.send(f"{receiver.url}/create", b"x" * (4 * 1024 * 1024), HEADERS)

    assert (result.status_code, result.error) == (None, "connection reset")
    assert not receiver.requests[0].complete


def test_a_refused_connection_is_reported(sender):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    result = sender.send(f"http://127.0.0.1:{port}/create", BODY, HEADERS)

    assert (result.status_code, result.error) == (None, "connection refused")


def test_a_host_that_does_not_resolve_is_reported(make_sender):
    result = make_sender(allow_private=False, resolver=table({})).send("https://nowhere.test/create", BODY, HEADERS)

    assert (result.status_code, result.error) == (None, "cannot resolve nowhere.test")


def test_a_malformed_url_is_reported_not_raised(sender):
    result = sender.send("http://[::1/create", BODY, HEADERS)

    assert result.status_code is None
    assert result.error == "invalid URL"


def test_a_host_resolving_to_loopback_is_refused_before_connecting(receiver, make_sender):
    sender = make_sender(allow_private=False, resolver=table({"receiver.test": ["127.0.0.1"]}))

    result = sender.send(f"http://receiver.test:{receiver.port}/create", BODY, HEADERS)

    assert (result.status_code, result.error) == (None, "refused: receiver.test resolves to a private address")
    assert receiver.requests == []
    assert receiver.connections == 0


def test_a_loopback_address_literal_is_refused(receiver, make_sender):
    result = make_sender(allow_private=False, resolver=table({})).send(f"{receiver.url}/create", BODY, HEADERS)

    assert result.error == "refused: 127.0.0.1 resolves to a private address"
    assert receiver.connections == 0


def test_a_name_with_any_private_address_is_refused_even_after_a_public_one(receiver, make_sender):
    sender = make_sender(allow_private=False, resolver=table({"receiver.test": [PUBLIC_IP, "127.0.0.1"]}))

    result = sender.send(f"http://receiver.test:{receiver.port}/create", BODY, HEADERS)

    assert result.error == "refused: receiver.test resolves to a private address"
    assert receiver.connections == 0


def test_dns_rebinding_after_onboarding_is_refused_at_connect(receiver, make_sender):
    answers = iter([[PUBLIC_IP], ["127.0.0.1"]])
    resolver = lambda host: next(answers)  # noqa: E731 - public at onboarding, loopback afterwards
    base_url = f"https://receiver.test:{receiver.port}"
    webhook_targets.check_webhook_url(base_url, resolve=resolver, allow_private=False)

    result = make_sender(allow_private=False, resolver=resolver).send(f"{base_url}/create", BODY, HEADERS)

    assert result.error == "refused: receiver.test resolves to a private address"
    assert receiver.connections == 0


def test_private_targets_connect_when_allowed(receiver, make_sender):
    sender = make_sender(allow_private=True, resolver=loopback)

    result = sender.send(f"http://receiver.test:{receiver.port}/create", BODY, HEADERS)

    assert result.status_code == 200
    assert receiver.requests[0].headers["Host"] == f"receiver.test:{receiver.port}"


def test_requests_to_one_host_reuse_one_connection(receiver, sender):
    for _ in range(3):
        assert sender.send(f"{receiver.url}/create", BODY, HEADERS).status_code == 200

    assert receiver.connections == 1


def test_each_host_gets_its_own_connection(receiver, make_sender):
    sender = make_sender(allow_private=True, resolver=loopback)

    for host in ("a.test", "b.test", "a.test", "b.test"):
        assert sender.send(f"http://{host}:{receiver.port}/update", BODY, HEADERS).status_code == 200

    assert receiver.connections == 2


def tls_files(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, str]:
    """A self-signed certificate for `name` only, the receiver's TLS context, and the file a client trusts."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context, str(cert_path)


@pytest.fixture
def tls_receiver(tmp_path) -> Iterator[tuple[PythonReceiver, str]]:
    context, ca_path = tls_files(tmp_path, "receiver.test")
    server = PythonReceiver(tls=context).start()
    yield server, ca_path
    server.stop()


def test_https_keeps_sni_and_verifies_the_certificate_for_the_url_host(tls_receiver, make_sender):
    server, ca_path = tls_receiver
    sender = make_sender(allow_private=True, resolver=loopback, ca_bundle=ca_path)

    result = sender.send(f"https://receiver.test:{server.port}/create", BODY, HEADERS)

    assert (result.status_code, result.error) == (200, None)
    assert server.server_names == ["receiver.test"]


def test_https_refuses_a_certificate_for_another_host(tls_receiver, make_sender):
    server, ca_path = tls_receiver
    sender = make_sender(allow_private=True, resolver=loopback, ca_bundle=ca_path)

    result = sender.send(f"https://impostor.test:{server.port}/create", BODY, HEADERS)

    assert result.status_code is None
    assert result.error.startswith("TLS certificate rejected")
    assert "impostor.test" in result.error
    assert server.requests == []

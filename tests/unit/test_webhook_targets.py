"""The SSRF guard: which webhook base URLs and addresses Docora will send to."""

from __future__ import annotations

import pytest

from chalicelib import errors
from chalicelib.adapters.socket_resolver import SocketResolver
from chalicelib.domain.webhook_targets import check_address, check_webhook_url, is_public_address

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"

DNS = {
    "hooks.example.com": [PUBLIC_V4],
    "hooks.example.com.": [PUBLIC_V4],  # the host is resolved exactly as the delivery will resolve it
    "dual.example.com": [PUBLIC_V4, PUBLIC_V6],
    "v6.example.com": [PUBLIC_V6],
    "loopback.example.com": ["127.0.0.1"],
    "private.example.com": ["10.1.2.3"],
    "metadata.example.com": ["169.254.169.254"],
    "cgnat.example.com": ["100.64.0.1"],
    "ula.example.com": ["fd00::1"],
    "mapped.example.com": ["::ffff:192.168.0.1"],
    "mixed.example.com": [PUBLIC_V4, "192.168.1.1"],
    "mixed-v6.example.com": [PUBLIC_V6, "::1"],
    "zoned.example.com": ["fe80::1%eth0"],
}


class FakeDns:
    """Answers from DNS above and records every name asked, so tests can see when nothing was resolved."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, host: str) -> list[str]:
        self.asked.append(host)
        return list(DNS.get(host, []))


@pytest.mark.parametrize(
    ("ip", "public"),
    [
        (PUBLIC_V4, True),
        ("8.8.8.8", True),
        ("1.1.1.1", True),
        ("0.0.0.0", False),
        ("0.1.2.3", False),
        ("10.0.0.1", False),
        ("10.255.255.255", False),
        ("100.64.0.1", False),
        ("100.127.255.254", False),
        ("100.128.0.1", True),
        ("127.0.0.1", False),
        ("127.255.255.254", False),
        ("169.254.169.254", False),
        ("172.16.0.1", False),
        ("172.31.255.255", False),
        ("172.32.0.1", True),
        ("192.0.0.1", False),
        ("192.0.0.9", False),
        ("192.0.2.1", False),
        ("192.88.99.1", False),
        ("192.168.1.1", False),
        ("198.18.0.1", False),
        ("198.19.255.255", False),
        ("198.51.100.7", False),
        ("203.0.113.9", False),
        ("224.0.0.1", False),
        ("239.255.255.250", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        (PUBLIC_V6, True),
        ("2001:4860:4860::8888", True),
        ("::", False),
        ("::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:7f00:1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("::ffff:8.8.8.8", True),
        ("::127.0.0.1", False),
        ("::8.8.8.8", True),
        ("64:ff9b::127.0.0.1", False),
        ("64:ff9b::a9fe:a9fe", False),
        ("64:ff9b::8.8.8.8", True),
        ("64:ff9b:1::1", False),
        ("64:ff9b:1::8.8.8.8", False),
        ("2002:7f00:1::1", False),
        ("2002:c0a8:101::1", False),
        ("2002:808:808::1", True),
        ("2001::1", False),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),
        ("2001:2::1", False),
        ("2001:db8::1", False),
        ("3fff::1", False),
        ("100::1", False),
        ("fc00::1", False),
        ("fd12:3456:789a::1", False),
        ("fe80::1", False),
        ("febf::1", False),
        ("fec0::1", False),
        ("ff02::1", False),
        ("ff0e::1", False),
        ("fe80::1%eth0", False),
        ("fe80::1%25eth0", False),
        (PUBLIC_V6 + "%eth0", False),
        ("", False),
        ("example.com", False),
        ("127.1", False),
        ("2130706433", False),
        ("0x7f000001", False),
        ("0177.0.0.1", False),
        ("010.0.0.1", False),
        ("[::1]", False),
        ("1.2.3.4/32", False),
    ],
)
def test_is_public_address(ip, public):
    assert is_public_address(ip) is public


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com",
        "https://hooks.example.com/",
        "https://hooks.example.com/docora/webhooks",
        "https://hooks.example.com/docora/webhooks/",
        "https://hooks.example.com:8443/docora",
        "https://HOOKS.example.com/Docora",
        "https://hooks.example.com./docora",
        "https://dual.example.com/hooks",
        "https://v6.example.com/hooks",
        f"https://{PUBLIC_V4}/hooks",
        f"https://[{PUBLIC_V6}]/hooks",
        "https://[::ffff:8.8.8.8]/hooks",
    ],
)
def test_public_https_targets_are_accepted(url):
    assert check_webhook_url(url, resolve=FakeDns(), allow_private=False) == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/",
        "ftp://hooks.example.com/",
        "file:///etc/passwd",
        "gopher://hooks.example.com/",
        "hooks.example.com/hooks",
        "//hooks.example.com/hooks",
        "",
        "https://",
        "https:///hooks",
        "https://:443/hooks",
        "https://user:pass@hooks.example.com/",
        "https://user@hooks.example.com/",
        "https://hooks.example.com@127.0.0.1/",
        "https://hooks.example.com/?x=1",
        "https://hooks.example.com/#frag",
        "https://hooks.example.com:99999/",
        "https://hooks.example.com:port/",
        "https://[::1/",
        "https://[not-an-ip]/",
        "https://hooks.example.com/a b",
        " https://hooks.example.com/",
        "https://hooks.example.com/\n",
        "https://hooks.example.com\\@127.0.0.1/",
        "https://hööks.example.com/",
        "https://localhost/",
        "https://LOCALHOST:8443/",
        "https://localhost./",
        "https://app.localhost/",
        "https://printer.local/",
        "https://metadata.google.internal/",
        "https://router.home.arpa/",
        "https://127.0.0.1/",
        "https://10.0.0.5/",
        "https://169.254.169.254/latest/meta-data/",
        "https://100.100.100.200/",
        "https://0.0.0.0/",
        "https://255.255.255.255/",
        "https://[::1]/",
        "https://[::]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:169.254.169.254]/",
        "https://[64:ff9b::7f00:1]/",
        "https://[2002:7f00:1::1]/",
        "https://[fe80::1%25eth0]/",
        "https://[fd00::1]/",
        "https://[2001:db8::1]/",
        "https://2130706433/",
        "https://0x7f000001/",
        "https://0177.0.0.1/",
        "https://127.1/",
        "https://0x7f.1/",
        "https://127.0.0.1./",
        "https://0x08.0x08.0x08.0x08/",
        "https://134744072/",
        "https://1.2.3.004/",
        "https://loopback.example.com/",
        "https://private.example.com/",
        "https://metadata.example.com/",
        "https://cgnat.example.com/",
        "https://ula.example.com/",
        "https://mapped.example.com/",
        "https://zoned.example.com/",
        "https://mixed.example.com/",
        "https://mixed-v6.example.com/",
        "https://does-not-resolve.example.com/",
        "https://hooks.example.com/" + "a" * 2100,
    ],
)
def test_unsafe_or_malformed_targets_are_refused(url):
    with pytest.raises(errors.InvalidInput) as refused:
        check_webhook_url(url, resolve=FakeDns(), allow_private=False)

    assert [detail.field for detail in refused.value.details] == ["base_url"]


@pytest.mark.parametrize("value", [None, 42, b"https://hooks.example.com"])
def test_values_that_are_not_strings_are_refused(value):
    with pytest.raises(errors.InvalidInput):
        check_webhook_url(value, resolve=FakeDns(), allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:3000/webhooks",
        "https://127.0.0.1:8443/",
        "http://receiver:8080/hooks",
        "http://[::1]:3000",
        "https://loopback.example.com/hooks",
        "https://does-not-resolve.example.com/",
        "http://2130706433/",
    ],
)
def test_allow_private_lifts_the_address_checks(url):
    assert check_webhook_url(url, resolve=FakeDns(), allow_private=True) == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://localhost/",
        "http://",
        "http://user:pass@localhost/",
        "http://localhost/?x=1",
    ],
)
def test_allow_private_still_needs_a_well_formed_http_url(url):
    with pytest.raises(errors.InvalidInput):
        check_webhook_url(url, resolve=FakeDns(), allow_private=True)


def test_allow_private_does_not_resolve():
    dns = FakeDns()

    check_webhook_url("http://receiver:8080/", resolve=dns, allow_private=True)

    assert dns.asked == []


@pytest.mark.parametrize("url", ["https://127.0.0.1/", "https://[::1]/", "https://0x7f000001/"])
def test_ip_literals_are_not_sent_to_the_resolver(url):
    dns = FakeDns()

    with pytest.raises(errors.InvalidInput):
        check_webhook_url(url, resolve=dns, allow_private=False)

    assert dns.asked == []


def test_names_are_resolved_once_in_lowercase():
    dns = FakeDns()

    check_webhook_url("https://HOOKS.Example.com/", resolve=dns, allow_private=False)

    assert dns.asked == ["hooks.example.com"]


def test_the_error_names_the_field_given():
    with pytest.raises(errors.InvalidInput) as refused:
        check_webhook_url("https://localhost/", resolve=FakeDns(), allow_private=False, field="app.base_url")

    assert refused.value.details[0].field == "app.base_url"


def test_the_error_does_not_repeat_credentials_in_the_url():
    with pytest.raises(errors.InvalidInput) as refused:
        check_webhook_url("https://user:hunter2@hooks.example.com/", resolve=FakeDns(), allow_private=False)

    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "::ffff:10.0.0.1", "fe80::1%eth0"])
def test_check_address_refuses_non_public_addresses_at_connect_time(ip):
    with pytest.raises(errors.Forbidden):
        check_address(ip, allow_private=False)


@pytest.mark.parametrize("ip", [PUBLIC_V4, PUBLIC_V6])
def test_check_address_allows_public_addresses(ip):
    check_address(ip, allow_private=False)


def test_check_address_allows_anything_when_private_targets_are_allowed():
    check_address("127.0.0.1", allow_private=True)


def test_the_socket_resolver_finds_loopback_for_localhost():
    addresses = SocketResolver().addresses("localhost")

    assert addresses
    assert set(addresses) <= {"127.0.0.1", "::1"}
    assert len(addresses) == len(set(addresses))


@pytest.mark.parametrize("host", ["a..b", "x" * 300])
def test_the_socket_resolver_returns_nothing_for_names_it_cannot_look_up(host):
    assert SocketResolver().addresses(host) == []

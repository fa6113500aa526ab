"""GitHubRest against the GitHub stand-in over real loopback HTTP: status codes, rate limits, redirects, tokens."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import requests

from chalicelib import __version__, errors
from chalicelib.adapters.github_rest import GitHubRest
from chalicelib.ports import GitHubRepository
from docora_local.standins.github_api import GitHubStandIn, SeenRequest

NOW = 1_700_000_000.0
TOKEN = "ghp_" + "a" * 36


@pytest.fixture
def github() -> Iterator[GitHubStandIn]:
    with GitHubStandIn(clock=lambda: NOW) as standin:
        yield standin


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture
def client(github: GitHubStandIn, session: requests.Session) -> GitHubRest:
    return GitHubRest(github.url, session=session, now=lambda: NOW)


def _causes(error: BaseException | None) -> Iterator[BaseException]:
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def test_a_public_repository_is_read_without_a_token(github, client):
    github.add_repository("Octo", "hello.js", default_branch="trunk", branches=("trunk",))

    repository = client.repository("Octo", "hello.js", None)

    assert repository == GitHubRepository(owner="Octo", name="hello.js", is_private=False, default_branch="trunk")


def test_a_private_repository_is_read_with_its_token(github, client):
    github.add_repository("octo", "secret", private=True, token=TOKEN)

    repository = client.repository("octo", "secret", TOKEN)

    assert repository == GitHubRepository(owner="octo", name="secret", is_private=True, default_branch="main")


def test_a_private_repository_is_not_found_without_a_token(github, client):
    github.add_repository("octo", "secret", private=True, token=TOKEN)

    with pytest.raises(errors.NotFound):
        client.repository("octo", "secret", None)


def test_a_private_repository_is_not_found_with_a_token_that_cannot_read_it(github, client):
    github.add_repository("octo", "secret", private=True, token=TOKEN)
    github.add_token("ghp_other")

    with pytest.raises(errors.NotFound):
        client.repository("octo", "secret", "ghp_other")


def test_an_unknown_repository_is_not_found(client):
    with pytest.raises(errors.NotFound, match="not found"):
        client.repository("octo", "missing", None)


def test_a_rejected_token_is_unprocessable_and_not_repeated(github, client):
    github.add_repository("octo", "hello")

    with pytest.raises(errors.Unprocessable, match="GitHub rejected the token") as raised:
        client.repository("octo", "hello", TOKEN)

    assert all(TOKEN not in str(error) for error in _causes(raised.value))


@pytest.mark.parametrize("status", [403, 429])
def test_a_rate_limit_waits_as_long_as_retry_after_says(github, client, status):
    github.add_repository("octo", "hello")
    github.rate_limit(retry_after=42, reset_in=600, status=status)

    with pytest.raises(errors.Unavailable, match="rate limit") as raised:
        client.repository("octo", "hello", None)

    assert raised.value.retry_after == 42


@pytest.mark.parametrize(("reset_in", "expected"), [(90, 90), (-30, 1), (7200, 3600)], ids=["ahead", "past", "far"])
def test_a_rate_limit_without_retry_after_waits_until_the_reset_clamped(github, client, reset_in, expected):
    github.add_repository("octo", "hello")
    github.rate_limit(reset_in=reset_in)

    with pytest.raises(errors.Unavailable, match="rate limit") as raised:
        client.repository("octo", "hello", None)

    assert raised.value.retry_after == expected


def test_a_forbidden_answer_that_is_not_a_rate_limit_is_not_found(github, client):
    github.fail_with(403)

    with pytest.raises(errors.NotFound):
        client.repository("octo", "hello", None)


def test_a_server_error_is_unavailable(github, client):
    github.fail_with(500)

    with pytest.raises(errors.Unavailable, match="GitHub did not answer") as raised:
        client.repository("octo", "hello", None)

    assert raised.value.retry_after is None


def test_an_answer_that_is_not_json_is_unavailable(github, client):
    github.fail_with(200, body=b"<html>unicorn</html>")

    with pytest.raises(errors.Unavailable):
        client.repository("octo", "hello", None)


def test_a_server_that_is_not_listening_is_unavailable(session):
    with socket.socket() as bound_but_not_listening:
        bound_but_not_listening.bind(("127.0.0.1", 0))
        port = bound_but_not_listening.getsockname()[1]
        client = GitHubRest(f"http://127.0.0.1:{port}", session=session)

        with pytest.raises(errors.Unavailable, match="GitHub did not answer"):
            client.repository("octo", "hello", TOKEN)


def test_a_server_slower_than_the_timeout_is_unavailable(github, session):
    github.add_repository("octo", "hello")
    github.delay(5)
    client = GitHubRest(github.url, session=session, timeout=0.5)

    with pytest.raises(errors.Unavailable, match="GitHub did not answer"):
        client.repository("octo", "hello", None)


@pytest.mark.parametrize("branch", ["main", "feature/x"])
def test_has_branch_is_true_for_an_existing_branch(github, client, branch):
    github.add_repository("octo", "hello", branches=("main", "feature/x"))

    assert client.has_branch("octo", "hello", branch, None) is True


def test_has_branch_is_false_for_a_missing_branch(github, client):
    github.add_repository("octo", "hello")

    assert client.has_branch("octo", "hello", "gh-pages", None) is False


def test_has_branch_reports_a_rejected_token(github, client):
    github.add_repository("octo", "hello")

    with pytest.raises(errors.Unprocessable):
        client.has_branch("octo", "hello", "main", TOKEN)


def test_a_branch_name_is_quoted_into_one_path_segment(github, client):
    github.add_repository("octo", "hello", branches=("feature/x",))

    client.has_branch("octo", "hello", "feature/x", None)

    assert github.requests_seen[-1].path == "/repos/octo/hello/branches/feature%2Fx"


def test_a_renamed_repository_is_followed_on_the_same_host_with_its_token(github, client):
    github.add_repository("octo", "old-name", private=True, token=TOKEN)
    github.rename("octo", "old-name", "octo", "new-name")

    repository = client.repository("octo", "old-name", TOKEN)

    assert repository.is_private is True
    assert github.requests_seen == [
        SeenRequest("GET", "/repos/octo/old-name", authorized=True),
        SeenRequest("GET", "/repos/octo/new-name", authorized=True),
    ]


def test_a_renamed_repository_keeps_its_branches(github, client):
    github.add_repository("octo", "old-name", branches=("main", "dev"))
    github.rename("octo", "old-name", "octo", "new-name")

    assert client.has_branch("octo", "old-name", "dev", None) is True


def test_a_redirect_to_another_host_is_refused(github, client):
    port = github.url.rsplit(":", 1)[1]
    github.add_repository("octo", "old-name", private=True, token=TOKEN)
    github.rename("octo", "old-name", "octo", "new-name", api_url=f"http://localhost:{port}")

    with pytest.raises(errors.Unavailable):
        client.repository("octo", "old-name", TOKEN)

    assert len(github.requests_seen) == 1


def test_more_than_three_redirects_are_refused(github, client):
    github.add_repository("octo", "r0")
    for hop in range(4):
        github.rename("octo", f"r{hop}", "octo", f"r{hop + 1}")

    with pytest.raises(errors.Unavailable, match="redirected too many times"):
        client.repository("octo", "r0", None)

    assert len(github.requests_seen) == 4


def test_the_token_travels_only_in_a_bearer_authorization_header(github, client):
    github.add_repository("octo", "secret", private=True, token=TOKEN, branches=("main",))

    client.repository("octo", "secret", TOKEN)
    client.has_branch("octo", "secret", "main", TOKEN)

    assert all(TOKEN not in seen.path for seen in github.requests_seen)
    assert [headers["Authorization"] for headers in github.headers_seen] == [f"Bearer {TOKEN}"] * 2


def test_no_authorization_header_is_sent_without_a_token(github, client):
    github.add_repository("octo", "hello")

    client.repository("octo", "hello", None)

    assert github.requests_seen == [SeenRequest("GET", "/repos/octo/hello", authorized=False)]


def test_requests_name_docora_and_the_api_version(github, client):
    github.add_repository("octo", "hello")

    client.repository("octo", "hello", None)

    headers = github.headers_seen[-1]
    assert headers["User-Agent"] == f"Docora/{__version__}"
    assert headers["Accept"] == "application/vnd.github+json"
    assert headers["X-GitHub-Api-Version"] == "2022-11-28"


def test_a_token_that_cannot_be_a_header_is_rejected_without_being_sent_or_echoed(github, client):
    token = "ghp_abc\r\nX-Injected: yes"

    with pytest.raises(errors.Unprocessable) as raised:
        client.repository("octo", "hello", token)

    assert all("ghp_abc" not in str(error) for error in _causes(raised.value))
    assert github.requests_seen == []


def test_an_owner_cannot_add_path_segments(github, client):
    github.add_repository("octo", "hello")

    with pytest.raises(errors.NotFound):
        client.repository("octo/hello", "..", None)
    with pytest.raises(errors.NotFound):
        client.repository("a/b", "c", None)

    assert [seen.path for seen in github.requests_seen] == ["/repos/a%2Fb/c"]

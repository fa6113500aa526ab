"""Which GitHub URLs and tokens registration accepts, and the one spelling each URL is reduced to."""

from __future__ import annotations

import pytest

from chalicelib import errors
from chalicelib.domain.github_urls import GitHubUrl, check_github_token, parse_github_url


@pytest.mark.parametrize(
    ("url", "owner", "name"),
    [
        ("https://github.com/octocat/hello-world", "octocat", "hello-world"),
        ("https://github.com/octocat/hello-world/", "octocat", "hello-world"),
        ("https://github.com/octocat/hello-world.git", "octocat", "hello-world"),
        ("https://github.com/octocat/hello-world.git/", "octocat", "hello-world"),
        ("https://github.com/vercel/next.js", "vercel", "next.js"),
        ("https://github.com/vercel/next.js.git", "vercel", "next.js"),
        ("https://github.com/vercel/next.js/", "vercel", "next.js"),
        ("https://GitHub.COM/octocat/hello-world", "octocat", "hello-world"),
        ("HTTPS://github.com/octocat/hello-world", "octocat", "hello-world"),
        ("https://github.com/OctoCat/Hello-World", "octocat", "hello-world"),
        ("https://github.com/octocat/Hello.GIT", "octocat", "hello"),
        ("https://github.com/a/b", "a", "b"),
        ("https://github.com/my-org-2/repo_name", "my-org-2", "repo_name"),
        ("https://github.com/octocat/.github", "octocat", ".github"),
        ("https://github.com/octocat/...", "octocat", "..."),
        ("https://github.com/octocat/-leading-hyphen", "octocat", "-leading-hyphen"),
        ("https://github.com/" + "a" * 39 + "/" + "b" * 100, "a" * 39, "b" * 100),
    ],
    ids=[
        "plain",
        "trailing-slash",
        "dot-git",
        "dot-git-and-slash",
        "dotted-name",
        "dotted-name-dot-git",
        "dotted-name-slash",
        "host-case",
        "scheme-case",
        "owner-and-name-case",
        "dot-git-case",
        "one-letter",
        "hyphen-digit-underscore",
        "leading-dot",
        "three-dots",
        "name-leading-hyphen",
        "longest",
    ],
)
def test_accepted_urls(url, owner, name):
    parsed = parse_github_url(url)

    assert parsed == GitHubUrl(owner=owner, name=name)
    assert parsed.url == f"https://github.com/{owner}/{name}"


def test_one_repository_spelled_two_ways_is_one_url():
    assert parse_github_url("https://github.com/Foo/Bar.git/").url == parse_github_url("https://github.com/foo/bar").url


@pytest.mark.parametrize("url", ["https://github.com/vercel/next.js.git", "https://github.com/OctoCat/Hello.GIT/"])
def test_parsing_a_normalised_url_gives_it_back(url):
    normalised = parse_github_url(url).url

    assert parse_github_url(normalised).url == normalised


@pytest.mark.parametrize(
    "url",
    [
        "",
        "github.com/octocat/hello-world",
        "http://github.com/octocat/hello-world",
        "git@github.com:octocat/hello-world.git",
        "ssh://git@github.com/octocat/hello-world",
        "git://github.com/octocat/hello-world",
        "https://www.github.com/octocat/hello-world",
        "https://gitlab.com/octocat/hello-world",
        "https://github.com.evil.example/octocat/hello-world",
        "https://evil.example/github.com/octocat/hello-world",
        "https://github.com./octocat/hello-world",
        "https://api.github.com/repos/octocat/hello-world",
        "https://github.com:443/octocat/hello-world",
        "https://user:ghp_secret@github.com/octocat/hello-world",
        "https://github.com@evil.example/octocat/hello-world",
        "https://github.com",
        "https://github.com/",
        "https://github.com/octocat",
        "https://github.com/octocat/",
        "https://github.com/octocat/hello-world/tree/main",
        "https://github.com/octocat/hello-world/issues",
        "https://github.com//octocat/hello-world",
        "https://github.com/octocat//hello-world",
        "https://github.com/octocat/hello-world//",
        "https://github.com/octocat/hello-world?tab=readme",
        "https://github.com/octocat/hello-world?",
        "https://github.com/octocat/hello-world#readme",
        "https://github.com/octocat/..",
        "https://github.com/octocat/.",
        "https://github.com/../hello-world",
        "https://github.com/octocat/../../etc/passwd",
        "https://github.com/octocat/%2e%2e",
        "https://github.com/octocat/hello%2Dworld",
        "https://github.com/%6fctocat/hello-world",
        "https://github.com/octocat\\hello-world",
        "https://github.com\\octocat/hello-world",
        "https://github.com/octocat/hello world",
        " https://github.com/octocat/hello-world",
        "https://github.com/octocat/hello-world\n",
        "https://github.com/octocat/hello-world\t",
        "https://github.com/octocat/hello\x00world",
        "https://github.com/octocat/héllo",
        "https://github.com/-octocat/hello-world",
        "https://github.com/octocat-/hello-world",
        "https://github.com/octo--cat/hello-world",
        "https://github.com/octo_cat/hello-world",
        "https://github.com/octo.cat/hello-world",
        "https://github.com/" + "a" * 40 + "/hello-world",
        "https://github.com/octocat/" + "b" * 101,
        "https://github.com/octocat/hello@world",
        "https://github.com/octocat/hello+world",
        "https://github.com/octocat/.git",
        "https://github.com/octocat/hello.git.git",
        "https://github.com/octocat/" + "a" * 400,
    ],
)
def test_refused_urls(url):
    with pytest.raises(errors.InvalidInput) as refused:
        parse_github_url(url)

    assert [detail.field for detail in refused.value.details] == ["github_url"]


@pytest.mark.parametrize("value", [None, 42, ["https://github.com/a/b"]])
def test_values_that_are_not_strings_are_refused(value):
    with pytest.raises(errors.InvalidInput):
        parse_github_url(value)


def test_the_error_names_the_field_given():
    with pytest.raises(errors.InvalidInput) as refused:
        parse_github_url("http://github.com/a/b", field="repository.url")

    assert refused.value.details[0].field == "repository.url"


def test_the_error_does_not_repeat_credentials_in_the_url():
    with pytest.raises(errors.InvalidInput) as refused:
        parse_github_url("https://x:ghp_" + "s" * 36 + "@github.com/a/b")

    assert "ghp_" not in str(refused.value)
    assert "ghp_" not in refused.value.details[0].message


CLASSIC = "ghp_" + "A1b2C3d4E5" * 3 + "abcdef"
FINE_GRAINED = "github_pat_11ABCDEFG0" + "a" * 12 + "_" + "Z9" * 29 + "x"
INSTALLATION = "ghs_" + "0" * 36


@pytest.mark.parametrize(
    "token",
    [CLASSIC, FINE_GRAINED, INSTALLATION, "github_pat_" + "a" * 22, "github_pat_" + "a" * 244],
    ids=["classic", "fine-grained", "installation", "fine-grained-shortest", "fine-grained-longest"],
)
def test_accepted_tokens(token):
    assert check_github_token(token) == token


@pytest.mark.parametrize(
    "token",
    [
        "",
        "ghp_",
        "ghp_" + "a" * 35,
        "ghp_" + "a" * 37,
        "ghp_" + "a" * 35 + "_",
        "ghp_" + "a" * 35 + "-",
        "GHP_" + "a" * 36,
        "ghs_" + "a" * 35,
        "gho_" + "a" * 36,
        "ghu_" + "a" * 36,
        "ghr_" + "a" * 36,
        "github_pat_" + "a" * 21,
        "github_pat_" + "a" * 245,
        "github_pat_" + "a" * 30 + "-" + "a",
        "docora_" + "a" * 64,
        "a" * 40,
        " " + CLASSIC,
        CLASSIC + " ",
        CLASSIC + "\n",
        "Bearer " + CLASSIC,
        "token " + CLASSIC,
        None,
        42,
    ],
)
def test_refused_tokens(token):
    with pytest.raises(errors.InvalidInput) as refused:
        check_github_token(token)

    assert [detail.field for detail in refused.value.details] == ["github_token"]


def test_a_refused_token_is_never_in_the_message():
    token = "ghp_" + "Secret" * 6 + "x"

    with pytest.raises(errors.InvalidInput) as refused:
        check_github_token(token)

    assert token not in str(refused.value)
    assert token[4:] not in refused.value.details[0].message

"""Ids, bearer tokens and the keyed lookup that finds a token's app in constant work."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from chalicelib.domain import tokens

SECRET = bytes.fromhex("0f" * 32)


def test_app_ids_have_the_protocol_shape():
    app_id = tokens.new_app_id()

    assert re.fullmatch(r"app_[0-9a-f]{24}", app_id)
    assert tokens.is_app_id(app_id)


def test_repository_ids_have_the_protocol_shape():
    repository_id = tokens.new_repository_id()

    assert re.fullmatch(r"repo_[0-9a-f]{24}", repository_id)
    assert tokens.is_repository_id(repository_id)


def test_bearer_tokens_have_the_protocol_shape():
    token = tokens.new_bearer_token()

    assert re.fullmatch(r"docora_[0-9a-f]{64}", token)
    assert tokens.looks_like_bearer_token(token)


def test_generated_client_auth_keys_are_64_hex_characters():
    assert re.fullmatch(r"[0-9a-f]{64}", tokens.new_client_auth_key())


@pytest.mark.parametrize(
    "make", [tokens.new_app_id, tokens.new_repository_id, tokens.new_bearer_token, tokens.new_client_auth_key]
)
def test_generated_values_do_not_repeat(make):
    assert len({make() for _ in range(200)}) == 200


@pytest.mark.parametrize(
    "value",
    [
        "",
        "app_",
        "app_" + "a" * 23,
        "app_" + "a" * 25,
        "app_" + "A" * 24,
        "app_" + "g" * 24,
        "APP_" + "a" * 24,
        "repo_" + "a" * 24,
        "app_" + "a" * 24 + "\n",
        " app_" + "a" * 24,
        None,
        42,
    ],
)
def test_malformed_app_ids_are_refused(value):
    assert not tokens.is_app_id(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "repo_" + "a" * 23,
        "repo_" + "a" * 25,
        "repo_" + "F" * 24,
        "app_" + "a" * 24,
        "repo_" + "a" * 24 + "\n",
        None,
    ],
)
def test_malformed_repository_ids_are_refused(value):
    assert not tokens.is_repository_id(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "docora_",
        "docora_" + "a" * 63,
        "docora_" + "a" * 65,
        "docora_" + "A" * 64,
        "Docora_" + "a" * 64,
        "ghp_" + "a" * 64,
        "docora_" + "a" * 64 + "\n",
        "Bearer docora_" + "a" * 64,
        None,
    ],
)
def test_malformed_bearer_tokens_are_refused(value):
    assert not tokens.looks_like_bearer_token(value)


def test_the_lookup_key_is_stable_for_one_token_and_secret():
    token = tokens.new_bearer_token()

    assert tokens.token_lookup_key(token, SECRET) == tokens.token_lookup_key(token, SECRET)


def test_the_lookup_key_is_a_sha256_digest():
    assert len(tokens.token_lookup_key(tokens.new_bearer_token(), SECRET)) == 32


def test_different_tokens_get_different_lookup_keys():
    assert tokens.token_lookup_key("docora_a", SECRET) != tokens.token_lookup_key("docora_b", SECRET)


def test_the_lookup_key_depends_on_the_secret():
    token = tokens.new_bearer_token()

    assert tokens.token_lookup_key(token, SECRET) != tokens.token_lookup_key(token, bytes(32))


def test_the_lookup_key_is_not_keyed_with_the_secret_itself():
    token = tokens.new_bearer_token()
    direct = hmac.new(SECRET, token.encode(), hashlib.sha256).digest()

    assert tokens.token_lookup_key(token, SECRET) != direct


def test_the_lookup_key_matches_its_documented_derivation():
    derived = hmac.new(SECRET, b"docora/token-lookup/v1", hashlib.sha256).digest()
    expected = hmac.new(derived, b"docora_abc", hashlib.sha256).digest()

    assert tokens.token_lookup_key("docora_abc", SECRET) == expected


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("secret", "secret", True),
        ("secret", "secreT", False),
        ("secret", "secret ", False),
        ("", "", True),
        ("", "x", False),
        ("clé", "clé", True),
        ("clé", "cle", False),
    ],
)
def test_same_secret(a, b, same):
    assert tokens.same_secret(a, b) is same

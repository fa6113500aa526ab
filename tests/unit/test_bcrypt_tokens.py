"""Bearer tokens are stored only as bcrypt hashes and checked against them."""

from __future__ import annotations

from chalicelib.adapters.bcrypt_tokens import BcryptTokenHasher
from chalicelib.domain import tokens

SECRET = bytes(range(32))


def test_a_token_verifies_against_its_own_hash():
    hasher = BcryptTokenHasher(SECRET, rounds=4)
    token = tokens.new_bearer_token()

    assert hasher.verify(token, hasher.hash(token))


def test_another_token_does_not_verify():
    hasher = BcryptTokenHasher(SECRET, rounds=4)
    token_hash = hasher.hash(tokens.new_bearer_token())

    assert not hasher.verify(tokens.new_bearer_token(), token_hash)


def test_hashes_are_salted():
    hasher = BcryptTokenHasher(SECRET, rounds=4)
    token = tokens.new_bearer_token()

    assert hasher.hash(token) != hasher.hash(token)


def test_the_hash_does_not_contain_the_token():
    token = tokens.new_bearer_token()

    assert token not in BcryptTokenHasher(SECRET, rounds=4).hash(token)


def test_the_default_cost_is_12():
    token_hash = BcryptTokenHasher(SECRET).hash(tokens.new_bearer_token())

    assert token_hash.startswith("$2b$12$")


def test_the_given_cost_is_used():
    assert BcryptTokenHasher(SECRET, rounds=4).hash("docora_x").startswith("$2b$04$")


def test_a_malformed_hash_verifies_nothing():
    hasher = BcryptTokenHasher(SECRET, rounds=4)

    assert not hasher.verify("docora_x", "not a bcrypt hash")
    assert not hasher.verify("docora_x", "")
    assert not hasher.verify("docora_x", "$2b$04$" + "é" * 53)


def test_a_token_longer_than_bcrypt_reads_verifies_nothing():
    hasher = BcryptTokenHasher(SECRET, rounds=4)
    token_hash = hasher.hash("x" * 72)

    assert not hasher.verify("x" * 73, token_hash)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_verified_pair_is_remembered_and_then_forgotten():
    clock = _Clock()
    hasher = BcryptTokenHasher(SECRET, rounds=4, remember_seconds=60, clock=clock)
    token = tokens.new_bearer_token()
    token_hash = hasher.hash(token)
    hasher.verify(token, token_hash)
    calls = []
    hasher._checks = lambda *pair: calls.append(pair) or True  # count the bcrypt checks that still happen

    hasher.verify(token, token_hash)
    clock.now += 61
    hasher.verify(token, token_hash)

    assert len(calls) == 1


def test_a_remembered_token_is_checked_again_against_a_new_hash():
    hasher = BcryptTokenHasher(SECRET, rounds=4)
    token = tokens.new_bearer_token()
    hasher.verify(token, hasher.hash(token))

    assert not hasher.verify(token, hasher.hash(tokens.new_bearer_token()))


def test_failures_are_not_remembered_and_memory_is_bounded():
    hasher = BcryptTokenHasher(SECRET, rounds=4, remember_at_most=2)
    token_hash = hasher.hash("docora_a")

    assert not hasher.verify("docora_b", token_hash)
    for token in ("docora_1", "docora_2", "docora_3"):
        hasher.verify(token, hasher.hash(token))

    assert len(hasher._verified) == 2


def test_the_lookup_key_is_the_keyed_digest_of_the_token():
    token = tokens.new_bearer_token()

    assert BcryptTokenHasher(SECRET, rounds=4).lookup_key(token) == tokens.token_lookup_key(token, SECRET)

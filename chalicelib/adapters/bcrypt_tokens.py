"""Bearer tokens stored as bcrypt hashes, so a leaked table does not give anyone a working token.

bcrypt reads at most 72 bytes and bcrypt 5 refuses longer input; a bearer token (`docora_` + 64 hex) is 71.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable

import bcrypt

from chalicelib.domain import tokens


class BcryptTokenHasher:
    def __init__(
        self,
        lookup_secret: bytes,
        rounds: int = 12,
        *,
        remember_seconds: float = 300.0,
        remember_at_most: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`lookup_secret` keys the lookup digest (ENCRYPTION_KEY); `rounds` is the bcrypt cost, which tests lower.

        A cost-12 check takes about 0.3 s of CPU. A warm container remembers, for `remember_seconds`,
        which (token, hash) pairs it has already verified, so an app's later requests skip bcrypt.
        The pair includes the stored hash: a rotated token has a new hash and is checked afresh,
        and a revoked one no longer finds its row at all. Only digests are kept, never tokens.
        """
        self._lookup_secret = lookup_secret
        self._rounds = rounds
        self._remember_seconds = remember_seconds
        self._remember_at_most = remember_at_most
        self._clock = clock
        self._verified: OrderedDict[bytes, float] = OrderedDict()

    def lookup_key(self, token: str) -> bytes:
        return tokens.token_lookup_key(token, self._lookup_secret)

    def hash(self, token: str) -> str:
        return bcrypt.hashpw(token.encode("utf-8"), bcrypt.gensalt(self._rounds)).decode("ascii")

    def verify(self, token: str, token_hash: str) -> bool:
        pair = hashlib.sha256(token_hash.encode("utf-8") + b"\0" + token.encode("utf-8")).digest()
        now = self._clock()
        if self._verified.get(pair, 0.0) > now:
            self._verified.move_to_end(pair)
            return True
        if not self._checks(token, token_hash):
            return False
        self._verified[pair] = now + self._remember_seconds
        while len(self._verified) > self._remember_at_most:
            self._verified.popitem(last=False)
        return True

    def _checks(self, token: str, token_hash: str) -> bool:
        try:
            return bcrypt.checkpw(token.encode("utf-8"), token_hash.encode("ascii"))
        except ValueError:
            # A malformed stored hash, a non-ASCII one (UnicodeEncodeError), or a token past 72 bytes:
            # none of them can match.
            return False

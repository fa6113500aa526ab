"""POSTs one webhook with urllib3 and says what happened, refusing at connect time any address that is not public.

The SSRF guard runs inside urllib3's connection, on the addresses the socket is about to use, so a host that
resolved to a public address at onboarding and to 127.0.0.1 now (DNS rebinding) is still refused. TLS keeps
using the URL's host name for SNI and certificate checks, because only the socket's address is chosen here.

The timeout bounds the whole exchange, not each read: urllib3's own timeout restarts with every byte received, so a
receiver trickling its answer a byte at a time would otherwise hold the job as long as it liked. One watchdog thread
per sender keeps every request's deadline, because starting a timer thread per request cost as much as the POST.

urllib3 rather than requests: a webhook needs none of what requests adds (cookies, auth, proxies from the
environment, redirects), and preparing and merging all that took more time than the POST on loopback.
"""

from __future__ import annotations

import heapq
import http.client
import ipaddress
import itertools
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import certifi
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import create_connection

from chalicelib import errors
from chalicelib.adapters.socket_resolver import SocketResolver
from chalicelib.domain import webhook_targets
from chalicelib.ports import WebhookResult

# Bounded so that a Lambda container serving many apps does not keep a socket open to every receiver it met.
_MAX_HOSTS = 64
# Receivers' answers are not used beyond the status line; reading a small body lets the connection be reused.
_MAX_RESPONSE_BYTES = 64 * 1024


class WebhookSender:
    def __init__(
        self,
        *,
        allow_private: bool,
        user_agent: str,
        resolver: Callable[[str], list[str]] | None = None,
        ca_bundle: str | None = None,
        connections_per_host: int = 8,
    ) -> None:
        """`connections_per_host` is the most requests in flight to one receiver (MAX_IN_FLIGHT_CEILING); `ca_bundle`
        replaces the trusted CAs (certifi's, as requests used); tests use it for their own receiver."""
        guard = _AddressGuard(allow_private, resolver or SocketResolver().addresses)
        self._user_agent = user_agent
        # One pool per receiver, the least recently used closed beyond _MAX_HOSTS. No proxy and no .netrc is read:
        # either would connect or add credentials past the guard.
        self._pools = urllib3.PoolManager(
            num_pools=_MAX_HOSTS,
            maxsize=connections_per_host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_bundle or certifi.where(),
        )
        # Pool keyword arguments reach each connection's constructor, which is how the guard gets there.
        self._pools.pool_classes_by_scheme = {
            "http": partial(_GuardedHTTPPool, guard=guard),
            "https": partial(_GuardedHTTPSPool, guard=guard),
        }
        self._watchdog = _Watchdog()

    def send(self, url: str, body: bytes, headers: Mapping[str, str], *, timeout: float = 30.0) -> WebhookResult:
        """POST `body` once, without following redirects; never raises for what the network or receiver does."""
        started = time.monotonic()
        try:
            parts = urlsplit(url)
        except ValueError:
            return _result(started, error="invalid URL")
        host = parts.hostname or ""
        with _Deadline(timeout, self._watchdog) as deadline:
            try:
                response = self._pools.urlopen(
                    "POST",
                    url,
                    body=body,
                    headers={"User-Agent": self._user_agent, **headers},
                    timeout=urllib3.Timeout(connect=timeout, read=timeout),
                    redirect=False,
                    retries=False,
                    preload_content=False,
                )
            except errors.Forbidden:
                return _result(started, error=f"refused: {host} resolves to a private address")
            except ValueError as error:
                # Invalid URLs and the like; the exception's text may quote the request, so only its kind is kept.
                return _result(started, error=f"request failed ({type(error).__name__})")
            except (urllib3.exceptions.HTTPError, OSError) as error:
                reason = f"timed out after {timeout:g} s" if deadline.expired else _describe(error, host, timeout)
                return _result(started, error=reason)
            cut_off = not _drain(response, deadline=started + timeout) and deadline.expired
        if cut_off or time.monotonic() > started + timeout:
            # The answer did not arrive whole in time: the receiver may not have kept what it said it kept.
            return _result(started, error=f"timed out after {timeout:g} s")
        retry_after = response.headers.get("Retry-After")
        return _result(started, status_code=response.status, retry_after=retry_after)

    def close(self) -> None:
        self._pools.clear()
        self._watchdog.close()


class _AddressGuard:
    def __init__(self, allow_private: bool, resolve: Callable[[str], list[str]]) -> None:
        self._allow_private = allow_private
        self._resolve = resolve

    def addresses(self, host: str) -> list[str]:
        """Where `host` may be reached; raises Forbidden when any of its addresses is not public."""
        bare = host.strip("[]")
        try:
            addresses = [str(ipaddress.ip_address(bare))]
        except ValueError:
            addresses = self._resolve(bare)
        # All or nothing, like onboarding: a name that also points inside is a rebinding attempt, not a fallback.
        for address in addresses:
            webhook_targets.check_address(address, allow_private=self._allow_private)
        return addresses


class _GuardedConnectionMixin:
    """Replaces urllib3's socket opening, which would resolve the host again, out of the guard's sight."""

    def __init__(self, *args: Any, guard: _AddressGuard, **kwargs: Any) -> None:
        self._guard = guard
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        conn: Any = self
        addresses = self._guard.addresses(conn.host)
        if not addresses:
            raise NameResolutionError(conn.host, conn, socket.gaierror(socket.EAI_NONAME, "does not resolve"))
        last_error: OSError | None = None
        for address in addresses:
            try:
                return create_connection(
                    (address, conn.port),
                    conn.timeout,
                    source_address=conn.source_address,
                    socket_options=conn.socket_options,
                )
            except OSError as error:
                last_error = error
        if isinstance(last_error, TimeoutError):
            message = f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
            raise ConnectTimeoutError(conn, message) from last_error
        raise NewConnectionError(conn, f"Failed to establish a new connection: {last_error}") from last_error

    def request(self, *args: Any, **kwargs: Any) -> None:
        _Deadline.watch(self)  # every request, on a new or a reused connection
        super().request(*args, **kwargs)  # type: ignore[misc]


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection

    def _put_conn(self, conn: Any) -> None:
        _Deadline.forget(conn)  # back in the pool, it may serve another request: no deadline may shut it now
        super()._put_conn(conn)


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection

    def _put_conn(self, conn: Any) -> None:
        _Deadline.forget(conn)
        super()._put_conn(conn)


class _Deadline:
    """Shuts the socket of the request in flight when its time is up, which ends any read waiting on it."""

    _current = threading.local()

    def __init__(self, seconds: float, watchdog: _Watchdog) -> None:
        self.at = time.monotonic() + seconds
        self.expired = False
        self.waiting = True  # in the watchdog's heap, neither expired nor finished; guarded by the watchdog
        self._watchdog = watchdog
        self._connection: Any = None
        self._lock = threading.Lock()

    def __enter__(self) -> _Deadline:
        _Deadline._current.value = self
        self._watchdog.watch(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._watchdog.cancel(self)
        with self._lock:
            self._connection = None
        _Deadline._current.value = None

    @classmethod
    def watch(cls, connection: Any) -> None:
        deadline = getattr(cls._current, "value", None)
        if deadline is not None:
            with deadline._lock:
                deadline._connection = connection

    @classmethod
    def forget(cls, connection: Any) -> None:
        deadline = getattr(cls._current, "value", None)
        if deadline is not None:
            with deadline._lock:
                if deadline._connection is connection:
                    deadline._connection = None

    def expire(self) -> None:
        with self._lock:
            sock = getattr(self._connection, "sock", None)
            if sock is None:
                return
            self.expired = True
            # The plain socket's shutdown, even under TLS: it wakes the reader without tearing the TLS state
            # out from under it, and the connection is dropped, never reused.
            with suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """Expires deadlines on one thread, started with the first request and ended by `close` once none is waiting."""

    # Finished requests leave their entries in the heap (removing one is O(n)); once there are this many and they are
    # most of it, one pass drops them all, so the heap stays about as small as the number of requests in flight.
    _COMPACT_AT = 64

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._order = itertools.count()  # breaks ties between equal times, which deadlines cannot be compared on
        self._finished = 0
        self._thread: threading.Thread | None = None
        self._closed = False

    def watch(self, deadline: _Deadline) -> None:
        with self._condition:
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            self._closed = False
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="webhook-deadlines", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is deadline:
                self._condition.notify()  # due before the one the thread sleeps for

    def cancel(self, deadline: _Deadline) -> None:
        with self._condition:
            if not deadline.waiting:
                return
            deadline.waiting = False
            self._finished += 1
            if self._finished >= self._COMPACT_AT and 2 * self._finished > len(self._heap):
                self._heap = [entry for entry in self._heap if entry[2].waiting]
                heapq.heapify(self._heap)
                self._finished = 0

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify()

    def _run(self) -> None:
        with self._condition:
            while True:
                while self._heap and not self._heap[0][2].waiting:
                    heapq.heappop(self._heap)
                    self._finished -= 1
                if not self._heap:
                    if self._closed:
                        self._thread = None
                        return
                    self._condition.wait()
                    continue
                at, _, deadline = self._heap[0]
                left = at - time.monotonic()
                if left > 0:
                    self._condition.wait(left)
                    continue
                heapq.heappop(self._heap)
                deadline.waiting = False
                self._condition.release()  # shutting a socket down must not hold up requests starting meanwhile
                try:
                    deadline.expire()
                finally:
                    self._condition.acquire()


def _drain(response: urllib3.BaseHTTPResponse, *, deadline: float) -> bool:
    """Read a small answer to its end so the connection goes back to the pool, dropping the connection otherwise;
    whether the answer arrived whole (or at least its first _MAX_RESPONSE_BYTES)."""
    received, complete, enough = 0, False, False
    try:
        for piece in response.stream(8192, decode_content=False):
            received += len(piece)
            if received > _MAX_RESPONSE_BYTES:
                enough = True
                break
            if time.monotonic() > deadline:
                break
        else:
            complete = True
    except (urllib3.exceptions.HTTPError, OSError):
        pass  # cut off, or broken: only the time decides whether the answer counts
    finally:
        if not complete:
            response.close()
        response.release_conn()
    return complete or enough


def _describe(error: BaseException, host: str, timeout: float) -> str:
    """A plain reason from the exception chain, matched on types; never the request, its headers or its key."""
    for cause in _causes(error):
        if isinstance(cause, NameResolutionError):
            return f"cannot resolve {host}"
        # urllib3 counts a refused connection as a connect timeout too; its cause says which it was.
        if isinstance(cause, urllib3.exceptions.TimeoutError) and not isinstance(cause, NewConnectionError):
            return f"timed out after {timeout:g} s"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
            return "connection reset"
        if isinstance(cause, TimeoutError):
            return f"timed out after {timeout:g} s"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate rejected: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError):
            return "TLS handshake failed"
        if isinstance(cause, http.client.HTTPException):
            return "invalid HTTP response"
    return "connection failed"


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and everything it wraps: urllib3 keeps causes in `reason` and in args, not only __cause__."""
    pending, seen = [error], set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [getattr(current, "reason", None), current.__cause__, current.__context__, *current.args]
        pending.extend(item for item in linked if isinstance(item, BaseException))


def _result(
    started: float, *, status_code: int | None = None, retry_after: str | None = None, error: str | None = None
) -> WebhookResult:
    duration_ms = round((time.monotonic() - started) * 1000)
    return WebhookResult(status_code=status_code, retry_after=retry_after, error=error, duration_ms=duration_ms)

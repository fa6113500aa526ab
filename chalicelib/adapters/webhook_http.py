"""POSTs one webhook with requests and says what happened, refusing at connect time any address that is not public.

The SSRF guard runs inside urllib3's connection, on the addresses the socket is about to use, so a host that
resolved to a public address at onboarding and to 127.0.0.1 now (DNS rebinding) is still refused. TLS keeps
using the URL's host name for SNI and certificate checks, because only the socket's address is chosen here.

The timeout bounds the whole exchange, not each read: requests' own timeout restarts with every byte received, so a
receiver trickling its answer a byte at a time would otherwise hold the job as long as it liked.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
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
_CONNECTIONS_PER_HOST = 4
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
    ) -> None:
        """`ca_bundle` replaces the system's trusted CAs; tests use it for a receiver with its own certificate."""
        self._guard = _AddressGuard(allow_private, resolver or SocketResolver().addresses)
        self._user_agent = user_agent
        self._ca_bundle = ca_bundle
        self._sessions: OrderedDict[tuple[str, str], requests.Session] = OrderedDict()
        self._lock = threading.Lock()

    def send(self, url: str, body: bytes, headers: Mapping[str, str], *, timeout: float = 30.0) -> WebhookResult:
        """POST `body` once, without following redirects; never raises for what the network or receiver does."""
        started = time.monotonic()
        try:
            parts = urlsplit(url)
        except ValueError:
            return _result(started, error="invalid URL")
        host = parts.hostname or ""
        with _Deadline(timeout) as deadline:
            try:
                response = self._session(parts.scheme, parts.netloc).post(
                    url, data=body, headers=dict(headers), timeout=timeout, allow_redirects=False, stream=True
                )
            except errors.Forbidden:
                return _result(started, error=f"refused: {host} resolves to a private address")
            except requests.Timeout:
                return _result(started, error=f"timed out after {timeout:g} s")
            except requests.ConnectionError as error:
                reason = f"timed out after {timeout:g} s" if deadline.expired else _describe(error, host, timeout)
                return _result(started, error=reason)
            except requests.RequestException as error:
                # Invalid URLs and the like; the exception's text may quote the request, so only its kind is kept.
                return _result(started, error=f"request failed ({type(error).__name__})")
            _drain(response, deadline=started + timeout)
        retry_after = response.headers.get("Retry-After")
        return _result(started, status_code=response.status_code, retry_after=retry_after)

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), OrderedDict()
        for session in sessions:
            session.close()

    def _session(self, scheme: str, netloc: str) -> requests.Session:
        key = (scheme.lower(), netloc.lower())
        evicted = None
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = self._new_session()
                self._sessions[key] = session
                if len(self._sessions) > _MAX_HOSTS:
                    _, evicted = self._sessions.popitem(last=False)
            self._sessions.move_to_end(key)
        if evicted is not None:
            evicted.close()
        return session

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        # Environment proxies would connect on our behalf, past the guard, and .netrc could add credentials.
        session.trust_env = False
        session.headers["User-Agent"] = self._user_agent
        if self._ca_bundle is not None:
            session.verify = self._ca_bundle
        adapter = _GuardedAdapter(self._guard, pool_connections=1, pool_maxsize=_CONNECTIONS_PER_HOST)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session


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

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._connection: Any = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        _Deadline._current.value = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
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

    def _expire(self) -> None:
        with self._lock:
            sock = getattr(self._connection, "sock", None)
            if sock is None:
                return
            self.expired = True
            # The plain socket's shutdown, even under TLS: it wakes the reader without tearing the TLS state
            # out from under it, and the connection is dropped, never reused.
            with suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, guard: _AddressGuard, **kwargs: Any) -> None:
        self._guard = guard  # before super().__init__, which builds the pool manager
        super().__init__(**kwargs)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        # Pool keyword arguments reach each connection's constructor, which is how the guard gets there.
        self.poolmanager.pool_classes_by_scheme = {
            "http": partial(_GuardedHTTPPool, guard=self._guard),
            "https": partial(_GuardedHTTPSPool, guard=self._guard),
        }


def _drain(response: requests.Response, *, deadline: float) -> None:
    """Read a small answer to its end so the connection goes back to the pool; drop the connection otherwise."""
    received = 0
    try:
        for piece in response.iter_content(8192):
            received += len(piece)
            if received > _MAX_RESPONSE_BYTES or time.monotonic() > deadline:
                break
    except requests.RequestException:
        pass  # the status line already answered; a broken body only costs the connection
    finally:
        response.close()


def _describe(error: BaseException, host: str, timeout: float) -> str:
    """A plain reason from the exception chain, matched on types; never the request, its headers or its key."""
    for cause in _causes(error):
        if isinstance(cause, NameResolutionError):
            return f"cannot resolve {host}"
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

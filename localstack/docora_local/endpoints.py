"""Whether a Postgres, a Redis or any port answers, asked with sockets before anything is started.

"Answers" means something accepts a connection there, not that credentials or the database are right:
a DATABASE_URL that answers is used as given, so a wrong password shows as a migration error instead
of being silently replaced by an embedded server.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

Probe = Callable[[str], bool]

_CONNECT_TIMEOUT_SECONDS = 0.5
# Where libpq looks when a URL names no host: Debian's choice, then the upstream default.
_DEFAULT_SOCKET_DIRS = ("/var/run/postgresql", "/tmp")  # noqa: S108 - a place to look, not to write


def tcp_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT_SECONDS):
            return True
    except OSError:
        return False


def unix_answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(_CONNECT_TIMEOUT_SECONDS)
        try:
            sock.connect(path)
        except OSError:
            return False
        return True


def free_port(host: str) -> int:
    """A port nothing listens on now; the OS may hand it out again, but not within moments."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def postgres_answers(url: str) -> bool:
    try:
        params = conninfo_to_dict(url)
        host = str(params.get("host") or "").split(",")[0]
        port = int(str(params.get("port") or 5432).split(",")[0])
    except (psycopg.ProgrammingError, ValueError):
        return False
    if host and not host.startswith("/"):
        return tcp_answers(host, port)
    return any(unix_answers(f"{directory}/.s.PGSQL.{port}") for directory in ([host] if host else _DEFAULT_SOCKET_DIRS))


def postgres_accepts(url: str) -> bool:
    """Past the socket: the server has finished starting and takes logins."""
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True


def redis_answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        if parts.scheme == "unix":
            return unix_answers(parts.path)
        return tcp_answers(parts.hostname or "localhost", parts.port or 6379)
    except ValueError:  # a port that is not a number
        return False


def http_answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return False
    return bool(parts.hostname) and tcp_answers(parts.hostname, port)


def redis_pings(host: str, port: int) -> bool:
    """Past the socket: the server has loaded its data and answers commands."""
    try:
        with socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT_SECONDS) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def describe(url: str) -> str:
    """Where a URL points, without its password."""
    parts = urlsplit(url)
    if not parts.scheme:
        return "a key=value connection string"
    if parts.scheme == "unix":
        return parts.path
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or "a local socket"
    return f"{host}:{port}" if port else host

"""Git's smart HTTP protocol v2, as Docora speaks it: one POST to git-upload-pack per command, and `ls-refs` for
a branch's head — for one repository (the scan), or for many at once on pooled keep-alive connections (head checks).

The token travels only as `Authorization: Basic base64("x-access-token:<token>")`, which GitHub accepts for git over
HTTPS; it is never put in a URL. Failures become service errors whose messages hold no token and no URL.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager

import urllib3
from dulwich.client import default_user_agent_string
from dulwich.errors import GitProtocolError
from dulwich.protocol import Protocol, pkt_line

from chalicelib import errors
from chalicelib.adapters.git_cache import remote_name
from chalicelib.domain.git_refs import check_branch_name
from chalicelib.domain.head_checks import HeadProbe, ProbedHead

NO_REPOSITORY = "repository not found"
TOKEN_REJECTED = "GitHub rejected the token"
NO_ANSWER = "git server did not answer"
OBJECT_ID = re.compile(r"[0-9a-f]{40}")
_MAX_REDIRECTS = 3
# Anything else could split the header, and http.client would echo the token in its error message.
_HEADER_SAFE_TOKEN = re.compile(r"[\x21-\x7e]+")
_UPLOAD_PACK = "git-upload-pack"


def new_pool(*, timeout: float, connections_per_host: int = 1) -> urllib3.PoolManager:
    """Connections kept alive per host; `timeout` bounds connecting and each wait for data."""
    # No retries: a failed scan is retried by the queue, and urllib3 would otherwise retry a hung request three
    # times over. Redirects are followed (GitHub redirects renamed repositories); urllib3 drops the
    # Authorization header when one leaves the host.
    retries = urllib3.Retry(total=_MAX_REDIRECTS, connect=0, read=0, status=0, other=0, redirect=_MAX_REDIRECTS)
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=timeout, read=timeout),
        retries=retries,
        maxsize=connections_per_host,
        block=True,  # more threads than connections wait for one rather than open and drop extra ones
        headers={"User-Agent": default_user_agent_string()},  # GitHub wants git clients to say "git/"
    )


def upload_pack(
    pool: urllib3.PoolManager, url: str, token: str | None, body: bytes, *, preload_content: bool = True
) -> urllib3.BaseHTTPResponse:
    """POST one protocol-v2 command; the answer, checked to be one."""
    headers = {
        "Content-Type": f"application/x-{_UPLOAD_PACK}-request",
        "Accept": f"application/x-{_UPLOAD_PACK}-result",
        "Git-Protocol": "version=2",
        **_authorization(token),
    }
    endpoint = f"{remote_name(url).rstrip('/')}/{_UPLOAD_PACK}"
    # A thread waits for a pooled connection no longer than for an answer: a slot never given back fails a request
    # instead of hanging it.
    response = pool.request("POST", endpoint, body=body, headers=headers, preload_content=preload_content,
                            pool_timeout=pool.connection_pool_kw["timeout"].read_timeout)  # fmt: skip
    if response.status in (401, 403, 404):
        discard(response)
        raise Refused(response.status)
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    if response.status != 200 or content_type != headers["Accept"]:
        discard(response)
        raise GitProtocolError(f"git-upload-pack answered {response.status}")
    return response


def discard(response: urllib3.BaseHTTPResponse) -> None:
    """Drop a connection left in the middle of an answer, and give its slot back to the pool: closing alone keeps
    the slot, and the next request would wait for it."""
    response.close()
    response.release_conn()


def ls_refs_head(pool: urllib3.PoolManager, url: str, branch: str, token: str | None) -> str | None:
    """The branch's commit id in one request, or None when the branch (or any commit at all) is missing."""
    ref = branch_ref(branch)
    body = pkt_line(b"command=ls-refs\n") + b"0001" + pkt_line(b"ref-prefix " + ref + b"\n") + pkt_line(None)
    with translated(token):
        response = upload_pack(pool, url, token, body)
        for line in Protocol(io.BytesIO(response.data).read, None).read_pkt_seq():
            commit_id, _, rest = line.rstrip(b"\n").partition(b" ")
            if not OBJECT_ID.fullmatch(commit_id.decode("ascii", "replace")):
                raise GitProtocolError("ls-refs answered something other than refs")
            if rest.split(b" ")[0] == ref:  # ref-prefix matches by prefix; a head must match whole
                return commit_id.decode("ascii")
    return None


class ConcurrentHeads:
    """Branch heads of many repositories at once: `concurrency` ls-refs in flight, each with its own timeout.

    One slow or failing repository holds up only its own thread: results come back as they complete. Built once per
    container; its threads and keep-alive connections serve every sweep of a warm one.
    """

    def __init__(self, *, concurrency: int = 64, timeout: float = 10.0) -> None:
        self._concurrency = concurrency
        self._pool = new_pool(timeout=timeout, connections_per_host=concurrency)
        self._threads: ThreadPoolExecutor | None = None

    def heads(self, probes: Iterable[HeadProbe]) -> Iterator[ProbedHead]:
        threads = self._threads or ThreadPoolExecutor(self._concurrency, thread_name_prefix="head-check")
        self._threads = threads
        waiting = iter(probes)
        running: set[Future[ProbedHead]] = set()
        while True:
            while len(running) < self._concurrency and (probe := next(waiting, None)) is not None:
                running.add(threads.submit(self._probe, probe))  # never more submitted than run: memory is bounded
            if not running:
                return
            done, running = wait(running, return_when=FIRST_COMPLETED)
            yield from (future.result() for future in done)

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
        self._pool.clear()

    def _probe(self, probe: HeadProbe) -> ProbedHead:
        try:
            return ProbedHead(probe.key, ls_refs_head(self._pool, probe.url, probe.branch, probe.token), None)
        except (errors.NotFound, errors.Unprocessable, errors.Unavailable) as error:
            return ProbedHead(probe.key, None, str(error))


class Refused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"git server answered {status}")
        self.status = status


@contextmanager
def translated(token: str | None) -> Iterator[None]:
    """Library failures to service errors whose messages never hold a token or a URL."""
    try:
        yield
    except Refused as refusal:
        # Without a token, GitHub answers 401 for a private or missing repository alike.
        if refusal.status == 404 or token is None:
            raise errors.NotFound(NO_REPOSITORY) from None
        raise errors.Unprocessable(TOKEN_REJECTED) from None
    except (GitProtocolError, urllib3.exceptions.HTTPError, OSError) as error:
        raise errors.Unavailable(NO_ANSWER) from error


def branch_ref(branch: str) -> bytes:
    return b"refs/heads/" + check_branch_name(branch).encode("utf-8")


def _authorization(token: str | None) -> dict[str, str]:
    if token is None:
        return {}
    if not _HEADER_SAFE_TOKEN.fullmatch(token):
        raise errors.Unprocessable(TOKEN_REJECTED)
    return urllib3.util.make_headers(basic_auth=f"x-access-token:{token}")

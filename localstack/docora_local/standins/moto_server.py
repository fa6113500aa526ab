"""S3 and SQS served by moto in a process of its own, for the benchmarks and the load scenario.

The real services are remote: their work is not done by the Lambda's interpreter. moto in the measured process
would be, and would hold every stored content in its heap besides (its garbage collections were charged to the
scan). Served from its own process, moto's CPU still shares the machine's 2 cores, but no longer Docora's GIL.

    with moto_server(spawn, fill=_fill) as endpoint_url:
        os.environ.update(AWS_ENV, AWS_ENDPOINT_URL=endpoint_url)  # in the measured process, before boto3 clients

`fill`, a top-level function, runs in the server's process before it serves: it can put objects straight into
moto's backend, where 5,000 PUTs through boto3 would add half a minute to a run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any

AWS_ENV = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}


@contextlib.contextmanager
def moto_server(spawn: Any, fill: Callable[[], None] | None = None) -> Iterator[str]:
    """The endpoint URL of a moto server running in a child process for as long as the block runs."""
    parent, child = spawn.Pipe()
    process = spawn.Process(target=_serve, args=(child, fill), daemon=True)
    process.start()
    try:
        answer = parent.recv()
        if not answer.startswith("http://"):
            raise SystemExit(f"moto's server did not start:\n{answer}")
        yield answer
    finally:
        process.terminate()
        process.join(timeout=30)


def _serve(pipe: Any, fill: Callable[[], None] | None) -> None:
    os.environ.update(AWS_ENV)
    # moto keeps objects up to this size in memory and bigger ones in temporary files.
    os.environ.setdefault("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(1 << 20))
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request would drown the figures
    try:
        from moto.server import ThreadedMotoServer

        if fill is not None:
            fill()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
    except BaseException:
        pipe.send(traceback.format_exc())
        raise
    pipe.send(f"http://{host}:{port}")
    threading.Event().wait()

"""The Node.js receiver (node_receiver.js) on loopback: signatures checked as the original receivers check them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

NODE_RECEIVER_JS = Path(__file__).with_name("node_receiver.js")


class NodeReceiver:
    """node_receiver.js as a subprocess: verifies like original receivers and reports what it accepted."""

    def __init__(self, key: str) -> None:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("Node.js is required for the receiver compatibility tests: `node` is not on PATH")
        env = {**os.environ, "DOCORA_CLIENT_AUTH_KEY": key}
        self._process = subprocess.Popen(
            [node, str(NODE_RECEIVER_JS)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"node_receiver.js did not start: {self._process.stderr.read()}")  # type: ignore[union-attr]
        self.port = int(json.loads(line)["port"])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def received(self) -> dict[str, Any]:
        """{"events": [...], "failures": [...], "files": [...]} as the Node receiver recorded them."""
        with urllib.request.urlopen(f"{self.url}/received", timeout=10) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.communicate()

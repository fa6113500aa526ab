"""The reference receiver (examples/receiver/receiver.py) as a subprocess, and the trees the mirror test compares."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from docora_local.standins.git_server import TestRepo, git

RECEIVER = Path(__file__).resolve().parents[2] / "examples" / "receiver" / "receiver.py"
_LISTENING = re.compile(r"listening on (http://[^,]+),")
_REGULAR_FILES = (0o100644, 0o100755)  # what Docora delivers; symlinks and submodules are not


class ReceiverProcess:
    """`receiver.py --key … --dir …` started as a user would; `lines` collects what it prints, one per event."""

    def __init__(self, key: str, folder: Path, port: int = 0) -> None:
        self.lines: list[str] = []
        self._process = subprocess.Popen(
            [sys.executable, str(RECEIVER), "--key", key, "--dir", str(folder), "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        assert self._process.stdout is not None
        first = self._process.stdout.readline()
        found = _LISTENING.search(first)
        if found is None:
            self._process.kill()
            raise RuntimeError(f"the receiver did not start: {first!r} {self._process.communicate()[1]}")
        self.url = found.group(1)
        self.port = int(self.url.rsplit(":", 1)[1])
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def wait_for_lines(self, count: int, timeout: float = 5.0) -> list[str]:
        """The lines printed so far, once there are `count` (or after `timeout`).

        The receiver prints before it answers, but a thread of ours reads the pipe, so a line can lag behind
        the answer that Docora already has.
        """
        deadline = time.monotonic() + timeout
        while len(self.lines) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.lines)

    def stop(self) -> None:
        self._process.terminate()
        self._wait()

    def crash(self) -> None:
        """SIGKILL: no clean-up, exactly as a power cut or an OOM kill would leave things."""
        self._process.kill()
        self._wait()

    def _wait(self) -> None:
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join(timeout=5)

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self.lines.append(line.rstrip("\n"))


def repository_tree(repo: TestRepo) -> dict[bytes, bytes]:
    """Path to content of every regular file at the tip of `main`, read from the served bare repository."""
    return {
        path: git("cat-file", "blob", object_id, cwd=repo.bare)
        for path, (mode, _, object_id) in repo.ls_tree().items()
        if mode in _REGULAR_FILES
    }


def folder_tree(root: Path) -> dict[bytes, bytes]:
    """Path to content of every file under `root`; raises on an empty folder, which a git tree cannot have."""
    found = {}
    for folder, subfolders, files in os.walk(os.fsencode(root)):
        if not subfolders and not files and folder != os.fsencode(root):
            raise AssertionError(f"empty folder left in the mirror: {os.fsdecode(folder)}")
        for name in files:
            full = os.path.join(folder, name)
            with open(full, "rb") as content:
                found[os.path.relpath(full, os.fsencode(root))] = content.read()
    return found


def commit(
    repo: TestRepo,
    files: dict[str, bytes | None],
    *,
    executable: tuple[str, ...] = (),
    symlinks: dict[str, str] | None = None,
) -> str:
    """Like TestRepo.commit, but a deletion also removes the folders it empties, so a file can take their place."""
    for path, content in files.items():
        target = repo.work / path
        if content is None:
            target.unlink()
            parent = target.parent
            while parent != repo.work and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    for path in executable:
        (repo.work / path).chmod(0o755)
    return repo.commit({}, symlinks=symlinks)

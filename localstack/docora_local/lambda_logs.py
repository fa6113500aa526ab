"""The functions' output as `make run` shows it: each new line of every environment's log, named by function.

The local executor writes one log per execution environment, `<function name>-<environment id>.log`, in
LAMBDA_LOCAL_LOG_DIR; a function's name is `<stack>-<logical id>-<suffix>`, shown here as the logical id.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


class LambdaLogTail:
    def __init__(self, folder: Path, functions: Mapping[str, str]) -> None:
        """`functions` maps each logical id to its deployed function name."""
        self.folder = folder
        self.functions = functions
        self._offsets: dict[Path, int] = {}
        self._width = max((len(name) for name in functions), default=0)

    def new_lines(self) -> list[str]:
        """Complete lines written since the last call, each prefixed with its function's logical id."""
        lines = []
        for path in sorted(self.folder.glob("*.log")):
            offset = self._offsets.get(path, 0)
            with path.open("rb") as log:
                log.seek(offset)
                data = log.read()
            complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits for the next call
            self._offsets[path] = offset + len(complete)
            label = self.label(path.name).ljust(self._width)
            lines += [f"{label} | {line}" for line in complete.decode(errors="replace").splitlines()]
        return lines

    def print_new(self) -> None:
        for line in self.new_lines():
            print(line, flush=True)

    def label(self, file_name: str) -> str:
        for logical_id, function_name in self.functions.items():
            if file_name.startswith(function_name + "-"):
                return logical_id
        return file_name.removesuffix(".log")

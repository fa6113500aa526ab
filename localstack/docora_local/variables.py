"""Which of the caller's variables the deployed functions get: every one Settings reads, and Powertools' own.

The names are found by letting Settings.from_env read the caller's environment through a recorder, so a
variable added to chalicelib/config.py reaches the functions with no change here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from chalicelib.config import Settings

_POWERTOOLS_PREFIX = "POWERTOOLS_"


class _Recorder(Mapping[str, str]):
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.names: list[str] = []

    def __getitem__(self, name: str) -> str:
        self.names.append(name)
        return self._environ[name]

    def get(self, name: str, default: object = None) -> object:  # type: ignore[override]
        self.names.append(name)
        return self._environ.get(name, default)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self.names.append(name)
        return name in self._environ

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)


def settings_variables(environ: Mapping[str, str]) -> list[str]:
    """The names Settings.from_env reads; raises ConfigurationError, naming the variable, if one is invalid."""
    recorder = _Recorder(environ)
    Settings.from_env(recorder)
    return list(dict.fromkeys(recorder.names))


def function_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The set variables among those, as every function's environment."""
    names = settings_variables(environ)
    chosen = {name: environ[name] for name in names if environ.get(name, "").strip()}
    chosen.update({name: value for name, value in environ.items() if name.startswith(_POWERTOOLS_PREFIX)})
    return chosen

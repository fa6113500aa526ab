"""Chalice's entry point. Chalice looks for `app` here and Lambda for each handler as `app.<name>`; all of them
are defined in chalicelib.edge.functions, inside the package the import contracts cover."""

from chalicelib.edge.functions import app, deliver_changes, scan_repositories, sweep

__all__ = ["app", "deliver_changes", "scan_repositories", "sweep"]

"""Docora: watches GitHub repositories and pushes every file change to client apps as signed webhooks."""

__version__ = "0.1.0"

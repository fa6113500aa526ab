"""Loopback stand-ins for GitHub: its REST routes and git smart HTTP, for `make run GITHUB=local` and the tests."""

"""The local stack's tooling: `make run` (devstack), the GitHub stand-ins, and the harness tests and bench share.

It lives in localstack/, which STYLE.md names for the LocalStack tier, but is imported as `docora_local`
(localstack/ goes on sys.path: pyproject's pytest `pythonpath`, the Makefile's PYTHONPATH, bench's sys.path),
so that the folder is no package and never shadows the real `localstack` package. LocalStack itself runs
from its own venv (.venv-localstack); the executor plugin in localstack/executor/ is an installable package
of its own, imported as `docora_lambda_executor`.
"""

from pathlib import Path

# Every tool resolves the repository's files from here, whatever the working folder.
REPO = Path(__file__).resolve().parents[2]

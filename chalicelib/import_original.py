"""Import an original Docora's database: `python -m chalicelib.import_original --from <its DATABASE_URL>`.

Writes to Docora's DATABASE_URL (migrated first), decrypting with the ENCRYPTION_KEY the original used;
docs/migrating.md is the operator's guide. Exit status: 0 when everything was imported (or was already), 2 when
some rows were skipped (the report says which and why), 1 when the import was refused or failed (nothing of the app
at fault is written).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime

from chalicelib import errors
from chalicelib.adapters.aes_cipher import AesGcmCipher
from chalicelib.adapters.postgres_imports import PostgresImports
from chalicelib.adapters.postgres_original import PostgresOriginal
from chalicelib.adapters.socket_resolver import SocketResolver
from chalicelib.config import ConfigurationError, import_settings_from_env
from chalicelib.services import importing

_PREFIX = "import-original"


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        database_url, key, allow_private = import_settings_from_env(environ)
        config = importing.ImportConfig(allow_private_targets=allow_private, dry_run=arguments.dry_run)
        with ExitStack() as stack:
            source = PostgresOriginal(arguments.source)
            stack.callback(source.close)
            target = PostgresImports(database_url)
            stack.callback(target.close)
            report = importing.import_original(
                source,
                target,
                cipher=AesGcmCipher(key),
                resolve=SocketResolver().addresses,
                config=config,
                now=datetime.now(UTC),
            )
    except (ConfigurationError, errors.ServiceError) as error:
        print(f"{_PREFIX}: refused: {error}", file=sys.stderr)
        return 1
    for line in report.lines:
        print(f"{_PREFIX}: {line}")
    print(f"{_PREFIX}: {'dry run, nothing written: ' if report.dry_run else ''}{report.summary()}")
    skipped = report.apps_skipped or report.watches_skipped or report.ledger_rows_skipped
    return 2 if skipped else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m chalicelib.import_original",
        description="Import apps, repositories, watches and delivery ledger from the original Docora's database.",
    )
    parser.add_argument("--from", dest="source", required=True, metavar="DATABASE_URL", help="the original's database")
    parser.add_argument("--dry-run", action="store_true", help="report what would be imported; write nothing")
    return parser


if __name__ == "__main__":
    sys.exit(main())

"""Moving from the original Docora: its apps, repositories, watches and delivery ledger, imported whole app by app.

Nothing secret is ever put in the report: not a token, a signing key, a GitHub token or a base_url (which may carry
credentials); per-row problems name the row by its id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from chalicelib import errors
from chalicelib.domain import github_urls, original_docora, webhook_targets
from chalicelib.domain.original_docora import (
    AppImport,
    ImportedWatch,
    LedgerEntry,
    OriginalApp,
    OriginalRepository,
    OriginalWatch,
)
from chalicelib.ports import Cipher, ImportTarget, OriginalDocora


@dataclass(frozen=True)
class ImportConfig:
    allow_private_targets: bool = False  # ALLOW_PRIVATE_WEBHOOK_TARGETS: the SSRF guard on base_url is lifted
    dry_run: bool = False


@dataclass
class ImportReport:
    dry_run: bool
    lines: list[str] = field(default_factory=list)
    apps_imported: int = 0
    apps_paused: int = 0  # among those imported
    apps_present: int = 0
    apps_skipped: int = 0
    repositories: set[str] = field(default_factory=set)
    watches: int = 0
    watches_skipped: int = 0
    ledger_rows: int = 0
    ledger_rows_skipped: int = 0  # a file_sha that is not a SHA-256
    ledger_rows_left_out: int = 0  # of no watch imported: skipped ones, or ones the original no longer had

    def note(self, line: str) -> None:
        self.lines.append(line)

    def summary(self) -> str:
        verb = "would import" if self.dry_run else "imported"
        return (
            f"{verb} {self.apps_imported} app(s) ({self.apps_paused} paused), {len(self.repositories)} repositories, "
            f"{self.watches} watch(es), {self.ledger_rows} ledger row(s); already here: {self.apps_present} app(s); "
            f"skipped: {self.apps_skipped} app(s), {self.watches_skipped} watch(es), "
            f"{self.ledger_rows_skipped} ledger row(s); ledger rows of no imported watch: {self.ledger_rows_left_out}"
        )


@dataclass(frozen=True)
class _Source:
    apps: list[OriginalApp]
    repositories: dict[str, OriginalRepository]
    watches: dict[str, list[OriginalWatch]]


def import_original(
    source: OriginalDocora,
    target: ImportTarget,
    *,
    cipher: Cipher,
    resolve: Callable[[str], list[str]],
    config: ImportConfig,
    now: datetime,
) -> ImportReport:
    """Import every app not yet here; refuse (Unprocessable) a source or a key that is not the original's."""
    problems = original_docora.schema_problems(source.columns())
    if problems:
        raise errors.Unprocessable(
            "the source does not look like the original Docora's final schema: " + "; ".join(problems)
        )
    if not target.is_migrated():
        raise errors.Unprocessable("Docora's database is not migrated: run `make migrate` first")
    found = _read(source)
    _check_key(found, cipher)
    report = ImportReport(dry_run=config.dry_run)
    present = target.present_apps([app.app_id for app in found.apps])
    taken = {(github_urls.comparable(url), branch): rid for (url, branch), rid in target.repository_ids().items()}
    for app in found.apps:
        if app.app_id in present:
            _note_present(report, app.app_id, imported=present[app.app_id])
            continue
        plan = _plan(app, found, source, taken, cipher=cipher, resolve=resolve, config=config, report=report)
        if plan is not None:
            _write(plan, target, report, now=now)
    return report


def _read(source: OriginalDocora) -> _Source:
    watches: dict[str, list[OriginalWatch]] = {}
    for watch in source.watches():
        watches.setdefault(watch.app_id, []).append(watch)
    repositories = {repository.repository_id: repository for repository in source.repositories()}
    return _Source(apps=source.apps(), repositories=repositories, watches=watches)


def _check_key(found: _Source, cipher: Cipher) -> None:
    """A wrong ENCRYPTION_KEY decrypts nothing: refuse the source then, rather than skip every row."""
    values = [app.client_auth_key_encrypted for app in found.apps]
    values += [w.github_token_encrypted for ws in found.watches.values() for w in ws if w.github_token_encrypted]
    if values and not any(_decrypts(cipher, value) for value in values):
        raise errors.Unprocessable(
            f"none of the source's {len(values)} encrypted values decrypts with this ENCRYPTION_KEY; "
            "set ENCRYPTION_KEY to the key the original Docora used"
        )


def _decrypts(cipher: Cipher, value: str) -> bool:
    try:
        cipher.decrypt(value)
    except errors.Unprocessable:
        return False
    return True


def _note_present(report: ImportReport, app_id: str, *, imported: bool) -> None:
    if imported:
        report.apps_present += 1
        report.note(f"app {app_id}: already imported; left alone")
    else:
        report.apps_skipped += 1
        report.note(f"app {app_id}: skipped: an app with this id was onboarded here, not imported; left alone")


def _plan(
    app: OriginalApp,
    found: _Source,
    source: OriginalDocora,
    taken: dict[tuple[str, str], str],
    *,
    cipher: Cipher,
    resolve: Callable[[str], list[str]],
    config: ImportConfig,
    report: ImportReport,
) -> AppImport | None:
    problem = original_docora.app_problem(app) or (
        None if _decrypts(cipher, app.client_auth_key_encrypted) else "client_auth_key_encrypted does not decrypt"
    )
    if problem is not None:
        report.apps_skipped += 1
        report.note(f"app {app.app_id}: skipped: {problem}")
        return None
    base_url, paused_reason = _base_url(app.base_url, resolve=resolve, config=config)
    watches, repositories = [], {}
    for watch in found.watches.get(app.app_id, []):
        repository = found.repositories.get(watch.repository_id)
        problem = _watch_problem(watch, repository, taken, cipher)
        if problem is not None or repository is None:
            report.watches_skipped += 1
            report.note(f"watch {app.app_id}/{watch.repository_id}: skipped: {problem}")
            continue
        imported, note = original_docora.imported_watch(watch, repository)
        if note:
            report.note(f"watch {app.app_id}/{watch.repository_id}: {note}")
        watches.append(imported)
        repositories[repository.repository_id] = repository
        # The original compared URLs exactly: two of its repositories may be one here, and the first one keeps it.
        taken.setdefault(_comparable(repository), repository.repository_id)
    ledger = _ledger(app.app_id, source.ledger(app.app_id), watches, report)
    return AppImport(app, base_url, paused_reason, tuple(repositories.values()), tuple(watches), ledger)


def _base_url(url: str, *, resolve: Callable[[str], list[str]], config: ImportConfig) -> tuple[str, str | None]:
    """The base_url as Docora keeps it, and why the app is imported paused when Docora's SSRF guard refuses it."""
    try:
        return webhook_targets.check_webhook_url(url, resolve=resolve, allow_private=config.allow_private_targets), None
    except errors.InvalidInput as refused:
        return url, f"imported paused: Docora refuses its {refused}; change base_url, then resume"


def _watch_problem(
    watch: OriginalWatch, repository: OriginalRepository | None, taken: dict[tuple[str, str], str], cipher: Cipher
) -> str | None:
    if repository is None:
        return "its repository is not in the source"
    problem = original_docora.repository_problem(repository)
    if problem is not None:
        return f"repository {problem}"
    holder = taken.get(_comparable(repository))
    if holder is not None and holder != repository.repository_id:
        return f"Docora already has this repository and branch as {holder}"
    if watch.github_token_encrypted and not _decrypts(cipher, watch.github_token_encrypted):
        return "github_token_encrypted does not decrypt"
    return None


def _ledger(
    app_id: str, entries: list[LedgerEntry], watches: list[ImportedWatch], report: ImportReport
) -> tuple[LedgerEntry, ...]:
    watched = {watch.repository_id for watch in watches}
    kept = []
    for entry in entries:
        if entry.repository_id not in watched:
            report.ledger_rows_left_out += 1
        elif not original_docora.is_sha256_hex(entry.sha256):
            report.ledger_rows_skipped += 1
            report.note(
                f"ledger {app_id}/{entry.repository_id}: a row's file_sha is not a SHA-256; "
                "that file will be sent again as a create"
            )
        else:
            kept.append(entry)
    return tuple(kept)


def _comparable(repository: OriginalRepository) -> tuple[str, str]:
    return github_urls.comparable(repository.github_url), original_docora.branch_of(repository)


def _write(plan: AppImport, target: ImportTarget, report: ImportReport, *, now: datetime) -> bool:
    app_id = plan.app.app_id
    try:
        written = report.dry_run or target.write(plan, now=now)
    except errors.Conflict as clash:
        report.apps_skipped += 1
        report.note(f"app {app_id}: skipped, nothing of it written: {clash}")
        return False
    if not written:
        _note_present(report, app_id, imported=True)
        return False
    report.apps_imported += 1
    report.apps_paused += plan.paused_reason is not None
    report.repositories.update(repository.repository_id for repository in plan.repositories)
    report.watches += len(plan.watches)
    report.ledger_rows += len(plan.ledger)
    outcome = "would be imported" if report.dry_run else "imported"
    detail = f"{len(plan.watches)} watch(es), {len(plan.ledger)} ledger row(s)"
    report.note(f"app {app_id}: {outcome}, {detail}" + (f"; {plan.paused_reason}" if plan.paused_reason else ""))
    return True

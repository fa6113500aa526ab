"""Every relative link in the repository's Markdown leads to a file of the checkout, so a fresh clone has no dead ends.

A link counts when its target is a file git would hand to a clone (tracked, or new and not ignored) or a folder
holding one; a `#fragment` into Markdown must name one of its headings, slugged as GitHub does.
"""

from __future__ import annotations

import re
import subprocess
import unicodedata
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[2]

FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.MULTILINE | re.DOTALL)
# A code span may wrap lines but not cross a blank one; without that limit a stray backtick would hide a page.
CODE_SPAN = re.compile(r"(`+)(?:(?!\n[ \t]*\n).)+?\1", re.DOTALL)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^)\s]*)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*(<[^>]*>|\S+)", re.MULTILINE)
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)
HTML_ANCHOR = re.compile(r"<a\s[^>]*?(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def checkout_paths() -> set[str]:
    """Every file a clone would hold (tracked, or new and not ignored) and every folder above one, as POSIX paths."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    files = {name for name in listed.split("\0") if name and (ROOT / name).is_file()}
    return files | {str(folder) for name in files for folder in PurePosixPath(name).parents}


def blank(match: re.Match[str]) -> str:
    """The match as spaces, keeping its line breaks, so that offsets and line numbers stay true."""
    return re.sub(r"[^\n]", " ", match.group(0))


def without_code(text: str) -> str:
    return CODE_SPAN.sub(blank, FENCE.sub(blank, text))


def github_slug(heading: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    kept = (c for c in text if c.isalnum() or c in "-_ " or unicodedata.category(c).startswith("M"))
    return "".join(kept).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """The fragments GitHub gives this page: heading slugs (repeats numbered -1, -2, ...) and HTML anchors."""
    found: set[str] = set(HTML_ANCHOR.findall(without_code(markdown)))
    seen: dict[str, int] = {}
    # Code spans stay: GitHub slugs their text (`sync_failed` gives sync_failed).
    for match in HEADING.finditer(FENCE.sub(blank, markdown)):
        slug = github_slug(match.group(1))
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return found


def link_targets(markdown: str) -> list[tuple[int, str]]:
    """(line, target) of every inline link, image and reference definition outside code."""
    prose = without_code(markdown)
    matches = [*INLINE_LINK.finditer(prose), *REFERENCE_DEFINITION.finditer(prose)]
    return sorted((prose.count("\n", 0, m.start()) + 1, m.group(1).strip("<>")) for m in matches)


def broken_link(source: str, target: str, present: set[str]) -> str | None:
    """Why `target`, written in the Markdown file `source`, leads nowhere in the checkout; None when it is fine."""
    path, _, fragment = target.partition("#")
    if not path:
        resolved = ROOT / source
    elif path.startswith("/"):
        resolved = Path(ROOT, unquote(path).lstrip("/")).resolve()
    else:
        resolved = (ROOT / source).parent.joinpath(unquote(path)).resolve()
    if resolved != ROOT and ROOT not in resolved.parents:
        return "leaves the repository"
    name = resolved.relative_to(ROOT).as_posix()
    if name not in present:
        return "no such file or folder in the checkout"
    if fragment and name.endswith(".md") and unquote(fragment) not in anchors(resolved.read_text()):
        return f"no heading #{fragment} in {name}"
    return None


def test_every_relative_markdown_link_leads_to_a_file_or_heading_of_the_checkout() -> None:
    present = checkout_paths()

    broken = []
    for source in sorted(name for name in present if name.endswith(".md") and (ROOT / name).is_file()):
        for line, target in link_targets((ROOT / source).read_text()):
            reason = None if not target or SCHEME.match(target) else broken_link(source, target, present)
            if reason:
                broken.append(f"{source}:{line}: ({target}) {reason}")

    assert not broken, "broken Markdown links:\n" + "\n".join(broken)


def test_the_link_check_sees_what_github_renders() -> None:
    page = (
        "# Über `sync_failed`: a → b\n"
        "## Über `sync_failed`: a → b\n"
        "### 1.7 Circuit breaker and `sync_failed`\n"
        "[x](a.md#frag) ![y](img/b.png) [z][r]\n"
        "`[not](a link)`\n"
        "```sh\n# not a heading\n[no](link)\n```\n"
        "[r]: <c d.md>\n"
    )

    assert anchors(page) == {"über-sync_failed-a--b", "über-sync_failed-a--b-1", "17-circuit-breaker-and-sync_failed"}
    assert link_targets(page) == [(4, "a.md#frag"), (4, "img/b.png"), (10, "c d.md")]

"""Properties of the pure domain, checked by Hypothesis over generated inputs rather than chosen examples."""

from __future__ import annotations

import base64
import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib import errors
from chalicelib.domain import chunks, deliveries, github_urls, snapshots, webhooks
from chalicelib.domain.binary_detection import TextCheck, is_text
from chalicelib.domain.deliveries import Change
from chalicelib.domain.snapshots import SnapshotFile

OWNER = st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,20}", fullmatch=True)
NAME = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,30}", fullmatch=True).filter(
    lambda n: n not in (".", "..") and not n.lower().endswith(".git")
)
PATHS = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), min_size=1, max_size=20)


@given(OWNER, NAME, st.sampled_from(["", ".git", "/", ".git/"]), st.booleans())
def test_a_normalised_github_url_parses_to_itself(owner, name, suffix, upper_host):
    host = "GitHub.COM" if upper_host else "github.com"

    parsed = github_urls.parse_github_url(f"https://{host}/{owner}/{name}{suffix}")

    assert github_urls.parse_github_url(parsed.url) == parsed
    assert parsed.url == f"https://github.com/{owner.lower()}/{name.lower()}"


@given(st.text(max_size=80))
def test_url_parsing_either_normalises_or_names_the_field(text):
    try:
        parsed = github_urls.parse_github_url(text)
    except errors.InvalidInput as error:
        assert error.details[0].field == "github_url"
    else:
        assert parsed.url.startswith("https://github.com/")


@given(st.binary(max_size=2048), st.integers(min_value=1, max_value=700))
def test_text_detection_is_the_same_streamed_in_any_pieces(data, piece):
    check = TextCheck()
    for start in range(0, len(data), piece):
        check.feed(data[start : start + piece])

    assert check.is_text() == is_text(data)


@given(st.binary(max_size=600))
def test_content_with_a_nul_byte_in_its_first_512_bytes_is_binary(data):
    # "x" first: a leading byte-order mark makes isbinaryfile answer "text" before it looks for NUL.
    assert not is_text(b"x" + data[:300] + b"\0" + data[300:])


@given(st.text(st.characters(min_codepoint=0x20, blacklist_categories=("Cs", "Cc")), max_size=400))
def test_printable_utf8_text_is_text(text):
    assert is_text(text.encode("utf-8")) or text.encode("utf-8").startswith(b"%PDF-")


@given(st.binary(max_size=5000), st.integers(min_value=1, max_value=900), st.integers(min_value=1, max_value=64))
def test_chunk_slices_join_to_the_base64_of_the_content(data, piece, slice_quarter):
    slice_chars = slice_quarter * 4
    pieces = [data[i : i + piece] for i in range(0, len(data), piece)]

    slices = list(chunks.base64_slices(pieces, slice_chars))

    assert "".join(slices) == base64.b64encode(data).decode()
    assert len(slices) == chunks.slice_count(len(data), slice_chars) or (not data and slices == [])
    assert base64.b64decode("".join(slices)) == data


def _file(path: str, content: bytes) -> SnapshotFile:
    digest = hashlib.sha256(content).digest()
    return SnapshotFile(path, hashlib.sha1(content, usedforsecurity=False).hexdigest(), digest, len(content), False)


SNAPSHOT = st.dictionaries(PATHS, st.binary(max_size=8), max_size=12)


@given(SNAPSHOT, SNAPSHOT)
def test_applying_a_delta_to_the_old_snapshot_gives_the_new_one(old, new):
    previous = {path: _file(path, content) for path, content in old.items()}
    current = [_file(path, content) for path, content in new.items()]

    delta = snapshots.snapshot_delta(previous, current)
    applied = {path: file for path, file in previous.items() if path not in delta.removed}
    applied.update({file.path: file for file in delta.written})

    assert applied == {file.path: file for file in current}


EVENTS = st.sampled_from(["create", "update", "delete"])


@given(st.lists(st.tuples(EVENTS, PATHS), unique_by=lambda change: change[1], max_size=15), st.randoms())
def test_protocol_order_is_deletes_creates_updates_by_path_whatever_the_input_order(pairs, random):
    changes = [Change(event, path, b"\0" * 32, None, 0, False) for event, path in pairs]
    shuffled = list(changes)
    random.shuffle(shuffled)

    ordered = deliveries.in_protocol_order(shuffled)

    assert ordered == deliveries.in_protocol_order(changes)
    keys = [(deliveries.EVENT_ORDER[c.event], c.path.encode("utf-8")) for c in ordered]
    assert keys == sorted(keys)


@settings(max_examples=50)
@given(st.text(min_size=16, max_size=64), st.integers(min_value=0, max_value=2**33), st.binary(max_size=200))
def test_signatures_are_deterministic_and_bound_to_key_timestamp_and_body(key, moment, body):
    signature = webhooks.signature(key, moment, body)

    assert signature == webhooks.signature(key, moment, body)
    assert signature != webhooks.signature(key + "x", moment, body)
    assert signature != webhooks.signature(key, moment + 1, body)
    assert signature != webhooks.signature(key, moment, body + b" ")


SEGMENT = st.from_regex(r"[a-z0-9_-]{1,12}", fullmatch=True)


@given(SEGMENT, SEGMENT, SEGMENT)
def test_an_ignored_folder_hides_everything_below_it_and_nothing_beside_it(folder, other, name):
    from chalicelib.adapters.git_dulwich import DulwichGit

    git = DulwichGit("/nonexistent")  # the filter touches no cache
    is_ignored = git.ignore_filter(f"{folder}/\n".encode())

    assert is_ignored(f"{folder}/{name}".encode())
    assert is_ignored(f"{folder}/{other}/{name}".encode())
    assert other == folder or not is_ignored(f"{other}/{name}".encode())
    git.close()

"""The node key file: created once with mode 0600, loaded the same after, a malformed one refused."""

from __future__ import annotations

import stat

import pytest
from hypothesis import given, settings, strategies as st

from chain.p2p.node_key import NodeKeyError, load_or_create_node_key


def test_a_missing_key_is_created_with_mode_0600_and_loaded_the_same_after(tmp_path):
    path = tmp_path / "node_key"
    first = load_or_create_node_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == first.seed.hex() + "\n"
    assert load_or_create_node_key(path).public_key == first.public_key
    assert [p.name for p in tmp_path.iterdir()] == ["node_key"]


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "malformed"),
        (b"ab" * 31 + b"\n", "malformed"),
        (b"AB" * 32 + b"\n", "malformed"),
        (b"\xff" * 64, "not ASCII"),
        (b"ab" * 32 + b"\n\n", "malformed"),
        (b"0" * 2000, "2000 bytes"),
    ],
)
def test_a_malformed_key_file_is_refused_and_kept(tmp_path, content, reason):
    path = tmp_path / "node_key"
    path.write_bytes(content)
    with pytest.raises(NodeKeyError, match=reason):
        load_or_create_node_key(path)
    assert path.read_bytes() == content


def test_a_missing_directory_is_named(tmp_path):
    with pytest.raises(NodeKeyError, match="does not exist"):
        load_or_create_node_key(tmp_path / "nowhere" / "node_key")


@settings(max_examples=200, deadline=None)
@given(content=st.binary(max_size=80))
def test_arbitrary_file_contents_load_or_are_refused_with_a_node_key_error(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("key") / "node_key"
    path.write_bytes(content)
    try:
        key = load_or_create_node_key(path)
    except NodeKeyError:
        return
    assert content.decode().strip() == key.seed.hex()

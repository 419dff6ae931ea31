"""The status table: aligned on a terminal, redrawn in place; plain lines elsewhere."""

from __future__ import annotations

import io

from chain.devnet.status import NodeStatus, StatusDisplay, plain_lines, table_lines

STATUSES = [
    NodeStatus("validator1", "127.0.0.2:9944", "up", 12, 11, 3, 0, False, "2", "1/8"),
    NodeStatus("validator2", "127.0.0.3:9944", "exited 1, see node.log"),
    NodeStatus("validator3", "127.0.0.4:9944", "up", 5, 4, 1, 2, True, "0", "0/8"),
]


def test_the_table_has_a_column_per_figure_and_says_why_a_node_has_none():
    header, first, second, third = table_lines(STATUSES)
    assert header.split() == ["node", "rpc", "height", "finalized", "peers", "round", "jobs", "load"]
    assert first.split() == ["validator1", "127.0.0.2:9944", "12", "11", "3", "0", "2", "1/8"]
    assert second.split() == ["validator2", "127.0.0.3:9944", "exited", "1,", "see", "node.log"]
    assert third.split() == ["validator3", "127.0.0.4:9944", "5", "(syncing)", "4", "1", "2", "0", "0/8"]
    assert header.index("finalized") == first.index("11")


def test_plain_lines_name_each_figure():
    lines = plain_lines(STATUSES, now=0)
    assert lines[0].endswith("validator1 height 12 finalized 11 peers 3 round 0 jobs 2 load 1/8")
    assert lines[1].endswith("validator2 exited 1, see node.log")
    assert lines[2].endswith("syncing")


def test_a_pipe_gets_plain_lines_and_no_escape_codes():
    stream = io.StringIO()
    display = StatusDisplay(stream, footer="Ctrl-C stops every node")
    display.show(STATUSES)
    display.show(STATUSES)
    text = stream.getvalue()
    assert "\x1b" not in text and "Ctrl-C" not in text
    assert len(text.splitlines()) == 6


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_the_table_redrawn_in_place():
    stream = _Terminal()
    display = StatusDisplay(stream, footer="Ctrl-C stops every node")
    display.show(STATUSES)
    first = stream.getvalue()
    assert first.count("\n") == 5 and "\x1b" not in first and first.rstrip().endswith("Ctrl-C stops every node")
    display.show(STATUSES)
    assert stream.getvalue()[len(first):].startswith("\x1b[5F\x1b[J")

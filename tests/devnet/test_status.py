"""The status: each node's state judged from its answers, the table, the change log for a pipe, rich on a terminal."""

from __future__ import annotations

import io

from chain.devnet.status import (
    STALL_S,
    ChangeLog,
    LiveTable,
    NodeStatus,
    StatusReader,
    status_display,
    status_document,
    status_from_document,
    table_lines,
)

STATUSES = [
    NodeStatus("validator1", "127.0.0.2:9944", "up", 12, 11, 3, 0, False, "2", "1/8", pid=100),
    NodeStatus("validator2", "127.0.0.3:9945", "exited 1", log="node.log"),
    NodeStatus("validator3", "127.0.0.4:9946", "catching up", 5, 4, 1, 2, True, "0", "0/8", pid=102, behind=7),
    NodeStatus("validator4", "127.0.0.5:9947", "stopped"),
]


class _Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def _up(name: str, finalized: int, pid: int = 1, syncing: bool = False) -> NodeStatus:
    return NodeStatus(name, "127.0.0.2:9944", "up", finalized, finalized, 3, 0, syncing, pid=pid)


# --- judging -----------------------------------------------------------------------------


def test_a_node_behind_the_others_or_syncing_is_catching_up_and_one_not_finalizing_is_stalled():
    clock = _Clock()
    reader = StatusReader(devnet=None, clock=clock)
    first = reader.judge([_up("a", 50), _up("b", 48), _up("c", 40), _up("d", 50, syncing=True),
                          NodeStatus("e", "x", "stopped")])
    assert [status.state for status in first] == ["up", "up", "catching up", "catching up", "stopped"]
    assert [status.behind for status in first[:4]] == [0, 2, 10, 0]
    clock.now += STALL_S
    later = reader.judge([_up("a", 50), _up("b", 49), _up("c", 45), _up("d", 50)])
    assert [status.state for status in later] == ["stalled", "up", "catching up", "stalled"]


def test_a_node_started_again_is_judged_afresh():
    clock = _Clock()
    reader = StatusReader(devnet=None, clock=clock)
    reader.judge([_up("a", 50, pid=1)])
    clock.now += STALL_S
    assert reader.judge([_up("a", 50, pid=2)])[0].state == "up"


# --- the table and its documents ---------------------------------------------------------


def test_the_table_has_a_state_column_and_figures_only_for_nodes_that_answer():
    header, first, second, third, fourth = table_lines(STATUSES)
    assert header.split() == ["node", "rpc", "state", "height", "finalized", "peers", "round", "jobs", "load"]
    assert first.split() == ["validator1", "127.0.0.2:9944", "up", "12", "11", "3", "0", "2", "1/8"]
    assert second.split() == ["validator2", "127.0.0.3:9945", "exited", "1,", "see", "node.log"]
    assert third.split() == ["validator3", "127.0.0.4:9946", "catching", "up", "(7", "behind)", "5", "(syncing)",
                             "4", "1", "2", "0", "0/8"]
    assert fourth.split() == ["validator4", "127.0.0.5:9947", "stopped"]
    assert header.index("finalized") == first.index("11")


def test_a_status_document_reads_back_and_a_malformed_one_is_refused():
    for status in STATUSES:
        assert status_from_document(status_document(status)) == status
    for bad in ({"rpc": "x", "state": "up"}, {**status_document(STATUSES[0]), "height": "12"},
                {**status_document(STATUSES[0]), "syncing": 1}, {**status_document(STATUSES[0]), "pid": True}):
        try:
            status_from_document(bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad}")


# --- a pipe: changes only ----------------------------------------------------------------


def test_a_pipe_gets_a_line_per_state_change_and_no_line_per_block():
    stream = io.StringIO()
    clock = _Clock()
    log = ChangeLog(stream, summary_s=60, clock=clock)
    log.show([_up("validator1", 10), _up("validator2", 10)])
    for height in range(11, 40):
        clock.now += 1
        log.show([_up("validator1", height), _up("validator2", height)])
    lines = stream.getvalue().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "validator1 up: finalized #10, height 10, 3 peers", "validator2 up: finalized #10, height 10, 3 peers"]
    clock.now += 1
    log.show([_up("validator1", 40), NodeStatus("validator2", "127.0.0.3:9945", "stopped")])
    clock.now += 1
    log.show([_up("validator1", 41), NodeStatus("validator2", "127.0.0.3:9945", "starting", pid=77)])
    clock.now += 1
    log.show([_up("validator1", 42), NodeStatus("validator2", "127.0.0.3:9945", "catching up", 30, 30, 3, behind=12)])
    clock.now += 1
    log.show([_up("validator1", 43), _up("validator2", 43)])
    assert [line.split(" ", 1)[1] for line in stream.getvalue().splitlines()[2:]] == [
        "validator2 stopped",
        "validator2 starting (pid 77)",
        "validator2 catching up: finalized #30, 12 behind, 3 peers",
        "validator2 up: finalized #43, height 43, 3 peers",
    ]
    assert "\x1b" not in stream.getvalue()


def test_a_pipe_gets_the_height_progress_once_a_summary_period():
    stream = io.StringIO()
    clock = _Clock()
    log = ChangeLog(stream, summary_s=60, clock=clock)
    log.show([_up("validator1", 10)])
    clock.now += 30
    log.show([_up("validator1", 40)])
    clock.now += 30
    log.show([_up("validator1", 70)])
    clock.now += 60
    log.show([_up("validator1", 70)])
    lines = [line.split(" ", 1)[1] for line in stream.getvalue().splitlines()]
    assert lines[1:] == ["finalized #70 (+60 in 60 s); 1 of 1 validators up",
                         "finalized #70 (no block finalized in 60 s); 1 of 1 validators up"]


# --- a terminal: rich, redrawn in place ----------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_the_table_redrawn_in_place(monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    stream = _Terminal()
    display = status_display(stream, footer="Ctrl-C stops every node")
    assert isinstance(display, LiveTable)
    display.show(STATUSES)
    first = stream.getvalue()
    assert "validator3" in first and "catching up" in first and "Ctrl-C stops every node" in first
    display.show(STATUSES[:1])
    redraw = stream.getvalue()[len(first):]
    assert "\x1b[1A" in redraw or "\x1b[2K" in redraw  # the cursor goes back up over the last table
    display.close()
    assert isinstance(status_display(io.StringIO()), ChangeLog)

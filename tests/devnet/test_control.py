"""The control socket of a running devnet: requests checked before anything is done, replies, quorum."""

from __future__ import annotations

import socket

import pytest

from chain.devnet.control import (
    MAX_REQUEST_BYTES,
    ControlError,
    ControlReply,
    ControlRequest,
    ControlServer,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
    quorum,
    send,
    unknown_name_message,
)
from chain.devnet.layout import DevnetError, control_socket_path, prepare
from chain.devnet.status import NodeStatus

STATUSES = (NodeStatus("validator1", "127.0.0.2:9944", "up", 5, 5, 0, pid=10),
            NodeStatus("validator2", "127.0.0.3:9945", "stopped"))


@pytest.mark.parametrize("validators, needed", [(1, 1), (2, 2), (3, 3), (4, 3), (5, 4), (7, 5), (64, 43)])
def test_quorum_is_more_than_two_thirds_of_equal_stakes(validators, needed):
    assert quorum(validators) == needed
    assert 3 * needed > 2 * validators >= 3 * (needed - 1)


def test_requests_and_replies_read_back():
    request = ControlRequest("stop", "validator2", True)
    assert decode_request(encode_request(request).rstrip(b"\n")) == request
    reply = ControlReply("ok", "validator2 stopped", STATUSES)
    assert decode_reply(encode_reply(reply).rstrip(b"\n")) == reply


@pytest.mark.parametrize("line, reason", [
    (b"{", "Expecting"),
    (b"[]", "an object with command, name and force only"),
    (b'{"command": "stop", "name": "validator2", "extra": 1}', "an object with command, name and force only"),
    (b'{"command": "kill", "name": "validator2"}', "command must be one of status, stop, start, restart"),
    (b'{"command": "stop", "name": 2}', "name must be a string and force a boolean"),
    (b'{"command": "stop", "name": "validator2", "force": "yes"}', "name must be a string and force a boolean"),
    (b'{"command": "stop", "name": "' + b"v" * MAX_REQUEST_BYTES + b'"}', f"at most {MAX_REQUEST_BYTES} bytes"),
])
def test_a_malformed_request_is_refused_with_what_is_wrong(line, reason):
    with pytest.raises(ValueError, match=reason):
        decode_request(line)


def test_an_unknown_name_is_refused_with_the_devnets_names_and_a_long_one_is_cut(tmp_path):
    layout = prepare(tmp_path / "devnet", 2)
    assert unknown_name_message("validator9", layout) == (
        f"'validator9' is not part of the devnet in {layout.base_dir}; its validators: validator1, validator2")
    assert len(unknown_name_message("x" * 100_000, layout)) < 300


@pytest.fixture
def server(tmp_path):
    opened = ControlServer(control_socket_path(tmp_path))
    opened.open()
    yield opened
    opened.close()


def test_a_devnet_that_is_still_starting_takes_no_commands_then_answers_status_from_its_last_refresh(server):
    starting = send(server.path, ControlRequest("status"), timeout=5)
    assert starting.outcome == "refused" and "still starting" in starting.message
    assert send(server.path, ControlRequest("stop", "validator1"), timeout=5).outcome == "refused"
    server.statuses = STATUSES
    reply = send(server.path, ControlRequest("status"), timeout=5)
    assert reply == ControlReply("ok", "1 of 2 validators up", STATUSES)
    assert server.calls.empty()


def test_the_socket_is_private_and_refuses_unreadable_and_oversized_requests(server):
    assert server.path.stat().st_mode & 0o777 == 0o600
    for line in (b"not json\n", b"x" * (MAX_REQUEST_BYTES + 10) + b"\n"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(5)
            connection.connect(str(server.path))
            connection.sendall(line)
            reply = decode_reply(connection.makefile("rb").readline().rstrip(b"\n"))
        assert reply.outcome == "refused" and reply.message.startswith("unreadable request: ")


def test_a_command_waits_for_the_status_loop_and_gets_its_answer(server):
    import threading

    server.statuses = STATUSES
    answers = []
    sender = threading.Thread(target=lambda: answers.append(send(server.path, ControlRequest("start", "validator2"), 10)))
    sender.start()
    call = server.calls.get(timeout=5)
    assert call.request == ControlRequest("start", "validator2") and server.wake.is_set()
    call.answer(ControlReply("ok", "validator2 started"))
    sender.join(5)
    assert answers == [ControlReply("ok", "validator2 started")]


def test_a_second_devnet_on_the_same_socket_is_refused_and_a_stale_socket_replaced(server, tmp_path):
    with pytest.raises(DevnetError, match="another devnet launcher answers at"):
        ControlServer(server.path).open()
    server.close()
    with pytest.raises(ControlError, match="nothing answers at"):
        send(server.path, ControlRequest("status"), timeout=2)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(server.path))  # bound and closed: what a killed launcher leaves
    stale.close()
    again = ControlServer(server.path)
    again.open()
    try:
        assert send(again.path, ControlRequest("status"), timeout=5).outcome == "refused"
    finally:
        again.close()


def test_closing_answers_a_waiting_command(server):
    import threading

    server.statuses = STATUSES
    answers = []
    sender = threading.Thread(target=lambda: answers.append(send(server.path, ControlRequest("stop", "validator1"), 10)))
    sender.start()
    server.calls.get(timeout=5)
    server.close("the devnet is stopping (Ctrl-C in its terminal)")
    sender.join(5)
    assert answers[0].outcome == "refused" and answers[0].message == "the devnet is stopping (Ctrl-C in its terminal)"


def test_a_deep_base_dir_gets_its_socket_in_a_private_directory_of_tmp(tmp_path):
    deep = tmp_path / ("d" * 120)
    deep.mkdir()
    server = ControlServer(control_socket_path(deep))
    server.open()
    try:
        assert server.path.parent.stat().st_mode & 0o777 == 0o700
        assert send(server.path, ControlRequest("status"), timeout=5).outcome == "refused"
    finally:
        server.close()
    assert not server.path.exists()

"""The connection protocol's response parser, fed by hand: lengths, chunks, closes, errors."""

from __future__ import annotations

import pytest

from tailguard.loadtest._http import MAX_HEAD, HttpConnection


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


class Owner:
    def __init__(self) -> None:
        self.responses: list[tuple[int, bytes, bytes]] = []
        self.failures: list[str] = []
        self.idle_lost = 0

    def on_response(self, conn: HttpConnection, status: int, head: bytes, body: bytes) -> None:
        self.responses.append((status, head, body))

    def on_failure(self, conn: HttpConnection, kind: str) -> None:
        self.failures.append(kind)

    def on_idle_lost(self, conn: HttpConnection) -> None:
        self.idle_lost += 1


def connection(keep_body: bool = True) -> tuple[HttpConnection, Owner, FakeTransport]:
    owner = Owner()
    conn = HttpConnection(owner, keep_body=keep_body)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, owner, transport


def feed(conn: HttpConnection, data: bytes, step: int) -> None:
    for i in range(0, len(data), step):
        conn.data_received(data[i : i + step])


LENGTH = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world"
CHUNKED = (
    b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"
)


@pytest.mark.parametrize("step", [1, 2, 7, 1000])
@pytest.mark.parametrize(("raw", "status"), [(LENGTH, 200), (CHUNKED, 201)])
def test_a_response_split_anywhere_parses_the_same(raw: bytes, status: int, step: int) -> None:
    conn, owner, transport = connection()
    for _ in range(3):  # keep-alive: the same connection, three times
        conn.send(b"GET / HTTP/1.1\r\n\r\n")
        feed(conn, raw, step)
    assert [(s, b) for s, _, b in owner.responses] == [(status, b"hello world")] * 3
    assert owner.failures == []
    assert not conn.busy
    assert not transport.closed


def test_the_body_is_counted_not_kept_when_asked() -> None:
    conn, owner, _ = connection(keep_body=False)
    conn.send(b"GET /")
    feed(conn, LENGTH, 5)
    assert owner.responses[0][0] == 200
    assert owner.responses[0][2] == b""


def test_interim_responses_are_skipped_and_heads_have_no_body() -> None:
    conn, owner, _ = connection()
    conn.send(b"POST /")
    conn.data_received(b"HTTP/1.1 100 Continue\r\n\r\n" + LENGTH)
    conn.send(b"HEAD /", head_only=True)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n")
    conn.send(b"GET /")
    conn.data_received(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert [(s, b) for s, _, b in owner.responses] == [
        (200, b"hello world"),
        (200, b""),
        (204, b""),
    ]


def test_connection_close_and_a_body_that_runs_to_the_end() -> None:
    conn, owner, transport = connection()
    conn.send(b"GET /")
    conn.data_received(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
    assert transport.closed
    assert conn.closed
    conn, owner, transport = connection()
    conn.send(b"GET /")
    conn.data_received(b"HTTP/1.0 200 OK\r\n\r\npart one, ")
    conn.data_received(b"part two")
    assert owner.responses == []
    conn.connection_lost(None)
    assert owner.responses[0][2] == b"part one, part two"
    assert owner.failures == []


def test_a_connection_lost_mid_response_is_a_read_error() -> None:
    conn, owner, _ = connection()
    conn.send(b"GET /")
    conn.data_received(LENGTH[:40])
    conn.connection_lost(ConnectionResetError())
    assert owner.failures == ["read"]
    assert owner.responses == []


def test_an_idle_connection_closed_by_the_server_is_reported_once() -> None:
    conn, owner, _ = connection()
    conn.connection_lost(None)
    assert owner.idle_lost == 1
    conn2, owner2, _ = connection()
    conn2.close()  # closed by us: nothing to report
    conn2.connection_lost(None)
    assert owner2.idle_lost == 0


@pytest.mark.parametrize(
    "raw",
    [
        b"SMTP 220 hello\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * (MAX_HEAD // 6 + 1),
    ],
)
def test_garbage_is_a_read_error_and_drops_the_connection(raw: bytes) -> None:
    conn, owner, transport = connection()
    conn.send(b"GET /")
    conn.data_received(raw)
    assert owner.failures == ["read"]
    assert transport.aborted


def test_bytes_nobody_asked_for_are_ignored() -> None:
    conn, owner, _ = connection()
    conn.data_received(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
    assert owner.responses == []
    assert owner.failures == []

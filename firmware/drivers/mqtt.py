# MQTT 3.1.1 client on asyncio: QoS 0/1 publish through a bounded outgoing queue (oldest dropped and
# counted when full; QoS 1 retransmitted with DUP until PUBACK), subscriptions with callbacks and topic
# wildcards, keepalive pings, last will, credentials, TLS, persistent sessions and automatic reconnect
# with backoff. Runs unchanged on the device and on the stock MicroPython unix runtime.
#
# One task reads the socket (`_read_loop`, one per connection); writes are serialised by a lock and never
# wait on asyncio's IO queue, so a connection can be torn down at any moment without leaving a task
# parked on a closed socket. Steady state (pings, acks, queue bookkeeping) reuses preallocated buffers.
import asyncio
import errno
import select
import socket
import sys
from time import ticks_diff, ticks_ms

from micropython import const

PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"
CONNACK_REASONS = (
    "accepted",
    "unacceptable protocol version",
    "identifier rejected",
    "server unavailable",
    "bad user name or password",
    "not authorized",
)

# Queue entry fields: [packet, packet id (0 for QoS 0), state, ticks sent, Event of a waiting publish(),
# connections lost while it was in flight]
_PKT = const(0)
_PID = const(1)
_STATE = const(2)
_SENT = const(3)
_EVT = const(4)
_LOST = const(5)
# The oldest message in flight on this many lost connections is given up (dropped and counted in `given_up`):
# a broker that closes the connection on it (e.g. over its max_packet_size) would otherwise get it again on
# every reconnect and block everything queued behind it.
_MAX_LOST = const(3)
# Entry states
_QUEUED = const(0)
_INFLIGHT = const(1)
_ACKED = const(2)
_DROPPED = const(3)


class MQTTException(Exception):
    pass


# ---------------------------------------------------------------------------------------------------------
# Packet encoding and decoding (pure functions; tested without a broker)


def _b(s):
    return s.encode() if isinstance(s, str) else bytes(s)


def remaining_length(n):
    """The MQTT variable-length encoding of n (0 ... 268435455) as bytes."""
    if n < 0 or n > 268435455:
        raise ValueError("remaining length out of range")
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def decode_remaining_length(data, offset=0):
    """(value, offset after it) of the variable-length integer at data[offset:]."""
    n = 0
    shift = 0
    while True:
        if offset >= len(data):
            raise ValueError("truncated remaining length")
        b = data[offset]
        offset += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, offset
        shift += 7
        if shift > 21:
            raise ValueError("remaining length longer than 4 bytes")


def _field(s):
    s = _b(s)
    if len(s) > 0xFFFF:
        raise ValueError("field longer than 65535 bytes")
    return bytes((len(s) >> 8, len(s) & 0xFF)) + s


def _packet(first, body):
    return bytes((first,)) + remaining_length(len(body)) + body


def connect_packet(client_id, keepalive=60, clean_session=True, user=None, password=None, will=None):
    """CONNECT; will = (topic, msg, qos, retain)."""
    if not 0 <= keepalive <= 0xFFFF:
        raise ValueError("keepalive must be 0 ... 65535 s")
    flags = 0x02 if clean_session else 0
    tail = _field(client_id)
    if will is not None:
        topic, msg, qos, retain = will
        flags |= 0x04 | qos << 3 | (0x20 if retain else 0)
        tail += _field(topic) + _field(msg)
    if user is not None:
        flags |= 0x80
        tail += _field(user)
    if password is not None:
        flags |= 0x40
        tail += _field(password)
    return _packet(0x10, b"\x00\x04MQTT\x04" + bytes((flags, keepalive >> 8, keepalive & 0xFF)) + tail)


def parse_connack(data):
    """(session_present, return code) of a 4-byte CONNACK."""
    if len(data) != 4 or data[0] != 0x20 or data[1] != 2:
        raise MQTTException("malformed CONNACK %r" % (bytes(data),))
    return bool(data[2] & 1), data[3]


def connack_error(code):
    reason = CONNACK_REASONS[code] if code < len(CONNACK_REASONS) else "unknown"
    return MQTTException("connection refused: CONNACK return code %d (%s)" % (code, reason))


def check_topic(topic):
    t = _b(topic)
    if not t or len(t) > 0xFFFF or b"+" in t or b"#" in t or b"\x00" in t:
        raise ValueError("invalid topic name %r" % (topic,))
    return t


def check_filter(topic):
    f = _b(topic)
    if not f or len(f) > 0xFFFF or b"\x00" in f:
        raise ValueError("invalid topic filter %r" % (topic,))
    n = len(f)
    for i in range(n):
        c = f[i]
        if c == 0x2B or c == 0x23:  # '+' or '#' must fill a whole level; '#' only the last one
            if (i and f[i - 1] != 0x2F) or (i + 1 < n and f[i + 1] != 0x2F) or (c == 0x23 and i + 1 != n):
                raise ValueError("invalid topic filter %r" % (topic,))
    return f


def publish_packet(topic, msg, qos=0, retain=False, pid=0, dup=False):
    """PUBLISH as one bytearray (the DUP bit can be set in place for a retransmission)."""
    if qos not in (0, 1):
        raise ValueError("qos must be 0 or 1")
    topic = check_topic(topic)
    if isinstance(msg, str):
        msg = msg.encode()
    tl = len(topic)
    n = 2 + tl + (2 if qos else 0) + len(msg)
    rl = remaining_length(n)
    pkt = bytearray(1 + len(rl) + n)
    pkt[0] = 0x30 | (0x08 if dup else 0) | qos << 1 | (1 if retain else 0)
    i = 1 + len(rl)
    pkt[1:i] = rl
    pkt[i] = tl >> 8
    pkt[i + 1] = tl & 0xFF
    i += 2
    pkt[i : i + tl] = topic
    i += tl
    if qos:
        if not 0 < pid <= 0xFFFF:
            raise ValueError("QoS 1 needs a packet id 1 ... 65535")
        pkt[i] = pid >> 8
        pkt[i + 1] = pid & 0xFF
        i += 2
    pkt[i:] = msg
    return pkt


def parse_publish(first, body):
    """(topic bytes, msg bytes, qos, retain, dup, pid) of a PUBLISH's first byte and remaining bytes."""
    qos = (first >> 1) & 3
    if qos > 1:
        raise MQTTException("QoS %d PUBLISH not supported" % qos)
    if len(body) < 2:
        raise MQTTException("truncated PUBLISH")
    tl = body[0] << 8 | body[1]
    i = 2 + tl
    pid = 0
    if qos:
        if len(body) < i + 2:
            raise MQTTException("truncated PUBLISH")
        pid = body[i] << 8 | body[i + 1]
        i += 2
    if len(body) < i:
        raise MQTTException("truncated PUBLISH")
    return bytes(body[2 : 2 + tl]), bytes(body[i:]), qos, bool(first & 1), bool(first & 8), pid


def puback_packet(pid):
    return bytes((0x40, 2, pid >> 8, pid & 0xFF))


def subscribe_packet(pid, filters):
    """SUBSCRIBE of [(topic filter, qos), ...]."""
    body = bytes((pid >> 8, pid & 0xFF))
    for topic, qos in filters:
        if qos not in (0, 1):
            raise ValueError("qos must be 0 or 1")
        body += _field(check_filter(topic)) + bytes((qos,))
    return _packet(0x82, body)


def topic_matches(filt, topic):
    """Whether topic (bytes) matches the subscription filter (bytes, with + and # wildcards). No allocation."""
    nf = len(filt)
    nt = len(topic)
    if nt and topic[0] == 0x24 and nf and (filt[0] == 0x2B or filt[0] == 0x23):
        return False  # '$SYS/...' topics never match a leading wildcard
    i = j = 0
    while i < nf:
        c = filt[i]
        if c == 0x23:  # '#': the rest, including the parent level
            return True
        if c == 0x2B:  # '+': one whole level
            while j < nt and topic[j] != 0x2F:
                j += 1
            i += 1
            continue
        if j < nt and topic[j] == c:
            i += 1
            j += 1
            continue
        # 'a/#' also matches 'a'
        return j == nt and c == 0x2F and i + 2 == nf and filt[i + 1] == 0x23
    return j == nt


def backoff_ms(schedule, attempt):
    """Delay before reconnect attempt `attempt` (0-based): the schedule's last entry repeats."""
    return int(schedule[min(attempt, len(schedule) - 1)] * 1000)


# ---------------------------------------------------------------------------------------------------------


class MQTTClient:
    """Asyncio MQTT 3.1.1 client. will = (topic, msg[, qos[, retain]]); ssl = an ssl.SSLContext or True."""

    def __init__(
        self,
        client_id,
        server,
        port=1883,
        *,
        user=None,
        password=None,
        keepalive=60,
        ssl=None,
        will=None,
        clean_session=True,
        queue_size=32,
        reconnect_backoff=(1, 2, 4, 8, 30),
        ack_timeout=10,
        connect_timeout=10,
        max_packet=16384,
        server_hostname=None,
    ):
        if not client_id and not clean_session:
            raise ValueError("a persistent session needs a client id")
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        if not reconnect_backoff:
            raise ValueError("reconnect_backoff must not be empty")
        if will is not None:
            if not 2 <= len(will) <= 4:
                raise ValueError("will = (topic, msg[, qos[, retain]])")
            will = tuple(will) + (0, False)[len(will) - 2 :]
            if will[2] not in (0, 1):
                raise ValueError("will qos must be 0 or 1")
            will = (check_topic(will[0]), _b(will[1]), will[2], bool(will[3]))
        self._connect_pkt = connect_packet(client_id, keepalive, clean_session, user, password, will)
        self.client_id = client_id
        self.server = server
        self.port = port
        self.keepalive = keepalive
        self.clean_session = clean_session
        self._ssl = ssl
        self._hostname = server_hostname or server
        self._backoff = reconnect_backoff
        self._ack_ms = int(ack_timeout * 1000)
        self._connect_ms = int(connect_timeout * 1000)
        self._max_packet = max_packet
        self._ka_ms = keepalive * 1000
        self._tick_ms = max(50, min(1000, self._ka_ms // 4)) if keepalive else 1000
        # statistics
        self.dropped = 0  # queued messages dropped (oldest first) because the queue was full
        self.given_up = 0  # QoS 1 messages dropped after _MAX_LOST connections were lost with them in flight
        self.reconnects = 0  # successful connections after the first
        self.retransmits = 0  # QoS 1 PUBLISH sent again (DUP) after ack_timeout
        self.pings = 0
        self.callback_errors = 0
        self.oversize = 0  # incoming PUBLISH larger than max_packet, discarded (still acknowledged)
        self.last_error = None
        self.session_present = False
        # connection
        self._sock = None
        self._stream = None
        self._opening = None
        self._rtask = None
        self._wlock = asyncio.Lock()
        self._running = False
        self._flushing = False
        self._ever_connected = False
        self._last_tx = self._ping_t = 0
        self._ping_out = False
        self._pid = 0
        self._subs = []  # [filter bytes, qos, callback]
        self._sub_wait = {}  # packet id -> [Event, SUBACK return codes]
        self._q = [None] * queue_size  # entries in order, oldest first; _q[:_qlen] live
        self._qlen = 0
        self._b1 = bytearray(1)
        self._ack = bytearray(b"\x40\x02\x00\x00")

    # --- state ---------------------------------------------------------------------------------------------

    @property
    def connected(self):
        return self._sock is not None

    @property
    def pending(self):
        """Messages queued or awaiting PUBACK."""
        return self._qlen

    def _next_pid(self):
        self._pid = self._pid % 0xFFFF + 1
        return self._pid

    # --- outgoing queue ------------------------------------------------------------------------------------

    def _enqueue(self, topic, msg, qos, retain):
        pid = self._next_pid() if qos else 0
        e = [publish_packet(topic, msg, qos, retain, pid), pid, _QUEUED, 0, None, 0]
        if self._qlen == len(self._q):
            self._finish(0, _DROPPED)
            self.dropped += 1
        self._q[self._qlen] = e
        self._qlen += 1
        return e

    def _finish(self, k, state):
        q = self._q
        e = q[k]
        n = self._qlen - 1
        for j in range(k, n):
            q[j] = q[j + 1]
        q[n] = None
        self._qlen = n
        e[_STATE] = state
        if e[_EVT] is not None:
            e[_EVT].set()

    def _index(self, e):
        for k in range(self._qlen):
            if self._q[k] is e:
                return k
        return -1

    def _requeue(self, now, older_than):
        """Mark in-flight entries (older than `older_than` ms, or all if < 0: after a reconnect) to be sent again."""
        due = False
        if older_than < 0:
            # The oldest message in flight went out first on the lost connection: if connections keep
            # dying with it in flight, it is the likely cause; the messages behind it are not counted.
            for k in range(self._qlen):
                e = self._q[k]
                if e[_STATE] == _INFLIGHT and e[_PID]:
                    e[_LOST] += 1
                    if e[_LOST] >= _MAX_LOST:
                        self._finish(k, _DROPPED)
                        self.given_up += 1
                    break
        for k in range(self._qlen):
            e = self._q[k]
            if e[_STATE] == _INFLIGHT and (older_than < 0 or ticks_diff(now, e[_SENT]) >= older_than):
                if e[_PID]:
                    e[_PKT][0] |= 0x08  # DUP
                    if older_than >= 0:
                        self.retransmits += 1
                e[_STATE] = _QUEUED
                due = True
            elif e[_STATE] == _QUEUED:
                due = True
        return due

    async def _flush(self):
        if self._flushing:
            return  # the running flush picks up whatever was queued meanwhile
        self._flushing = True
        try:
            while self._sock is not None:
                e = None
                for k in range(self._qlen):
                    if self._q[k][_STATE] == _QUEUED:
                        e = self._q[k]
                        break
                if e is None:
                    return
                e[_STATE] = _INFLIGHT
                e[_SENT] = ticks_ms()
                await self._send(e[_PKT])
                if not e[_PID]:
                    k = self._index(e)
                    if k >= 0:
                        self._finish(k, _ACKED)
        finally:
            self._flushing = False

    async def _flush_quietly(self):
        try:
            await self._flush()
        except OSError:
            pass  # connection lost: the messages stay queued for the next connection

    # --- public API ----------------------------------------------------------------------------------------

    def publish_nowait(self, topic, msg, qos=0, retain=False):
        """Queue a message and return at once; it is sent when connected (QoS 1: until PUBACK)."""
        self._enqueue(topic, msg, qos, retain)
        if self._sock is not None and not self._flushing:
            asyncio.create_task(self._flush_quietly())

    async def publish(self, topic, msg, qos=0, retain=False):
        """QoS 0: returns True once handed to the connection (or queued while disconnected). QoS 1: returns
        True when the PUBACK arrives (across reconnects), False if the message was dropped from the full
        queue first. Cancelling the wait (e.g. asyncio.wait_for) leaves the message queued."""
        e = self._enqueue(topic, msg, qos, retain)
        if qos:
            e[_EVT] = asyncio.Event()
        if self._sock is not None:
            await self._flush_quietly()
        if not qos:
            return True
        while e[_STATE] < _ACKED:
            await e[_EVT].wait()
        return e[_STATE] == _ACKED

    async def subscribe(self, topic, qos=0, callback=None):
        """Register callback(topic: str, msg: bytes, retained: bool) for a filter (+ and # allowed).
        Sent now when connected (returns the granted QoS), else on the next connection; re-sent on
        every connection without a stored session."""
        if qos not in (0, 1):
            raise ValueError("qos must be 0 or 1")
        f = check_filter(topic)
        for s in self._subs:
            if s[0] == f:
                s[1] = qos
                s[2] = callback
                break
        else:
            self._subs.append([f, qos, callback])
        if self._sock is None:
            return None
        return (await self._subscribe(((f, qos),)))[0]

    async def connect(self):
        """Connect (raises MQTTException with the CONNACK code if refused, OSError on network errors);
        returns whether the broker had a stored session."""
        self._close()
        try:
            await asyncio.wait_for_ms(self._open(), self._connect_ms)
        except asyncio.TimeoutError:
            self._close()
            raise OSError(errno.ETIMEDOUT)
        except BaseException:
            self._close()
            raise
        now = ticks_ms()
        self._last_tx = now
        self._ping_out = False
        if self._ever_connected:
            self.reconnects += 1
        self._ever_connected = True
        self._rtask = asyncio.create_task(self._read_loop(self._sock, self._stream))
        try:
            if self._subs and not self.session_present:
                await self._subscribe([(s[0], s[1]) for s in self._subs])
            self._requeue(now, -1)
            await self._flush()
        except BaseException:
            self._close()
            raise
        return self.session_present

    async def run(self):
        """Keep the connection: keepalive pings, QoS 1 retransmission, reconnect with backoff. Returns
        after disconnect()."""
        self._running = True
        # Index into the backoff schedule before the next attempt; -1: the very first one goes at once.
        wait = 0 if self._ever_connected else -1
        while self._running:
            if self._sock is None:
                if wait >= 0:
                    await asyncio.sleep_ms(backoff_ms(self._backoff, wait))
                    if not self._running:
                        break
                wait += 1
                try:
                    await self.connect()
                    wait = 0
                except Exception as e:  # OSError, refused CONNACK, timeouts: try again later
                    self.last_error = e
                continue
            try:
                await self._tick()
            except OSError as e:
                self.last_error = e
                self._close()

    async def disconnect(self):
        """Send DISCONNECT (the broker then discards the will), close, and stop run()."""
        self._running = False
        if self._sock is not None:
            try:
                await self._send(DISCONNECT)
            except OSError:
                pass
        self._close()

    # --- connection ----------------------------------------------------------------------------------------

    async def _open(self):
        ai = socket.getaddrinfo(self.server, self.port, 0, socket.SOCK_STREAM)[0]
        sock = socket.socket(ai[0], ai[1], ai[2])
        self._opening = sock
        sock.setblocking(False)
        try:
            sock.connect(ai[-1])
        except OSError as e:
            if e.errno != errno.EINPROGRESS:
                raise
        # Poll for the connection rather than park on asyncio's IO queue: a timeout can then close it safely.
        poller = select.poll()
        poller.register(sock, select.POLLOUT)
        while not poller.poll(0):
            await asyncio.sleep_ms(10)
        poller.unregister(sock)
        if self._ssl:
            ctx = self._ssl
            if ctx is True:
                import ssl

                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            sock = ctx.wrap_socket(sock, server_hostname=self._hostname, do_handshake_on_connect=False)
            self._opening = sock
            sock.setblocking(False)
        await self._write(sock, self._connect_pkt)
        stream = asyncio.StreamReader(sock)
        present, code = parse_connack(await stream.readexactly(4))
        if code:
            raise connack_error(code)
        self.session_present = present
        self._opening = None
        self._sock = sock
        self._stream = stream

    def _close(self):
        """Tear the connection down (not the queue or subscriptions). Safe from any task, any time."""
        t = self._rtask
        self._rtask = None
        if t is not None and t is not asyncio.current_task():
            t.cancel()  # also takes it off asyncio's IO queue, so the socket can be closed
        if self._sock is not None:
            self._lost(self._sock)
        if self._opening is not None:
            s = self._opening
            self._opening = None
            try:
                s.close()
            except OSError:
                pass

    def _lost(self, sock):
        if self._sock is not sock:
            return
        self._sock = None
        self._stream = None
        self._ping_out = False
        try:
            sock.close()
        except OSError:
            pass
        for slot in self._sub_wait.values():
            slot[0].set()  # subscribe() sees no return codes and fails

    async def _write(self, sock, buf):
        n = sock.write(buf)
        if n == len(buf):
            return  # the usual case: no allocation
        off = n or 0
        mv = memoryview(buf)
        t0 = ticks_ms()
        while off < len(buf):
            await asyncio.sleep_ms(5)
            if ticks_diff(ticks_ms(), t0) > self._connect_ms:
                raise OSError(errno.ETIMEDOUT)
            n = sock.write(mv[off:])
            if n:
                off += n

    async def _send(self, pkt):
        sock = self._sock
        if sock is None:
            raise OSError(errno.ENOTCONN)
        async with self._wlock:
            if self._sock is not sock:
                raise OSError(errno.ENOTCONN)
            try:
                await self._write(sock, pkt)
            except OSError as e:
                self.last_error = e
                self._close()
                raise
            self._last_tx = ticks_ms()

    async def _subscribe(self, filters):
        pid = self._next_pid()
        slot = [asyncio.Event(), None]
        self._sub_wait[pid] = slot
        try:
            await self._send(subscribe_packet(pid, filters))
            try:
                await asyncio.wait_for_ms(slot[0].wait(), self._ack_ms)
            except asyncio.TimeoutError:
                pass
        finally:
            del self._sub_wait[pid]
        codes = slot[1]
        if codes is None:
            raise MQTTException("no SUBACK for %r" % ([f for f, _ in filters],))
        for f, code in zip(filters, codes):
            if code == 0x80:
                raise MQTTException("subscription to %r refused (SUBACK 0x80)" % (f[0],))
        return codes

    async def _tick(self):
        now = ticks_ms()
        ka = self._ka_ms
        if ka:
            if self._ping_out:
                if ticks_diff(now, self._ping_t) >= ka:
                    self.last_error = MQTTException("no PINGRESP within keepalive")
                    self._close()
                    return
            elif ticks_diff(now, self._last_tx) >= ka // 2:
                self._ping_out = True
                self._ping_t = now
                self.pings += 1
                await self._send(PINGREQ)
        if self._requeue(now, self._ack_ms):
            await self._flush()
        await asyncio.sleep_ms(self._tick_ms)

    # --- incoming ------------------------------------------------------------------------------------------

    async def _byte(self, stream):
        b = self._b1
        while True:
            n = await stream.readinto(b)
            if n:
                return b[0]
            if n == 0:
                raise EOFError("connection closed by broker")

    async def _u16(self, stream):
        hi = await self._byte(stream)
        return hi << 8 | await self._byte(stream)

    async def _skip(self, stream, n):
        while n > 0:
            chunk = await stream.read(min(n, 256))
            if not chunk:
                raise EOFError("connection closed by broker")
            n -= len(chunk)

    async def _read_loop(self, sock, stream):
        try:
            while self._sock is sock:  # closed from a callback: stop before reading a closed socket
                first = await self._byte(stream)
                n = 0
                shift = 0
                while True:
                    b = await self._byte(stream)
                    n |= (b & 0x7F) << shift
                    if b < 0x80:
                        break
                    shift += 7
                    if shift > 21:
                        raise MQTTException("malformed remaining length")
                kind = first & 0xF0
                if kind == 0x30:
                    await self._on_publish(stream, first, n)
                elif kind == 0x40 and n == 2:
                    self._on_puback(await self._u16(stream))
                elif kind == 0x90 and n >= 3:
                    pid = await self._u16(stream)
                    codes = await stream.readexactly(n - 2)
                    slot = self._sub_wait.get(pid)
                    if slot is not None:
                        slot[1] = codes
                        slot[0].set()
                elif kind == 0xD0 and n == 0:
                    self._ping_out = False
                else:
                    raise MQTTException("unexpected packet 0x%02x (%d bytes)" % (first, n))
        except Exception as e:  # EOFError, OSError, protocol errors; CancelledError is not an Exception
            self.last_error = e
        if self._rtask is asyncio.current_task():
            self._rtask = None
        self._lost(sock)

    def _on_puback(self, pid):
        for k in range(self._qlen):
            e = self._q[k]
            if pid and e[_PID] == pid:
                self._finish(k, _ACKED)
                return

    async def _on_publish(self, stream, first, n):
        if n > self._max_packet:
            qos = (first >> 1) & 3
            tl = await self._u16(stream)
            await self._skip(stream, tl)
            n -= 2 + tl
            pid = 0
            if qos:
                pid = await self._u16(stream)
                n -= 2
            await self._skip(stream, n)
            self.oversize += 1
        else:
            topic, msg, qos, retained, _, pid = parse_publish(first, await stream.readexactly(n))
            name = None
            for f, _, cb in self._subs:
                if cb is not None and topic_matches(f, topic):
                    if name is None:
                        name = topic.decode()
                    try:
                        cb(name, msg, retained)
                    except Exception as e:  # a faulty callback must not take the connection down
                        self.callback_errors += 1
                        self.last_error = e
                        sys.print_exception(e)
        if qos == 1:
            a = self._ack
            a[2] = pid >> 8
            a[3] = pid & 0xFF
            await self._send(a)
        elif qos:
            raise MQTTException("QoS %d PUBLISH not supported" % qos)

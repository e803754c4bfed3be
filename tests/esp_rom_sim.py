"""A simulated ESP32-S3 serial ROM bootloader for tests, reachable as `socket://127.0.0.1:PORT`.

It speaks the ROM loader protocol the way esptool (5.x) uses it in `--no-stub` mode over a TCP socket (which esptool
always treats as `no-reset`): SLIP frames, SYNC, GET_SECURITY_INFO (chip id 9 = ESP32-S3), READ_REG/WRITE_REG
(registers default to 0, the SPI controller at 0x60002000 runs RDID/SFDP/RDSR user commands), SPI_ATTACH,
SPI_SET_PARAMS, CHANGE_BAUDRATE, FLASH_BEGIN/FLASH_DATA/FLASH_END, SPI_FLASH_MD5 (32 hex characters, as the ROM
answers) and READ_FLASH_SLOW (64 bytes a call). The flash is a bytearray with NOR semantics: FLASH_BEGIN erases whole
4 KB sectors to 0xFF, FLASH_DATA programs (AND) the bytes. The flash size is what RDID reports (Winbond-style id
0x<log2 size>40EF), so esptool's `flash-id` and flash-size detection see it.

Every request's command name is appended to `commands`, so a test can prove that something (FLASH_BEGIN) never
reached the device. `mute=True` makes a device that accepts the connection and never answers.

Written from the protocol description in ../shared/ARCHITECTURE.md and esptool's request/response layout; it is not
a copy of any Espressif code.
"""

from __future__ import annotations

import hashlib
import socket
import struct
import threading
from dataclasses import dataclass, field

MB = 1024 * 1024
SECTOR = 4096

SLIP_END, SLIP_ESC, SLIP_ESC_END, SLIP_ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD
CHECKSUM_SEED = 0xEF

COMMANDS = {
    0x02: "FLASH_BEGIN",
    0x03: "FLASH_DATA",
    0x04: "FLASH_END",
    0x05: "MEM_BEGIN",
    0x06: "MEM_END",
    0x07: "MEM_DATA",
    0x08: "SYNC",
    0x09: "WRITE_REG",
    0x0A: "READ_REG",
    0x0B: "SPI_SET_PARAMS",
    0x0D: "SPI_ATTACH",
    0x0E: "READ_FLASH_SLOW",
    0x0F: "CHANGE_BAUDRATE",
    0x10: "FLASH_DEFL_BEGIN",
    0x11: "FLASH_DEFL_DATA",
    0x12: "FLASH_DEFL_END",
    0x13: "SPI_FLASH_MD5",
    0x14: "GET_SECURITY_INFO",
}

# ROM error codes carried in the status bytes.
ERR_INVALID_MESSAGE = 0x05
ERR_FAILED = 0x06
ERR_BAD_CHECKSUM = 0x07

ESP32S3_CHIP_ID = 9
SYNC_VALUE = 0x20120707  # any non-zero value: zero would mean "flasher stub running"

# ESP32-S3 SPI0/1 controller registers as esptool drives them for user commands.
SPI_BASE = 0x60002000
SPI_CMD_REG = SPI_BASE + 0x00
SPI_USR2_REG = SPI_BASE + 0x20
SPI_W0_REG = SPI_BASE + 0x58
SPI_CMD_USR = 1 << 18

SPIFLASH_RDID = 0x9F
SPIFLASH_RDSFDP = 0x5A
SFDP_SIGNATURE = 0x50444653  # "SFDP" little-endian


def slip_encode(packet: bytes) -> bytes:
    escaped = packet.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc")
    return b"\xc0" + escaped + b"\xc0"


class SlipDecoder:
    """Turns a byte stream into SLIP frames; bytes outside a frame are ignored."""

    def __init__(self) -> None:
        self._frame: bytearray | None = None
        self._escape = False

    def feed(self, data: bytes) -> list[bytes]:
        frames = []
        for byte in data:
            if self._frame is None:
                if byte == SLIP_END:
                    self._frame = bytearray()
                continue
            if self._escape:
                self._escape = False
                self._frame.append({SLIP_ESC_END: SLIP_END, SLIP_ESC_ESC: SLIP_ESC}.get(byte, byte))
            elif byte == SLIP_ESC:
                self._escape = True
            elif byte == SLIP_END:
                if self._frame:
                    frames.append(bytes(self._frame))
                    self._frame = None
                # an empty frame is the END of one frame followed by the start of the next: keep collecting
            else:
                self._frame.append(byte)
        return frames


def rdid_for(flash_size: int) -> int:
    """JEDEC id as esptool reads it from SPI_W0: manufacturer (Winbond 0xEF), type 0x40, capacity log2(size)."""
    if flash_size <= 0 or flash_size & (flash_size - 1):
        raise ValueError(f"flash size must be a power of two, not {flash_size}")
    return (flash_size.bit_length() - 1) << 16 | 0x40 << 8 | 0xEF


@dataclass
class _FlashWrite:
    offset: int
    blocks: int
    block_size: int
    next_seq: int = 0


@dataclass
class SimulatedEsp32S3:
    """An ESP32-S3 in download mode behind a TCP port. Use as a context manager (starts/stops the server thread)."""

    flash_size: int = 4 * MB
    mute: bool = False
    chip_id: int = ESP32S3_CHIP_ID
    flash: bytearray = field(init=False, repr=False)
    commands: list[str] = field(init=False, default_factory=list, repr=False)
    flash_begins: list[tuple[int, int]] = field(init=False, default_factory=list, repr=False)
    errors: list[str] = field(init=False, default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.flash = bytearray(b"\xff" * self.flash_size)
        self.rdid = rdid_for(self.flash_size)
        self._registers: dict[int, int] = {}
        self._write: _FlashWrite | None = None
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(4)
        self._server.settimeout(0.1)
        self.port: int = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="esp-rom-sim", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def start(self) -> SimulatedEsp32S3:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.close()

    def __enter__(self) -> SimulatedEsp32S3:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(0.1)
                self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        decoder = SlipDecoder()
        while not self._stop.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            if self.mute:
                continue
            for frame in decoder.feed(data):
                try:
                    for reply in self._handle(frame):
                        conn.sendall(slip_encode(reply))
                except OSError:
                    return

    # -- protocol ----------------------------------------------------------------------------------------------

    @staticmethod
    def _response(op: int, value: int = 0, payload: bytes = b"", error: int = 0) -> bytes:
        # The ROM appends 4 status bytes: status (0 ok / 1 failed), error code, two reserved.
        body = payload + bytes([1 if error else 0, error, 0, 0])
        return struct.pack("<BBHI", 0x01, op, len(body), value) + body

    def _handle(self, frame: bytes) -> list[bytes]:
        if len(frame) < 8 or frame[0] != 0x00:
            return []
        _, op, size, checksum = struct.unpack("<BBHI", frame[:8])
        data = frame[8:]
        name = COMMANDS.get(op, f"0x{op:02x}")
        self.commands.append(name)
        if len(data) != size:
            return [self._response(op, error=ERR_INVALID_MESSAGE)]
        handler = getattr(self, f"_cmd_{name.lower()}", None)
        if handler is None:
            return [self._response(op, error=ERR_INVALID_MESSAGE)]
        try:
            return handler(op, data, checksum)
        except (struct.error, ValueError, IndexError) as error:
            self.errors.append(f"{name}: {error}")
            return [self._response(op, error=ERR_FAILED)]

    def _cmd_sync(self, op: int, data: bytes, _: int) -> list[bytes]:
        if data != b"\x07\x07\x12\x20" + b"\x55" * 32:
            return [self._response(op, error=ERR_INVALID_MESSAGE)]
        return [self._response(op, SYNC_VALUE)] * 8

    def _cmd_get_security_info(self, op: int, data: bytes, _: int) -> list[bytes]:
        # flags, flash_crypt_cnt, 7 key purposes, chip id, API version
        payload = struct.pack("<IBBBBBBBBII", 0, 0, 0, 0, 0, 0, 0, 0, 0, self.chip_id, 0)
        return [self._response(op, payload=payload)]

    def _cmd_read_reg(self, op: int, data: bytes, _: int) -> list[bytes]:
        (address,) = struct.unpack("<I", data)
        return [self._response(op, self._registers.get(address, 0))]

    def _cmd_write_reg(self, op: int, data: bytes, _: int) -> list[bytes]:
        if len(data) % 16:
            raise ValueError("WRITE_REG payload is not a multiple of 16 bytes")
        for offset in range(0, len(data), 16):
            address, value, mask, _delay = struct.unpack_from("<IIII", data, offset)
            old = self._registers.get(address, 0)
            self._registers[address] = (old & ~mask) | (value & mask)
            if address == SPI_CMD_REG and value & SPI_CMD_USR:
                self._run_spi_command()
        return [self._response(op)]

    def _run_spi_command(self) -> None:
        command = self._registers.get(SPI_USR2_REG, 0) & 0xFF
        if command == SPIFLASH_RDID:
            result = self.rdid
        elif command == SPIFLASH_RDSFDP:
            result = SFDP_SIGNATURE
        else:  # status registers and anything else: all clear
            result = 0
        self._registers[SPI_W0_REG] = result
        self._registers[SPI_CMD_REG] = self._registers[SPI_CMD_REG] & ~SPI_CMD_USR  # done at once

    def _cmd_spi_attach(self, op: int, data: bytes, _: int) -> list[bytes]:
        return [self._response(op)]

    def _cmd_spi_set_params(self, op: int, data: bytes, _: int) -> list[bytes]:
        _fl_id, total_size, _block, _sector, _page, _mask = struct.unpack("<IIIIII", data)
        if total_size > self.flash_size:
            self.errors.append(f"SPI_SET_PARAMS: {total_size} bytes is more than the chip's {self.flash_size}")
        return [self._response(op)]

    def _cmd_change_baudrate(self, op: int, data: bytes, _: int) -> list[bytes]:
        return [self._response(op)]

    def _cmd_flash_begin(self, op: int, data: bytes, _: int) -> list[bytes]:
        erase_size, blocks, block_size, offset = struct.unpack_from("<IIII", data)
        self.flash_begins.append((offset, erase_size))
        if offset + erase_size > self.flash_size or block_size == 0:
            self._write = None
            return [self._response(op, error=ERR_FAILED)]
        if erase_size:
            start = offset - offset % SECTOR
            end = min(-(-(offset + erase_size) // SECTOR) * SECTOR, self.flash_size)
            self.flash[start:end] = b"\xff" * (end - start)
        self._write = _FlashWrite(offset, blocks, block_size)
        return [self._response(op)]

    def _cmd_flash_data(self, op: int, data: bytes, checksum: int) -> list[bytes]:
        length, seq, _, _ = struct.unpack_from("<IIII", data)
        block = data[16:]
        write = self._write
        if write is None or len(block) != length or seq != write.next_seq or seq >= write.blocks:
            return [self._response(op, error=ERR_FAILED)]
        expected = CHECKSUM_SEED
        for byte in block:
            expected ^= byte
        if checksum != expected:
            return [self._response(op, error=ERR_BAD_CHECKSUM)]
        start = write.offset + seq * write.block_size
        end = min(start + len(block), self.flash_size)
        old = int.from_bytes(self.flash[start:end], "little")
        new = int.from_bytes(block[: end - start], "little")
        self.flash[start:end] = (old & new).to_bytes(end - start, "little")  # NOR programming only clears bits
        write.next_seq += 1
        return [self._response(op)]

    def _cmd_flash_end(self, op: int, data: bytes, _: int) -> list[bytes]:
        self._write = None
        return [self._response(op)]

    def _cmd_spi_flash_md5(self, op: int, data: bytes, _: int) -> list[bytes]:
        address, size, _, _ = struct.unpack("<IIII", data)
        if address + size > self.flash_size:
            return [self._response(op, error=ERR_FAILED)]
        digest = hashlib.md5(self.flash[address : address + size]).hexdigest().encode()
        return [self._response(op, payload=digest)]

    def _cmd_read_flash_slow(self, op: int, data: bytes, _: int) -> list[bytes]:
        address, length = struct.unpack("<II", data)
        if length > 64 or address + length > self.flash_size:
            return [self._response(op, error=ERR_FAILED)]
        chunk = bytes(self.flash[address : address + length]).ljust(64, b"\xff")
        return [self._response(op, payload=chunk)]

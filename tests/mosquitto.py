"""A real mosquitto broker for tests: 127.0.0.1 only, ephemeral ports, generated config in a temp dir.

    with Mosquitto(auth=True, tls=True) as broker:
        broker.port        # anonymous listener
        broker.auth_port   # user/password listener (broker.user, broker.password)
        broker.tls_port    # TLS listener, server certificate signed by broker.ca_file (CN/SAN localhost, 127.0.0.1);
                           # broker.ca_der_file is the same CA in DER, the form MicroPython's ssl loads
        broker.restart()   # stop and start again on the same ports (with persistence=True, sessions survive)
        broker.pause()     # SIGSTOP: connections stay up, nothing is answered; broker.resume() continues

Never touches port 1883 or the system service; the broker process is killed at exit.
"""

from __future__ import annotations

import datetime
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

START_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 5.0


class BrokerError(RuntimeError):
    pass


def mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise BrokerError("mosquitto is not installed (Debian package `mosquitto`; tools/ensure_system_deps.sh)")


def free_port() -> int:
    """A port the kernel just handed out on 127.0.0.1 (ephemeral range, so never 1883)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def make_certificates(directory: Path) -> tuple[Path, Path, Path, Path]:
    """A throwaway CA and a server certificate for localhost / 127.0.0.1 it signed: (ca, cert, key) PEM files
    and the CA in DER."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tinysense test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key", directory / "ca.der"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[3].write_bytes(ca.public_bytes(serialization.Encoding.DER))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return paths


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process dies, so no broker outlives a killed pytest (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Mosquitto:
    def __init__(self, *, auth: bool = False, tls: bool = False, persistence: bool = False,
                 user: str = "sensor", password: str = "s3cret-pass") -> None:
        self.binary = mosquitto_binary()
        self.dir = Path(tempfile.mkdtemp(prefix="tinysense-mosquitto-"))
        self.user, self.password = user, password
        self.persistence = persistence
        self.port = free_port()
        self.auth_port = free_port() if auth else None
        self.tls_port = free_port() if tls else None
        self.ca_file: Path | None = None
        self.ca_der_file: Path | None = None
        self.log = self.dir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.config = self.dir / "mosquitto.conf"
        self.config.write_text(self._config())

    def _config(self) -> str:
        lines = ["per_listener_settings true", f"persistence {'true' if self.persistence else 'false'}",
                 f"log_dest file {self.log}", "log_type error", "log_type warning", "log_type notice",
                 "log_type information", "connection_messages true"]
        if self.persistence:
            lines += [f"persistence_location {self.dir}/", "autosave_interval 0"]
        if os.geteuid() == 0:
            lines.append("user root")  # as root mosquitto would switch to user `mosquitto`, who can't read self.dir
        lines += [f"listener {self.port} 127.0.0.1", "allow_anonymous true"]
        if self.auth_port is not None:
            passwd = self.dir / "passwd"
            tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
            subprocess.run([tool, "-c", "-b", str(passwd), self.user, self.password], check=True,
                           capture_output=True, timeout=30)
            lines += [f"listener {self.auth_port} 127.0.0.1", "allow_anonymous false", f"password_file {passwd}"]
        if self.tls_port is not None:
            ca, cert, key, self.ca_der_file = make_certificates(self.dir)
            self.ca_file = ca
            lines += [f"listener {self.tls_port} 127.0.0.1", "allow_anonymous true", f"cafile {ca}",
                      f"certfile {cert}", f"keyfile {key}"]
        return "\n".join(lines) + "\n"

    def ports(self) -> list[int]:
        return [p for p in (self.port, self.auth_port, self.tls_port) if p is not None]

    def start(self) -> None:
        if self.proc is not None:
            raise BrokerError("already running")
        self.proc = subprocess.Popen([self.binary, "-c", str(self.config)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     preexec_fn=_die_with_parent)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                self.proc = None
                raise BrokerError(f"mosquitto exited at start: {err.strip()}\n{self.log_text()}")
            if all(port_open(p) for p in self.ports()):
                return
            time.sleep(0.02)
        self.stop()
        raise BrokerError(f"mosquitto did not open {self.ports()} within {START_TIMEOUT_S} s\n{self.log_text()}")

    def stop(self) -> None:
        """SIGTERM (mosquitto then saves its persistence file) and wait; SIGKILL if it hangs."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGCONT)  # in case it was paused
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)
        if proc.stderr:
            proc.stderr.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while any(port_open(p) for p in self.ports()) and time.monotonic() < deadline:
            time.sleep(0.02)

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open, nothing is answered."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

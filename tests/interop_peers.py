"""Independent peers for the interop tests (tests/test_interop_*.py): a process parkmon did not write, started
by the test, that prints ``ready ...`` once it listens and takes one command per stdin line."""

from __future__ import annotations

import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

JS_PEERS = Path(__file__).parent / "js-peers"


def node_peer(package: str) -> str:
    """The node binary, once ``package`` is installed in tests/js-peers; otherwise the test skips and says why."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (apt-get install nodejs npm): the independent peer is a node script")
    if not (JS_PEERS / "node_modules" / package / "package.json").is_file():
        pytest.skip(f"npm package {package} is not installed: npm ci --omit=optional --prefix tests/js-peers "
                    "(./dev.sh test does it)")
    return node


class Peer:
    """One peer process. Its stdout is read line by line on a thread; stderr is kept for the failure message."""

    def __init__(self, argv: Sequence[str], cwd: Path | None = None, ready_within_s: float = 60.0) -> None:
        self.proc = subprocess.Popen(list(argv), cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._err: list[str] = []
        threading.Thread(target=self._pump_out, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()
        self.ready = self._answer(("ready",), ready_within_s)
        if not self.ready.startswith("ready"):
            self.stop()
            raise AssertionError(f"peer {argv[:2]} did not start: {self.ready!r}\n{self.stderr}")

    def _pump_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)  # end of output: the process has gone

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._err.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self._err[-40:])

    def _answer(self, starts: tuple[str, ...], within_s: float) -> str:
        """The next stdout line starting with one of ``starts``; other lines (a library's log) are kept."""
        deadline = time.monotonic() + within_s
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return f"<nothing within {within_s} s>"
            if line is None:
                return "<exited>"
            if line.startswith(starts):
                return line
            self._err.append(line + "\n")

    def command(self, line: str, within_s: float = 10.0) -> str:
        """Send one command line; the peer's one-line answer."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self._answer(("ok", "error"), within_s)
        if not answer.startswith("ok"):
            raise AssertionError(f"peer refused {line!r}: {answer}\n{self.stderr}")
        return answer

    def stop(self) -> None:
        """Close its stdin (the peers end on that), then wait; killed only if it does not end."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(10)
            except (subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait(5)

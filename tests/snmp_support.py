"""Real SNMP agents for the SNMP tests: snmpsim serving the corpus of captures (tests/corpus), and
net-snmp's snmpd with its own configuration, both on 127.0.0.1 with bounded waits."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import ROOT, free_port

# Copies of ../shared/corpus (see tests/corpus/README.md): a clone alone passes its tests.
CORPUS = ROOT / "tests" / "corpus" / "snmp"
CORPUS_MORE = ROOT / "tests" / "corpus" / "snmp-more"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0


def captures(corpus: Path = CORPUS) -> list[str]:
    """Names of the corpus captures (``<name>.snmprec`` with ``<name>.expected.json``)."""
    return sorted(p.name.removesuffix(".expected.json") for p in corpus.glob("*.expected.json"))


def expected(capture: str, corpus: Path = CORPUS) -> dict:
    return json.loads((corpus / f"{capture}.expected.json").read_text(encoding="utf-8"))


def snmpsim_command() -> list[str]:
    """snmpsim's full command responder from this interpreter's environment."""
    script = Path(sys.executable).parent / "snmpsim-command-responder"
    return [str(script)] if script.exists() else []


def _wait_for(process: subprocess.Popen, log: Path, marker: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if marker in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise RuntimeError(f"agent exited ({process.returncode}): {log.read_text()[-2000:]}")
        time.sleep(0.05)
    raise RuntimeError(f"agent did not start within {START_TIMEOUT_S} s: {log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT_S)


async def _answering(port: int, community: str) -> None:
    """Wait until the agent answers a GET: its first answer may take a while on a busy
    machine, and no test should spend its own timeout on that."""
    from pue_monitor.collectors.errors import PollError
    from pue_monitor.collectors.snmp_client import PysnmpClient

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        client = PysnmpClient("127.0.0.1", port, community, "2c", timeout_s=2.0, retries=0)
        try:
            await client.get(["1.3.6.1.2.1.1.2.0"])
            return
        except PollError:
            if time.monotonic() > deadline:
                raise
        finally:
            client.close()


@contextmanager
def snmpsim(workdir: Path, corpus: Path = CORPUS) -> Iterator[int]:
    """snmpsim serving every capture of a corpus (community = capture name); yields its port."""
    data, cache = workdir / "data", workdir / "cache"
    data.mkdir()
    cache.mkdir()
    for path in corpus.glob("*.snmprec"):
        shutil.copy(path, data / path.name)
    port = free_port()
    log = workdir / "snmpsim.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [*snmpsim_command(), f"--data-dir={data}", f"--cache-dir={cache}",
             f"--agent-udpv4-endpoint=127.0.0.1:{port}", "--log-level=info"],
            stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "SNMPSIM_ALLOW_ROOT": "true"})
    try:
        _wait_for(process, log, "Listening at UDP/IPv4 endpoint")
        asyncio.run(_answering(port, captures(corpus)[0]))
        yield port
    finally:
        _stop(process)


def snmpd_conf(port: int, community: str, users: list[tuple[str, str, str, str, str]],
               overrides: dict[str, int]) -> str:
    """snmpd.conf: a v2c community, v3 users (name, auth, auth key, priv, priv key) with
    read access at authPriv, and fixed integer objects (``override``)."""
    lines = [f"agentAddress udp:127.0.0.1:{port}", f"rocommunity {community} 127.0.0.1"]
    for user, auth, auth_key, priv, priv_key in users:
        lines += [f'createUser {user} {auth} "{auth_key}" {priv} "{priv_key}"',
                  f"rouser {user} priv"]
    lines += [f"override .{oid} integer {value}" for oid, value in overrides.items()]
    return "\n".join(lines) + "\n"


@contextmanager
def snmpd(snmpd_path: str, workdir: Path, conf_text: str, port: int) -> Iterator[int]:
    """net-snmp's snmpd in the foreground with only this configuration; yields its port."""
    conf = workdir / "snmpd.conf"
    conf.write_text(conf_text)
    persist = workdir / "persist"  # kept: started again here, the agent keeps its engine id
    persist.mkdir(exist_ok=True)
    log = workdir / "snmpd.log"
    log.write_text("")  # a fresh log: its start marker must be this run's
    process = subprocess.Popen(
        [snmpd_path, "-f", "-C", "-c", str(conf), "-Lf", str(log), "-p", str(workdir / "pid"),
         f"--persistentDir={persist}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "SNMP_PERSISTENT_DIR": str(persist), "MIBS": ""})
    try:
        _wait_for(process, log, "NET-SNMP version")
        yield port
    finally:
        _stop(process)


# Both SNMP engines pass the same tests: the fast one (gufo-snmp) and the reference (pysnmp).
ENGINES = ("fast", "reference")


def snmp_client(engine: str, host: str, port: int, community: str = "public",
                version: str = "2c", **options):
    """A client of the given engine, with the PysnmpClient/GufoClient arguments."""
    from pue_monitor.collectors.snmp_client import PysnmpClient
    from pue_monitor.collectors.snmp_gufo import GufoClient

    cls = GufoClient if engine == "fast" else PysnmpClient
    return cls(host, port, community, version, **options)


class ScriptedAgent:
    """Answers the n-th request with ``script(n, request)``: a list of (delay in seconds,
    datagram) sent in order, each delay after the previous one."""

    def __init__(self, script: Callable[[int, bytes], list[tuple[float, bytes]]]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.script, self.requests, self.stopped = script, 0, threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            n, self.requests = self.requests, self.requests + 1
            for delay, datagram in self.script(n, data):
                if self.stopped.wait(delay):
                    return
                self.sock.sendto(datagram, peer)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.sock.close()

"""Modbus collection speed: reads per second per core and CPU per read (a benchmark, not a test).

Run: ``.venv/bin/python benchmarks/modbus_poll.py [--reads 20000]``

Every scenario reads 20 holding registers (ten float32 fields) per request from a Modbus
TCP server in another process on 127.0.0.1, and its CPU time is the client process's own
(``time.process_time``, or ``clock()`` in C), so the server's cost is not counted:

* ``ours, decode+store``: the monitor's own path: ModbusConnection, whole-block decoding
  into readings, and the readings written to the SQLite store in batches as the sink does;
* ``ours, read only``: the same connection without decoding or storing;
* ``pymodbus client``: pymodbus's AsyncModbusTcpClient alone (no decoding), for reference;
* ``libmodbus (C)``: a few lines of C against Debian's libmodbus-dev, built here with cc;
  skipped with a note when cc or the library is missing;
* ``decode only``: whole-block struct decoding against pymodbus's per-value conversion.

Each runs over one connection and over 64 (64 server connections; ours and pymodbus run
64 concurrent pollers, libmodbus round-robins 64 blocking contexts).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pue_monitor.collectors.decode import decode_modbus  # noqa: E402
from pue_monitor.collectors.modbus_client import ModbusConnection  # noqa: E402
from pue_monitor.collectors.modbus_plan import plan_modbus  # noqa: E402
from pue_monitor.config.profiles import ResolvedModbusPoint  # noqa: E402
from pue_monitor.store.model import PollResult  # noqa: E402
from pue_monitor.store.sqlite import Store  # noqa: E402

REGISTERS = 20
FIELDS = REGISTERS // 2
STORE_BATCH = 500  # as collectors.sink.FLUSH_BATCH
C_CLIENT = r"""
#include <modbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int main(int argc, char **argv) {
    int port = atoi(argv[1]), reads = atoi(argv[2]), conns = atoi(argv[3]);
    modbus_t **ctx = calloc(conns, sizeof *ctx);
    uint16_t regs[125];
    for (int c = 0; c < conns; c++) {
        ctx[c] = modbus_new_tcp("127.0.0.1", port);
        if (modbus_connect(ctx[c]) != 0) { fprintf(stderr, "connect failed\n"); return 1; }
    }
    struct timespec w0, w1; clock_gettime(CLOCK_MONOTONIC, &w0);
    clock_t c0 = clock();
    for (int i = 0; i < reads; i++)
        if (modbus_read_registers(ctx[i % conns], 0, 20, regs) != 20) { return 2; }
    clock_t c1 = clock(); clock_gettime(CLOCK_MONOTONIC, &w1);
    printf("%f %f\n", (double)(c1 - c0) / CLOCKS_PER_SEC,
           (w1.tv_sec - w0.tv_sec) + (w1.tv_nsec - w0.tv_nsec) / 1e9);
    for (int c = 0; c < conns; c++) { modbus_close(ctx[c]); modbus_free(ctx[c]); }
    return 0;
}
"""


# ---- the server (another process) ---------------------------------------------------------

def _serve(port_out: multiprocessing.connection.Connection) -> None:
    """A minimal Modbus TCP server: any FC3/FC4 read gets a fixed block of float32 values."""
    words = struct.unpack(f">{REGISTERS}H", struct.pack(f">{FIELDS}f",
                                                         *(230.0 + i for i in range(FIELDS))))

    class Answer(asyncio.Protocol):
        def connection_made(self, transport):  # noqa: ANN001
            self.transport, self.buffer = transport, b""
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while len(self.buffer) >= 12:
                tid, _, length, unit = struct.unpack(">HHHB", self.buffer[:7])
                function, _address, count = struct.unpack(">BHH", self.buffer[7:12])
                self.buffer = self.buffer[6 + length:]
                body = bytes((function, 2 * count)) + struct.pack(f">{count}H",
                                                                   *(words * 7)[:count])
                self.transport.write(struct.pack(">HHHB", tid, 0, len(body) + 1, unit) + body)

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", 0,
                                                                 backlog=256)
        port_out.send(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


def start_server() -> tuple[multiprocessing.Process, int]:
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=_serve, args=(child,), daemon=True)
    proc.start()
    return proc, parent.recv()


# ---- clients ------------------------------------------------------------------------------

def _points() -> list[ResolvedModbusPoint]:
    return [ResolvedModbusPoint(metric="active_power_w", address=2 * i, function=3,
                                type="float32", order="ABCD", scale=1.0, offset=0.0,
                                labels={"circuit": f"c{i}"}, not_available=(),
                                manual_register=2 * i) for i in range(FIELDS)]


async def ours(port: int, reads: int, conns: int, decode: bool, store: Store | None) -> tuple:
    plan = plan_modbus(_points())
    assert len(plan) == 1 and plan[0].count == REGISTERS
    read = plan[0]
    pending: list[PollResult] = []
    connections = [ModbusConnection("127.0.0.1", port, timeout_s=5.0) for _ in range(conns)]

    async def poller(conn: ModbusConnection, n: int, index: int) -> None:
        device = f"dev{index}"
        for _ in range(n):
            block = await conn.read(read.function, read.address, read.count, 1)
            if decode:
                ts = time.time()
                readings = decode_modbus(plan, {0: block}, device, ts)
                pending.append(PollResult(device, "bench", ts, 0.001, tuple(readings)))
                if store is not None and len(pending) >= STORE_BATCH:
                    store.write_polls(pending)
                    pending.clear()

    for conn in connections:  # connect outside the timed part
        await conn.read(3, 0, 1, 1)
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(poller(c, reads // conns, i) for i, c in enumerate(connections)))
    if store is not None and pending:
        store.write_polls(pending)
    if store is not None:  # the readings waiting in recent moved, as when due
        store.move_recent()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    for conn in connections:
        conn.close()
    return cpu, wall, (reads // conns) * conns


async def pymodbus_client(port: int, reads: int, conns: int) -> tuple:
    from pymodbus.client import AsyncModbusTcpClient

    clients = [AsyncModbusTcpClient("127.0.0.1", port=port, timeout=5, retries=0)
               for _ in range(conns)]
    for client in clients:
        await client.connect()

    async def poller(client: AsyncModbusTcpClient, n: int) -> None:
        for _ in range(n):
            await client.read_holding_registers(0, count=REGISTERS, device_id=1)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(poller(c, reads // conns) for c in clients))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    for client in clients:
        client.close()
    return cpu, wall, (reads // conns) * conns


def build_libmodbus(workdir: Path) -> Path | None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    source, binary = workdir / "bench.c", workdir / "bench"
    source.write_text(C_CLIENT)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libmodbus"],
                           capture_output=True, text=True)
    extra = flags.stdout.split() if flags.returncode == 0 else ["-I/usr/include/modbus",
                                                               "-lmodbus"]
    built = subprocess.run([cc, "-O2", "-o", str(binary), str(source), *extra],
                           capture_output=True, text=True)
    return binary if built.returncode == 0 else None


def libmodbus(binary: Path, port: int, reads: int, conns: int) -> tuple:
    out = subprocess.run([str(binary), str(port), str(reads), str(conns)], capture_output=True,
                         text=True, check=True, timeout=600).stdout.split()
    return float(out[0]), float(out[1]), reads


def decode_only(rounds: int) -> tuple[float, float]:
    """ns per float32: our whole-block decoding, and pymodbus's per-value conversion."""
    from pymodbus.client import AsyncModbusTcpClient

    plan = plan_modbus(_points())
    block = list(struct.unpack(f">{REGISTERS}H", struct.pack(f">{FIELDS}f", *range(FIELDS))))
    from pue_monitor.collectors.modbus_block import layout_for, unpack_groups

    layout = layout_for(plan[0])
    start = time.process_time()
    for _ in range(rounds):
        unpack_groups(layout, block, REGISTERS)
    ours_ns = (time.process_time() - start) / (rounds * FIELDS) * 1e9
    convert = AsyncModbusTcpClient.convert_from_registers
    float32 = AsyncModbusTcpClient.DATATYPE.FLOAT32
    start = time.process_time()
    for _ in range(rounds // 10):
        for i in range(FIELDS):
            convert(block[2 * i:2 * i + 2], float32)
    theirs_ns = (time.process_time() - start) / (rounds // 10 * FIELDS) * 1e9
    return ours_ns, theirs_ns


def row(name: str, conns: int, cpu: float, wall: float, reads: int) -> str:
    return (f"| {name} | {conns} | {reads / cpu:,.0f} | {cpu / reads * 1e6:.1f} | "
            f"{reads / wall:,.0f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=20000, help="reads per scenario")
    args = parser.parse_args()
    server, port = start_server()
    lines = ["| client | connections | reads/s per core (CPU) | CPU µs per read | "
             "reads/s (wall) |", "|---|---|---|---|---|"]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            binary = build_libmodbus(Path(tmp))
            for conns in (1, 64):
                store = Store.open(Path(tmp) / f"store{conns}")
                lines.append(row("ours, decode+store", conns,
                                 *asyncio.run(ours(port, args.reads, conns, True, store))))
                lines.append(row("ours, read only", conns,
                                 *asyncio.run(ours(port, args.reads, conns, False, None))))
                lines.append(row("pymodbus client", conns,
                                 *asyncio.run(pymodbus_client(port, args.reads, conns))))
                if binary is not None:
                    lines.append(row("libmodbus (C)", conns,
                                     *libmodbus(binary, port, args.reads, conns)))
                else:
                    lines.append(f"| libmodbus (C) | {conns} | not built: install "
                                 "libmodbus-dev and a C compiler | | |")
    finally:
        server.terminate()
        server.join(5)
    ours_ns, theirs_ns = decode_only(20000)
    print("\n".join(lines))
    print(f"\ndecode only, ns per float32: whole block with struct {ours_ns:.0f}, "
          f"pymodbus convert_from_registers per value {theirs_ns:.0f}")
    print(f"({os.cpu_count()} CPUs; {args.reads} reads of {REGISTERS} registers per scenario)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A UDP socket's receive buffer: sized for the answers that may arrive at once, read back
(the kernel caps it at net.core.rmem_max), and the datagrams the kernel dropped on it.

Every SNMP answer of one process lands on one socket; when more arrive than the buffer
holds, the kernel drops them silently (`RcvbufErrors` in /proc/net/snmp) and the polls
time out. The in-flight limit bounds how many answers can be pending; the buffer must
hold that many.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

log = logging.getLogger(__name__)

# Buffer charged per pending answer: an SNMP answer fits one datagram (<= 1,500 bytes on
# Ethernet) but the kernel counts the whole socket buffer it sits in, about 2.3 KiB for a
# full-size datagram on loopback; 4 KiB leaves room for both.
BYTES_PER_ANSWER = 4096
# Linux lists its UDP sockets here, one line each with the inode and a "drops" column.
_PROC_UDP = (Path("/proc/net/udp"), Path("/proc/net/udp6"))


def wanted_bytes(answers_in_flight: int) -> int:
    return answers_in_flight * BYTES_PER_ANSWER


def size_receive_buffer(sock: socket.socket, want: int) -> int:
    """Ask for ``want`` bytes of receive buffer; return what the kernel granted (read back),
    with a warning naming the sysctl when that is less."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, want)
        granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    except OSError as exc:
        log.warning("cannot size the SNMP socket's receive buffer to %d bytes: %s", want, exc)
        return 0
    if granted < want:
        log.warning("the SNMP socket's receive buffer is %d bytes, not the %d asked for "
                    "(capped by the kernel: raise net.core.rmem_max, or lower the in-flight "
                    "limit collection.max_in_flight); answers beyond it are dropped",
                    granted, want)
    return granted


def socket_drops(sockets: list[socket.socket]) -> int | None:
    """Datagrams the kernel dropped on these sockets since they opened, or None where the
    platform does not say (no /proc/net/udp)."""
    inodes = set()
    for sock in sockets:
        try:
            inodes.add(os.fstat(sock.fileno()).st_ino)
        except OSError:  # closed meanwhile
            continue
    if not inodes:
        return None
    total, seen = 0, False
    for table in _PROC_UDP:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
            if len(fields) >= 13 and fields[9].isdigit() and int(fields[9]) in inodes:
                total += int(fields[12])
                seen = True
    return total if seen else None

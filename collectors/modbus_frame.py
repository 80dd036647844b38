"""Modbus frames for the read functions (1-4): building requests, checking answers (pure).

MBAP (Modbus TCP) and RTU (serial, and RTU over TCP through gateways) carry the same PDU:
function code, then the data. References: Modbus Application Protocol V1.1b3 (PDU, 6.1-6.4,
exceptions 7), Modbus Messaging on TCP/IP V1.0b (MBAP 3.1.3), Modbus over Serial Line
V1.02 (RTU frame and CRC, 2.5.1).
"""

from __future__ import annotations

import struct

from pue_monitor.config.datatypes import MAX_RTU_FRAME, MAX_TCP_ADU, READ_FUNCTIONS, \
    REGISTER_ADDRESSES, REGISTER_FUNCTIONS, max_read_count

EXCEPTION_FLAG = 0x80
MBAP = struct.Struct(">HHHB")  # transaction id, protocol id (0), length, unit id
MBAP_SIZE = MBAP.size
MODBUS_PROTOCOL_ID = 0
CRC_SIZE = 2
RTU_HEADER_SIZE = 3  # unit, function, byte count (or exception code)
RTU_EXCEPTION_SIZE = 5  # unit, function | 0x80, code, CRC
_READ = struct.Struct(">BHH")


class FrameError(ValueError):
    """An answer that does not fit the request: the byte stream can no longer be trusted."""


class ExceptionAnswer(Exception):
    """The device answered with a Modbus exception code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """The Modbus RTU CRC (polynomial 0xA001 reflected, initial 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


def read_pdu(function: int, address: int, count: int) -> bytes:
    """The request PDU for reading ``count`` registers (FC 3/4) or bits (FC 1/2).

    The only request PDU the collectors can build: any other function code (a write, a
    diagnostic) is refused here, so the monitor stays read-only to every device.
    """
    if type(function) is not int or function not in READ_FUNCTIONS:  # True == 1, 3.0 == 3
        raise ValueError(f"function {function!r} is not a read function "
                         f"({', '.join(map(str, sorted(READ_FUNCTIONS)))}): refused")
    limit = max_read_count(function)
    if not 1 <= count <= limit:
        raise ValueError(f"count must be 1..{limit} for function {function}, got {count}")
    if address < 0 or address + count > REGISTER_ADDRESSES:
        raise ValueError(f"address {address} + {count} is outside 0..{REGISTER_ADDRESSES - 1}")
    return _READ.pack(function, address, count)


def mbap_frame(transaction: int, unit: int, pdu: bytes) -> bytes:
    return MBAP.pack(transaction, MODBUS_PROTOCOL_ID, len(pdu) + 1, unit) + pdu


def parse_mbap_header(header: bytes) -> tuple[int, int, int]:
    """(transaction id, unit id, PDU length) of an MBAP header.

    :raises FrameError: a protocol id other than 0 or an impossible length: the
        stream is out of step and the connection must be reopened.
    """
    transaction, protocol, length, unit = MBAP.unpack(header)
    if protocol != MODBUS_PROTOCOL_ID or not 2 <= length <= MAX_TCP_ADU - MBAP_SIZE + 1:
        raise FrameError(f"bad MBAP header: protocol {protocol}, length {length}")
    return transaction, unit, length - 1


def rtu_frame(unit: int, pdu: bytes) -> bytes:
    body = bytes((unit,)) + pdu
    return body + crc16(body).to_bytes(CRC_SIZE, "little")


def rtu_answer_size(header: bytes) -> int:
    """Total size of an RTU answer to a read, from its first three bytes."""
    function, third = header[1], header[2]
    if function & EXCEPTION_FLAG:
        return RTU_EXCEPTION_SIZE
    size = RTU_HEADER_SIZE + third + CRC_SIZE
    if size > MAX_RTU_FRAME:
        raise FrameError(f"RTU answer of {size} bytes exceeds {MAX_RTU_FRAME}")
    return size


def check_rtu_crc(frame: bytes) -> None:
    if crc16(frame[:-CRC_SIZE]) != int.from_bytes(frame[-CRC_SIZE:], "little"):
        raise FrameError("RTU CRC mismatch")


def answer_values(function: int, count: int, pdu: bytes) -> list[int]:
    """Registers (FC 3/4) or bits as 0/1 (FC 1/2) from an answer PDU.

    :raises ExceptionAnswer: the device answered with an exception.
    :raises FrameError: the answer is for another function or has the wrong length.
    """
    if not pdu:
        raise FrameError("empty answer")
    if pdu[0] == function | EXCEPTION_FLAG and len(pdu) >= 2:
        raise ExceptionAnswer(pdu[1])
    if pdu[0] != function or len(pdu) < 2:
        raise FrameError(f"answer is for function {pdu[0]}, asked {function}")
    size = pdu[1]
    data = pdu[2:]
    if function in REGISTER_FUNCTIONS:
        if size != 2 * count or len(data) != size:
            raise FrameError(f"answer has {len(data)} bytes (byte count {size}), "
                             f"expected {2 * count}")
        return list(struct.unpack(f">{count}H", data))
    if size != (count + 7) // 8 or len(data) != size:
        raise FrameError(f"answer has {len(data)} bytes of bits, expected {(count + 7) // 8}")
    return [(data[i // 8] >> (i % 8)) & 1 for i in range(count)]


def exception_answer_pdu(function: int, code: int) -> bytes:
    """An exception answer PDU (for tests and fakes)."""
    return bytes((function | EXCEPTION_FLAG, code))


def registers_answer_pdu(function: int, words: list[int]) -> bytes:
    """A register read answer PDU (for tests and fakes)."""
    return bytes((function, 2 * len(words))) + struct.pack(f">{len(words)}H", *words)

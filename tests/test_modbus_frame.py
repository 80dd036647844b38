"""Modbus frames, byte for byte, from the specifications' own examples and hand-made bytes."""

from __future__ import annotations

import pytest

from pue_monitor.collectors.modbus_frame import (
    ExceptionAnswer,
    FrameError,
    answer_values,
    check_rtu_crc,
    crc16,
    mbap_frame,
    parse_mbap_header,
    read_pdu,
    rtu_answer_size,
    rtu_frame,
)
from pue_monitor.config.datatypes import rtu_frame_gap_s

# (name, unit, function, address, count, frame on the wire)
RTU_REQUESTS = [
    # Modbus over Serial Line V1.02 / Application Protocol 6.3 example: slave 0x11,
    # read holding registers 0x006B..0x006D, CRC 0x8776 sent low byte first.
    ("spec example fc3", 0x11, 3, 0x006B, 3, "11 03 00 6B 00 03 76 87"),
    # The often-quoted "read ten holding registers from slave 1".
    ("ten registers", 0x01, 3, 0x0000, 10, "01 03 00 00 00 0A C5 CD"),
]


@pytest.mark.parametrize(("name", "unit", "function", "address", "count", "wire"),
                         RTU_REQUESTS, ids=[r[0] for r in RTU_REQUESTS])
def test_rtu_request_bytes(name, unit, function, address, count, wire):
    frame = rtu_frame(unit, read_pdu(function, address, count))
    assert frame == bytes.fromhex(wire)
    check_rtu_crc(frame)


def test_mbap_request_bytes():
    # Transaction 0x0001, protocol 0, length 6 (unit + 5 PDU bytes), unit 0x11,
    # fc4 at 0x0034 for 2 registers (Eastron total power).
    frame = mbap_frame(1, 0x11, read_pdu(4, 0x0034, 2))
    assert frame == bytes.fromhex("0001 0000 0006 11 04 0034 0002")


@pytest.mark.parametrize(("header", "expected"), [
    ("0007 0000 0007 01", (7, 1, 6)),
    ("FFFF 0000 0002 F7", (0xFFFF, 0xF7, 1)),
])
def test_mbap_header(header, expected):
    assert parse_mbap_header(bytes.fromhex(header)) == expected


@pytest.mark.parametrize("header", [
    "0001 0001 0007 01",  # protocol id 1: not Modbus, or out of step
    "0001 0000 0001 01",  # length 1: unit id only, no function code
    "0001 0000 4142 01",  # "AB" as length: text in the stream
])
def test_mbap_header_out_of_step(header):
    with pytest.raises(FrameError):
        parse_mbap_header(bytes.fromhex(header))


# (name, function, count, answer PDU, registers or bits)
ANSWERS = [
    ("spec fc3 answer", 3, 3, "03 06 022B 0000 0064", [0x022B, 0, 0x64]),
    ("fc4 float", 4, 2, "04 04 4366 0000", [0x4366, 0]),
    # Application Protocol 6.1 example: coils 20..38, status 0xCD 0x6B 0x05, LSB first.
    ("spec fc1 coils", 1, 19, "01 03 CD 6B 05",
     [1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1]),
    ("fc2 inputs", 2, 3, "02 01 05", [1, 0, 1]),
]


@pytest.mark.parametrize(("name", "function", "count", "pdu", "values"), ANSWERS,
                         ids=[a[0] for a in ANSWERS])
def test_answer_values(name, function, count, pdu, values):
    assert answer_values(function, count, bytes.fromhex(pdu)) == values


@pytest.mark.parametrize(("function", "count", "pdu", "error"), [
    (3, 2, "83 02", ExceptionAnswer),  # illegal data address
    (4, 2, "84 06", ExceptionAnswer),  # busy
    (3, 2, "03 02 0001", FrameError),  # one register where two were asked
    (3, 2, "03 04 0001", FrameError),  # byte count says 4, two bytes came
    (3, 2, "04 04 0001 0002", FrameError),  # the answer to another function
    (1, 9, "01 01 FF", FrameError),  # nine bits need two bytes
])
def test_bad_answers(function, count, pdu, error):
    with pytest.raises(error):
        answer_values(function, count, bytes.fromhex(pdu))


def test_exception_code_is_kept():
    with pytest.raises(ExceptionAnswer) as caught:
        answer_values(3, 1, bytes.fromhex("83 0B"))
    assert caught.value.code == 11


@pytest.mark.parametrize(("header", "size"), [
    ("11 03 06", 11),  # 3 header + 6 data + 2 CRC
    ("11 83 02", 5),  # exception
    ("01 01 03", 8),
])
def test_rtu_answer_size(header, size):
    assert rtu_answer_size(bytes.fromhex(header)) == size


def test_rtu_crc_mismatch():
    with pytest.raises(FrameError):
        check_rtu_crc(bytes.fromhex("11 03 00 6B 00 03 76 88"))
    assert crc16(b"") == 0xFFFF


@pytest.mark.parametrize(("function", "address", "count"), [
    (3, 0, 0), (3, 0, 126), (1, 0, 2001), (3, 65535, 2), (3, -1, 1)])
def test_requests_beyond_the_protocol_are_refused(function, address, count):
    with pytest.raises(ValueError):
        read_pdu(function, address, count)


@pytest.mark.parametrize(("baud", "gap_s"), [
    (9600, 3.5 * 11 / 9600),  # ~4.0 ms
    (19200, 3.5 * 11 / 19200),
    (38400, 0.00175),  # fixed above 19200 baud
])
def test_rtu_frame_gap(baud, gap_s):
    assert rtu_frame_gap_s(baud) == pytest.approx(gap_s)

"""Modbus data types and byte orders: one legality table shared by validator and codec."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

# Protocol limits (Modbus Application Protocol Specification V1.1b3, 6.3 / 6.4).
MAX_READ_REGISTERS = 125
MAX_READ_BITS = 2000
MAX_UNIT_ID = 247
REGISTER_BITS = 16
# Addresses of one register (or bit) space: 0..65535 (the spec's data model).
REGISTER_ADDRESSES = 0x10000
# Modbus TCP servers listen here (IANA-registered port; Modbus Messaging on TCP/IP V1.0b).
MODBUS_TCP_PORT = 502
# Largest Modbus RTU frame (spec 6.1 / serial line guide 2.5.1): 256 bytes; ADU over TCP: 260.
MAX_RTU_FRAME = 256
MAX_TCP_ADU = 260

# SunSpec scale factors (SunSpec Information Model, "sunssf"): value x 10^SF, an int16 in
# -10..10; 0x8000 means "not implemented", so the value it scales is missing too.
SUNSSF_MIN, SUNSSF_MAX = -10, 10
SUNSSF_NOT_IMPLEMENTED = -0x8000
# SunSpec discovery (SunSpec Information Model Specification, "Device Modbus map"): the
# two registers "SunS" at one of these base addresses (in the order tried), then models of
# (ID, length L, L registers) one after another, ended by the ID 0xFFFF.
SUNSPEC_MARKER = (0x5375, 0x6E53)  # "SunS"
SUNSPEC_BASES = (40000, 50000, 0)
SUNSPEC_END_ID = 0xFFFF
SUNSPEC_COMMON_MODEL_ID = 1
# A chain longer than this many models is taken as a device that never ends it.
SUNSPEC_MAX_MODELS = 64

# Modbus RTU timing (Modbus over Serial Line V1.02, 2.5.1.1): a character is 11 bits; frames
# are separated by 3.5 characters of silence, fixed at 1.75 ms above 19200 baud.
RTU_CHAR_BITS = 11
RTU_SILENT_CHARS = 3.5
RTU_FIXED_GAP_S = 0.00175
RTU_FIXED_GAP_ABOVE_BAUD = 19200


@dataclass(frozen=True)
class DataType:
    """How many registers a type spans and how struct reads it (big-endian form)."""

    registers: int
    struct_code: str
    is_float: bool = False
    signed: bool = False


DATA_TYPES: dict[str, DataType] = {
    "int16": DataType(1, "h", signed=True),
    "uint16": DataType(1, "H"),
    "int32": DataType(2, "i", signed=True),
    "uint32": DataType(2, "I"),
    "int64": DataType(4, "q", signed=True),
    "uint64": DataType(4, "Q"),
    "float32": DataType(2, "f", is_float=True, signed=True),
    "float64": DataType(4, "d", is_float=True, signed=True),
    # A coil or discrete input (FC 1/2): one bit, handed over as a 0/1 "register".
    "bit": DataType(1, "H"),
}
BIT_TYPE = "bit"



class ByteOrder(NamedTuple):
    """Where a value's bytes land on the wire, relative to big-endian high word first.

    word_swap: the least significant register comes first; byte_swap: the two bytes
    inside each register are exchanged. Longer types extend the pattern.
    """

    word_swap: bool
    byte_swap: bool


# The one byte-order table: every legal order, named by where bytes A (most significant)
# .. D land on the wire. The validator, the codec and the block decoder all read it.
BYTE_ORDERS: dict[str, ByteOrder] = {
    "ABCD": ByteOrder(word_swap=False, byte_swap=False),  # big-endian (Modbus default)
    "CDAB": ByteOrder(word_swap=True, byte_swap=False),  # low word first ("word swapped")
    "BADC": ByteOrder(word_swap=False, byte_swap=True),  # bytes swapped inside each word
    "DCBA": ByteOrder(word_swap=True, byte_swap=True),  # little-endian
}

# Common aliases found in vendor manuals and other tools' configs.
BYTE_ORDER_ALIASES: dict[str, str] = {
    "BIG": "ABCD",
    "BE": "ABCD",
    "MSW-BE": "ABCD",
    "LITTLE": "DCBA",
    "LE": "DCBA",
    "LSW-LE": "DCBA",
    "MSW-LE": "BADC",
    "LSW-BE": "CDAB",
    "WORD_SWAP": "CDAB",
    "BYTE_SWAP": "BADC",
}

# Function codes by register kind.
FC_READ_COILS = 1
FC_READ_DISCRETE_INPUTS = 2
FC_READ_HOLDING = 3
FC_READ_INPUT = 4
READ_FUNCTIONS = frozenset({FC_READ_COILS, FC_READ_DISCRETE_INPUTS, FC_READ_HOLDING, FC_READ_INPUT})
REGISTER_FUNCTIONS = frozenset({FC_READ_HOLDING, FC_READ_INPUT})


def max_read_count(function: int) -> int:
    """The most registers (FC 3/4) or bits (FC 1/2) one read request may ask for."""
    return MAX_READ_REGISTERS if function in REGISTER_FUNCTIONS else MAX_READ_BITS


# Register numbering conventions a manual may print.
#   address:    the 0-based protocol (PDU) address
#   one_based:  register number = address + 1
#   modicon:    5-digit (or 6-digit) reference: 0xxxx coils, 1xxxx discrete inputs,
#               3xxxx input registers, 4xxxx holding registers, each 1-based
NUMBERINGS = ("address", "one_based", "modicon")
MODICON_PREFIX_FUNCTION = {0: FC_READ_COILS, 1: FC_READ_DISCRETE_INPUTS,
                           3: FC_READ_INPUT, 4: FC_READ_HOLDING}


def rtu_frame_gap_s(baud: int) -> float:
    """The silent interval that ends an RTU frame at ``baud`` (t3.5)."""
    if baud > RTU_FIXED_GAP_ABOVE_BAUD:
        return RTU_FIXED_GAP_S
    return RTU_SILENT_CHARS * RTU_CHAR_BITS / baud


# A float register's marker written as an integer of at least this much is its bit
# pattern (manuals print 0x7FC00000, 0xFF7FFFFF, 0xFFFFFFFF); a smaller integer, or one
# written with a decimal point (100000.0), is the value itself.
FLOAT_PATTERN_FROM = 1 << REGISTER_BITS


def sentinel_as_raw(sentinel: int | float, dtype: str) -> int | float:
    """A "not available" marker as the decoded raw value of ``dtype``, written as the
    manual prints it.

    Manuals print integer markers as bit patterns (0x8000, 0xFFFF, 0x7FFFFFFF): for a
    signed type a pattern with the sign bit set is the negative number it encodes; for an
    unsigned type a negative marker (-1) is the pattern of that negative number (0xFFFF);
    for a float type an integer marker from FLOAT_PATTERN_FROM up is the float its bits
    encode (0xFF7FFFFF: -3.4028235e38).
    """
    spec = DATA_TYPES[dtype]
    bits = spec.registers * REGISTER_BITS
    if spec.is_float:
        if (isinstance(sentinel, int) and not isinstance(sentinel, bool)
                and FLOAT_PATTERN_FROM <= sentinel < (1 << bits)):
            return float(struct.unpack(">" + spec.struct_code,
                                       sentinel.to_bytes(bits // 8, "big"))[0])
        return sentinel
    if not float(sentinel).is_integer():
        return sentinel
    sentinel = int(sentinel)
    if spec.signed and (1 << (bits - 1)) <= sentinel < (1 << bits):
        return sentinel - (1 << bits)
    if not spec.signed and -(1 << (bits - 1)) <= sentinel < 0:
        return sentinel + (1 << bits)
    return sentinel


def normalise_order(order: str) -> str | None:
    """Return the canonical ABCD-style name of a byte order, or None if unknown."""
    key = order.strip().upper()
    if key in BYTE_ORDERS:
        return key
    return BYTE_ORDER_ALIASES.get(key)


def resolve_register(number: int, numbering: str) -> tuple[int, int | None]:
    """Turn a register number as printed in a manual into (address, implied function).

    :raises ValueError: when the number does not fit the convention.
    """
    if numbering == "address":
        if not 0 <= number < REGISTER_ADDRESSES:
            raise ValueError(f"address {number} outside 0..{REGISTER_ADDRESSES - 1}")
        return number, None
    if numbering == "one_based":
        if not 1 <= number <= REGISTER_ADDRESSES:
            raise ValueError(f"register {number} outside 1..{REGISTER_ADDRESSES}")
        return number - 1, None
    if numbering == "modicon":
        if 1 <= number <= 49999 or 100001 <= number <= 465536:
            width = 10000 if number <= 49999 else 100000
            prefix, offset = divmod(number, width)
            if prefix in MODICON_PREFIX_FUNCTION and offset >= 1:
                return offset - 1, MODICON_PREFIX_FUNCTION[prefix]
        raise ValueError(f"register {number} is not a 0xxxx/1xxxx/3xxxx/4xxxx reference")
    raise ValueError(f"unknown numbering {numbering!r}")

"""Poll failures, sorted by kind so they can be counted apart."""

from __future__ import annotations

from pue_monitor.store.model import ErrorKind


class PollError(Exception):
    """A poll failed; ``kind`` says how."""

    kind: ErrorKind = ErrorKind.CONNECTION


class PollTimeout(PollError):
    kind = ErrorKind.TIMEOUT


class PollConnectionError(PollError):
    kind = ErrorKind.CONNECTION


class PollAuthError(PollError):
    kind = ErrorKind.AUTH


class PollDecodeError(PollError):
    kind = ErrorKind.DECODE


class DeviceError(PollError):
    """The device answered with an error (SNMP errorStatus, Modbus exception code)."""

    kind = ErrorKind.DEVICE

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code

"""The fast SNMP engine behind the seam: gufo-snmp (BER codec and socket I/O in Rust) for
v2c and v3, the same two calls and PollError kinds as the pysnmp reference.

gufo-snmp reads no error status (an agent's refusal answers echo the request with NULL
values, which it drops), so an answer that holds nothing is ambiguous: the object may be
absent, or the agent may have refused the request. Such an answer is asked once more
through the reference client, which says which; a request found empty for a good reason
is remembered and not asked twice. It sends no v3 context name and reads no SNMPv1 error
index (see config.model.fast_engine_gap): those devices stay on pysnmp.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from gufo.snmp import (
    Aes128Key,
    Aes192Key,
    Aes256Key,
    DesKey,
    KeyExpansion,
    Md5Key,
    Sha1Key,
    Sha224Key,
    Sha256Key,
    Sha384Key,
    Sha512Key,
    SnmpAuthError,
    SnmpDecodeError,
    SnmpError,
    SnmpVersion,
    User,
)
from gufo.snmp.aio import SnmpSession

from pue_monitor.collectors.ber_check import MAX_DATAGRAM, ber_problem
from pue_monitor.collectors.errors import (
    PollAuthError,
    PollConnectionError,
    PollDecodeError,
    PollTimeout,
)
from pue_monitor.collectors.snmp_client import MAX_BULK_VARBINDS, MAX_WALK_VARBINDS, PysnmpClient
from pue_monitor.collectors.snmp_decode import MISSING
from pue_monitor.config.model import fast_engine_gap

T = TypeVar("T")

AUTH_KEYS = {"md5": Md5Key, "sha": Sha1Key, "sha224": Sha224Key, "sha256": Sha256Key,
             "sha384": Sha384Key, "sha512": Sha512Key}
# Same names as snmp_usm.PRIV: plain aes192/aes256 extend short keys as net-snmp does
# (Blumenthal), the "c" ones as Cisco does (Reeder).
PRIV_KEYS = {"des": (DesKey, KeyExpansion.Blumenthal),
             "aes": (Aes128Key, KeyExpansion.Blumenthal),
             "aes128": (Aes128Key, KeyExpansion.Blumenthal),
             "aes192": (Aes192Key, KeyExpansion.Blumenthal),
             "aes256": (Aes256Key, KeyExpansion.Blumenthal),
             "aes192c": (Aes192Key, KeyExpansion.Cisco),
             "aes256c": (Aes256Key, KeyExpansion.Cisco)}
VERSIONS = {"2c": SnmpVersion.v2c, "3": SnmpVersion.v3}
# RFC 3414 3.2 step 7: an agent refuses a v3 message whose engine time is more than 150 s
# off. gufo-snmp sends the time of the last answer unchanged, so a session silent for
# half of that window learns the agent's time again before it asks.
USM_TIME_WINDOW_S = 150.0
RESYNC_AFTER_S = USM_TIME_WINDOW_S / 2
# Requests remembered as rightly empty (absent objects), per client.
MAX_CONFIRMED_EMPTY = 256
# gufo-snmp's Rust BER decoder panics on some malformed answers (an answer cut inside a
# header: "index out of bounds"); pyo3 raises that as this BaseException, which would end
# the polling task. It is an undecodable answer (found by tests/test_fuzz_snmp.py).
RUST_PANIC = "PanicException"
# Errors that mean the socket itself is gone (closed under a request). Any other error a
# read reports on a UDP socket came from an ICMP message (RFC 1122 4.1.3.3: port or host
# unreachable, ...) and is cleared by that read: the socket is fine.
SOCKET_GONE = frozenset({errno.EBADF, errno.ENOTSOCK})


def _to_python(value: object) -> object:
    """A gufo-snmp value as the reference gives it: int, str (or float for an Opaque
    float, which pysnmp leaves as raw bytes)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if value is None:
        return MISSING
    return value


def _oid_key(oid: str) -> tuple[int, ...]:
    return tuple(int(p) for p in oid.split("."))


def walk_groups(columns: Sequence[str]) -> list[tuple[str, tuple[str, ...]]]:
    """(walk root, wanted columns) per table: a lone column is walked by itself; several
    columns of one table entry are walked together from the entry, up to the last of them
    (gufo-snmp's GETBULK takes one OID, so this keeps one walk per table, not per column)."""
    by_entry: dict[str, list[str]] = {}
    for column in dict.fromkeys(columns):
        by_entry.setdefault(column.rpartition(".")[0], []).append(column)
    out = []
    for entry, wanted in by_entry.items():
        if len(wanted) == 1:
            out.append((wanted[0], tuple(wanted)))
        else:
            out.append((entry, tuple(sorted(wanted, key=_oid_key))))
    return out


NOT_MATCHED = "an answer that matches no request sent (another request id or community)"


class _Unmatched(PollDecodeError):
    """Answers came and gufo-snmp matched none of them to the request: retried like a
    timeout (a restarted v3 agent's reports look like this until the session is made
    again), a decode error if it persists."""


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _CheckedSession(SnmpSession):
    """A session that looks at each answer before gufo-snmp decodes it.

    A datagram that is not well-formed BER is dropped here (gufo-snmp panics on some,
    see collectors.ber_check); one gufo-snmp reads and discards (its request id or
    community is not the request's) is noted. ``odd`` keeps the last such problem, so a
    request that then times out is a decode error, not a silent device. Replaces
    gufo-snmp 0.13's SnmpSession._recv, through which every answer is read (the
    dependency is pinned below 0.14; tests/test_snmp_bad_answers.py checks it)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        # A second handle on the session's socket, to peek at the next datagram.
        self._peek = socket.fromfd(self._fd, socket.AF_INET, socket.SOCK_DGRAM)
        self.odd: str | None = None
        self._waiter: asyncio.Future | None = None  # the request waiting for an answer
        self._watching: asyncio.AbstractEventLoop | None = None  # whose loop watches _fd
        self._closed = False

    async def _recv(self, receiver: Callable[[], T]) -> T:
        # gufo-snmp's own loop, cheaper: the socket stays watched between requests
        # (_readable), where gufo-snmp adds and removes a reader (two epoll_ctl calls)
        # per answer, and one timer for the whole request stands for wait_for (which
        # hands the answer over through a second future, one more event-loop round).
        # The deadline holds across unusable datagrams: they cannot keep a request
        # waiting past its timeout.
        if self._closed:  # a walker still holding a session that was made again
            raise OSError(errno.EBADF, "SNMP session closed")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        while True:
            waiter = self._waiter = loop.create_future()
            if self._watching is not loop:
                self._watch(loop)
            timer = loop.call_at(deadline, _expire, waiter)
            try:
                data = await waiter  # the next datagram, still in the socket
            finally:
                timer.cancel()
                self._waiter = None
            problem = ber_problem(data)
            if problem is not None:
                self._peek.recv(MAX_DATAGRAM, socket.MSG_DONTWAIT)  # drop it
                self.odd = f"undecodable answer: {problem}"
                continue  # and wait for the next datagram
            try:
                return receiver()
            except BlockingIOError:  # gufo-snmp read it and found it was not the answer
                self.odd = NOT_MATCHED

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        self._unwatch()
        loop.add_reader(self._fd, self._readable)
        self._watching = loop

    def _unwatch(self) -> None:
        loop, self._watching = self._watching, None
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self._fd)

    def _readable(self) -> None:
        """The socket is readable: the next datagram, peeked, to the waiting request."""
        try:
            data = self._peek.recv(MAX_DATAGRAM, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return  # read meanwhile: the loop had queued this call before the request read it
        except OSError as exc:
            if exc.errno not in SOCKET_GONE:
                # Reported by ICMP (port unreachable, ...) and cleared by this read: the
                # request waits on, and times out as for a silent device.
                return
            # The socket itself failed (closed under us): nothing more will be read from
            # it, so it is no longer watched (the loop would call this at every turn), and
            # the waiting request fails now.
            self._unwatch()
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_exception(exc)
            return
        waiter = self._waiter
        if waiter is None:
            # A datagram nobody waits for (an answer after its request timed out): stop
            # watching until the next request reads it, or the level-triggered loop
            # would call this again at every turn.
            self._unwatch()
        elif not waiter.done():
            waiter.set_result(data)

    def close(self) -> None:
        self._closed = True
        self._unwatch()  # the loop would keep the session, and its socket, alive
        self._peek.close()


class GufoClient:
    """SNMP GET and table walks through gufo-snmp (v2c and v3, no context name)."""

    def __init__(self, host: str, port: int, community: str = "public", version: str = "2c",
                 timeout_s: float = 2.0, retries: int = 1, *, user: str | None = None,
                 auth_protocol: str | None = None, auth_key: str | None = None,
                 priv_protocol: str | None = None, priv_key: str | None = None,
                 context: str = "") -> None:
        reason = fast_engine_gap(version, context)
        if reason is not None:
            raise ValueError(reason)
        self.host, self.port, self.version = host, port, version
        self.timeout_s, self.retries = timeout_s, retries
        self.requests = 0  # requests sent (a retry counts), for benchmarks and metrics
        self._community = community
        self._user: User | None = None
        if version == "3":
            priv_class, expansion = PRIV_KEYS[priv_protocol] if priv_protocol else (None, None)
            self._user = User(
                user or "",
                auth_key=AUTH_KEYS[auth_protocol](auth_key.encode()) if auth_protocol
                and auth_key else None,
                priv_key=priv_class(priv_key.encode()) if priv_class and priv_key else None,
                key_expansion=expansion or KeyExpansion.Blumenthal)
        self._reference_args = dict(community=community, version=version, timeout_s=timeout_s,
                                    retries=retries, user=user, auth_protocol=auth_protocol,
                                    auth_key=auth_key, priv_protocol=priv_protocol,
                                    priv_key=priv_key)
        self._reference: PysnmpClient | None = None
        self._session: SnmpSession | None = None
        self._last_answer = 0.0
        self._confirmed_empty: set[tuple[str, ...]] = set()

    # -- transport ----------------------------------------------------------------------

    async def _ensure(self) -> SnmpSession:
        if self._session is None:
            try:
                self._session = _CheckedSession(
                    self.host, self.port, community=self._community, user=self._user,
                    version=VERSIONS[self.version], timeout=self.timeout_s)
            except OSError as exc:
                raise PollConnectionError(str(exc)) from exc
            self._last_answer = 0.0
        session = self._session
        if self._user is not None and time.monotonic() - self._last_answer > RESYNC_AFTER_S:
            # Engine id discovery on the first call; the agent's boots and time after that.
            await self._once(session.refresh)
        return session

    async def _call(self, make: Callable[[SnmpSession], Awaitable[T]]) -> T:
        """One request with this client's retries, as a PollError if it fails.

        v3: an agent that restarted (new engine boots and time, or a new engine id) answers
        a session that knew it before with a report gufo-snmp cannot match, i.e. not at
        all (a timeout, or an answer it discards: _Unmatched), or with an auth report. Either way the session is made again with a new
        discovery before the next attempt, and only a second report is an auth failure."""
        attempts, attempt, reported = self.retries + 1, 0, False
        while True:
            try:
                # A v2c session once open is simply used (_ensure would return it).
                session = self._session if self._session is not None and \
                    self._user is None else await self._ensure()
                return await self._once(lambda: make(session))
            except (PollTimeout, _Unmatched):
                if self._user is not None:
                    self._drop_session()
                attempt += 1
                if attempt >= attempts:
                    raise
            except PollAuthError:
                if self._user is None or reported:
                    raise
                reported = True
                self._drop_session()

    async def _once(self, make: Callable[[], Awaitable[T]]) -> T:
        """One request; gufo-snmp's errors as PollErrors. An answer that could not be
        decoded or matched makes a timeout a decode error: the device answers, wrongly."""
        self.requests += 1
        session = self._session
        if session is not None:
            session.odd = None
        try:
            result = await make()
        except TimeoutError:
            if session is not None and session.odd is not None:
                error = _Unmatched if session.odd == NOT_MATCHED else PollDecodeError
                raise error(f"{session.odd}; no valid answer within "
                            f"{self.timeout_s:g} s") from None
            raise PollTimeout(f"No SNMP response received before timeout "
                              f"({self.timeout_s:g} s)") from None
        except SnmpAuthError as exc:
            raise PollAuthError(f"SNMPv3 security: {exc}") from None
        except SnmpDecodeError as exc:
            raise PollDecodeError(f"undecodable answer: {exc}") from None
        except SnmpError as exc:
            raise PollConnectionError(str(exc) or type(exc).__name__) from None
        except OSError as exc:
            if exc.errno in SOCKET_GONE:
                self._drop_session()  # the next request opens a new one
            raise PollConnectionError(str(exc) or type(exc).__name__) from exc
        except BaseException as exc:
            # gufo-snmp's Rust core panicking on an answer it cannot parse: pyo3's
            # PanicException derives from BaseException, not Exception.
            if type(exc).__name__ != RUST_PANIC:
                raise
            self._drop_session()
            raise PollDecodeError(f"undecodable answer (decoder failed: {exc})") from None
        self._last_answer = time.monotonic()
        return result

    def _reference_client(self) -> PysnmpClient:
        if self._reference is None:
            self._reference = PysnmpClient(self.host, self.port, **self._reference_args)
        return self._reference

    async def _empty(self, key: tuple[str, ...], ask: Callable[[PysnmpClient], Awaitable[
            dict[str, object]]]) -> dict[str, object] | None:
        """An empty answer: the reference's verdict (its answer, or its DeviceError), or
        None when this request was already found rightly empty."""
        if key in self._confirmed_empty:
            return None
        answer = await ask(self._reference_client())  # raises DeviceError if refused
        if not answer or all(v is MISSING for v in answer.values()):
            if len(self._confirmed_empty) < MAX_CONFIRMED_EMPTY:
                self._confirmed_empty.add(key)
        return answer

    # -- the interface ------------------------------------------------------------------

    async def get(self, oids: Sequence[str]) -> dict[str, object]:
        wanted = list(oids)
        got = await self._call(lambda session: session.get_many(wanted))
        if not got:
            key = ("get", *wanted)
            verdict = await self._empty(key, lambda ref: ref.get(wanted))
            if verdict is not None:
                return verdict
        # An OID the answer lacks is MISSING, as _to_python(None) is; integers, the
        # usual values, are kept as they are.
        return {oid: value if type(value := got.get(oid)) is int else _to_python(value)
                for oid in wanted}

    async def walk(self, columns: Sequence[str], max_repetitions: int = 25) -> dict[str, object]:
        """Every object under each column: one GETBULK walk per table (see walk_groups)."""
        out: dict[str, object] = {}
        for root, wanted in walk_groups(columns):
            rows = await self._walk_one(root, wanted, max_repetitions,
                                        MAX_WALK_VARBINDS - len(out))
            if not rows:
                key = ("walk", *wanted)
                verdict = await self._empty(
                    key, lambda ref, w=wanted: ref.walk(list(w), max_repetitions))
                rows = verdict or {}
            out.update(rows)
        return out

    async def _walk_one(self, root: str, wanted: tuple[str, ...], max_repetitions: int,
                        budget: int) -> dict[str, object]:
        entry_walk = root not in wanted
        start = len(root) + 1  # where a column's number begins in an OID under the root
        keep = {column[start:] for column in wanted}  # wanted column numbers, as text
        last = int(wanted[-1][start:]) if entry_walk else 0
        # As large an answer as the reference asks for these columns side by side.
        repetitions = (max(1, min(max_repetitions * len(wanted), MAX_BULK_VARBINDS))
                       if entry_walk else max_repetitions)
        session = await self._ensure()
        walker = session.getbulk(root, repetitions).__aiter__()
        out: dict[str, object] = {}
        seen = restarts = 0

        def step(current: SnmpSession) -> Awaitable[tuple[str, object]]:
            nonlocal session, walker, seen, restarts
            if current is not session:
                # The session was made again (v3: after a timeout, an unmatched answer or
                # an auth report) and the walker's is closed: the walk starts over on
                # the new one, as many times in one walk as the client retries.
                if restarts >= self.retries:
                    raise PollTimeout(f"walk of {root} started over {restarts} time(s) on "
                                      f"a new session and still had no answer")
                restarts += 1
                session, walker, seen = current, current.getbulk(root, repetitions
                                                                 ).__aiter__(), 0
                out.clear()
            return walker.__anext__()

        while seen < budget:
            try:
                first = await self._call(step)  # one GETBULK
            except StopAsyncIteration:
                break
            # The rest of that answer, taken at once (gufo-snmp 0.13 hands its rows out one
            # per await); None marks where the answer left the root.
            rows = [first]
            buffered = getattr(walker, "_buffer", None)
            if isinstance(buffered, list):
                rows += buffered
                buffered.clear()
            for row in rows:
                seen += 1
                if row is None or seen > budget:
                    return out
                oid, value = row
                if oid in out:
                    return out  # the agent went round again: stop rather than loop
                if entry_walk:
                    column = oid[start:].partition(".")[0]
                    if column not in keep:
                        if int(column) > last:
                            return out  # past the last wanted column of this entry
                        continue
                out[oid] = _to_python(value)
        return out

    @property
    def receive_socket(self) -> socket.socket | None:
        """A handle on this client's socket while it is open (for its kernel drop count)."""
        return None if self._session is None else self._session._peek

    def _drop_session(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def close(self) -> None:
        if self._reference is not None:
            self._reference.close()
        # gufo-snmp closes its socket when the session is collected.
        self._drop_session()
        self._reference = None

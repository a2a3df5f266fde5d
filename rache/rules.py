"""Recurrence rules as values: :class:`Every` and :class:`Cron`, checked when built.

A rule says when a job recurs and holds its options (``misfire``, ``grace``, ``jitter``,
``overlap``, ``run_timeout``).
Values are immutable, hashable and compare by what they mean (``Every(60) ==
Every(timedelta(minutes=1))``). Bad input raises when the value is built, naming the
argument: a wrong type is a ``TypeError``, a value out of bounds a ``ValueError``.

Placed for one job (:meth:`Rule.place`: its jitter becomes a fixed shift derived from the
id), a rule is what Redis stores, a :class:`Placed`, written by one encoder
(:meth:`Placed.encode_tail`) and read back by one decoder (:func:`decode`), in the strings of
``rache/lua/README.md`` ("Recurrence rules"). A rule read back is the same type of value:
its jitter is in its placement (the start or the offset), so it reads as ``jitter=0``.

An option added later (an end date, a count) is written in this module
only: a field of :class:`Rule` checked in ``Rule._set_options`` and shown by its repr and
``details``, a keyword of both constructors, and its place in the encoder and the decoder;
no signature of the schedulers changes. Pure: no I/O. croniter (the ``cron`` extra) and the
tz database are read only to check a cron rule.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Tuple, Type, TypeVar, Union

from . import wire
from .constants import (
    DEFAULT_GRACE_MS,
    DEFAULT_MISFIRE,
    DEFAULT_OVERLAP,
    MAX_MS,
    MAX_RULE_MS,
    MIN_RUN_TIMEOUT,
    MISFIRE_POLICIES,
    OVERLAP_POLICIES,
)
from .durations import millis, ms_to_seconds
from .errors import MissingExtra

#: A duration: seconds as an int or a float, or a ``datetime.timedelta``.
Duration = Any

_R = TypeVar("_R", bound="Rule")


@dataclass(frozen=True, init=False, repr=False)
class Rule:
    """What every recurrence rule holds beside its times: the base of Every and Cron.

    ``misfire``: what becomes of an occurrence missed (no poller claimed it in time):
    ``coalesce`` (the default) hands out the latest one missed, once; ``skip`` drops it
    when it is more than ``grace`` seconds late. ``jitter`` (seconds) shifts every
    occurrence of a job by a fixed amount below it, derived from the job's id, so that jobs
    on the same rule spread out.

    ``overlap``: what becomes of an occurrence that falls due while the job's newest run is
    still ``running`` (handed out, no outcome yet, its ``run_timeout`` not passed), decided
    inside the script that hands it out: ``allow`` (the default) hands it out all the same;
    ``skip`` hands it out not, recording a ``skipped`` run (error ``'overlap'``);
    ``buffer_one`` holds it until that run finishes (``finish_run``) or its run timeout
    passes, then hands out the latest occurrence due (later ones coalesce into it: at most
    one waits). ``run_timeout`` (seconds): how long a run of the job may stay ``running``
    without an outcome before it reads ``unknown`` and blocks no longer; by default the
    rule's period (a cron rule's: to its next occurrence), at least 60 s.
    """

    misfire: str
    grace_ms: int
    jitter_ms: int
    overlap: str
    #: None: the default (the period, at least MIN_RUN_TIMEOUT)
    run_timeout_ms: Optional[int]

    #: The tag of a stored rule of this kind (``wire.EVERY`` or ``wire.CRON``).
    tag: ClassVar[str] = ""

    def __init__(self) -> None:
        raise TypeError("a rule is a rache.Every or a rache.Cron")

    def _set_options(
        self,
        misfire: object,
        grace: object,
        jitter: object,
        overlap: object = DEFAULT_OVERLAP,
        run_timeout: object = None,
    ) -> None:
        """Check the options every rule has and set them (an immutable value: once)."""
        if not isinstance(misfire, str):
            raise TypeError(f"misfire must be a str, not {type(misfire).__name__}")
        if misfire not in MISFIRE_POLICIES:
            policies = ", ".join(MISFIRE_POLICIES)
            raise ValueError(f"misfire must be one of {policies}, not {misfire!r}")
        if not isinstance(overlap, str):
            raise TypeError(f"overlap must be a str, not {type(overlap).__name__}")
        if overlap not in OVERLAP_POLICIES:
            policies = ", ".join(OVERLAP_POLICIES)
            raise ValueError(f"overlap must be one of {policies}, not {overlap!r}")
        grace_ms = millis(grace, "grace", allow_zero=True)
        jitter_ms = millis(jitter, "jitter", allow_zero=True)
        timeout_ms = None
        if run_timeout is not None:
            timeout_ms = millis(run_timeout, "run_timeout", allow_zero=False)
        object.__setattr__(self, "misfire", str(misfire))
        object.__setattr__(self, "grace_ms", grace_ms)
        object.__setattr__(self, "jitter_ms", jitter_ms)
        object.__setattr__(self, "overlap", str(overlap))
        object.__setattr__(self, "run_timeout_ms", timeout_ms)

    @property
    def grace(self) -> Union[int, float]:
        """How late (seconds) a ``skip`` rule still hands an occurrence out."""
        return ms_to_seconds(self.grace_ms)

    @property
    def jitter(self) -> Union[int, float]:
        """The bound (seconds) of the fixed shift of a job's occurrences."""
        return ms_to_seconds(self.jitter_ms)

    @property
    def run_timeout(self) -> Optional[Union[int, float]]:
        """How long a run may stay ``running`` without an outcome (seconds).

        None for a cron rule left to its default (to its next occurrence, at least 60 s).
        """
        return None if self.run_timeout_ms is None else ms_to_seconds(self.run_timeout_ms)

    def place(self, job_id: str) -> Placed:
        """The rule as stored for ``job_id``: its jitter made a shift derived from the id."""
        encoded = job_id.encode("utf-8", "surrogatepass")
        shift = zlib.crc32(encoded) % self.jitter_ms if self.jitter_ms else 0
        return self._placed(shift)

    def details(self) -> Dict[str, Any]:
        """What was asked, in seconds and names (``job_details``' ``recurring`` holds it)."""
        raise NotImplementedError

    def _placed(self, shift: int) -> Placed:
        raise NotImplementedError

    def _options_repr(self) -> List[str]:
        """The options that differ from their defaults, as keywords."""
        shown = []
        if self.misfire != DEFAULT_MISFIRE:
            shown.append(f"misfire={self.misfire!r}")
        if self.grace_ms != DEFAULT_GRACE_MS:
            shown.append(f"grace={self.grace!r}")
        if self.jitter_ms:
            shown.append(f"jitter={self.jitter!r}")
        if self.overlap != DEFAULT_OVERLAP:
            shown.append(f"overlap={self.overlap!r}")
        if self.run_timeout_ms is not None and self.run_timeout_ms != self._default_timeout_ms():
            shown.append(f"run_timeout={self.run_timeout!r}")
        return shown

    def _default_timeout_ms(self) -> Optional[int]:
        """The run timeout (ms) when none is given; None if it depends on the occurrence."""
        return None

    def _options_details(self) -> Dict[str, Any]:
        """``overlap`` and ``run_timeout`` for ``details``, when not their defaults."""
        out: Dict[str, Any] = {}
        if self.overlap != DEFAULT_OVERLAP:
            out["overlap"] = self.overlap
        if self.run_timeout_ms is not None and self.run_timeout_ms != self._default_timeout_ms():
            out["run_timeout"] = self.run_timeout
        return out


@dataclass(frozen=True, init=False, repr=False)
class Every(Rule):
    """A job that recurs every ``seconds`` (a number or a ``timedelta``, kept to the ms).

    ``Every(3600)``, ``Every(timedelta(minutes=5), misfire='skip', grace=30)``,
    ``Every(10, overlap='skip', run_timeout=120)``. Its occurrences are the start given to
    ``schedule_recurring`` plus whole periods. ``misfire``, ``grace``, ``jitter``,
    ``overlap`` and ``run_timeout`` (by default the period, at least 60 s): see
    :class:`Rule`.
    """

    every_ms: int

    tag: ClassVar[str] = wire.EVERY

    def __init__(
        self,
        seconds: Duration,
        *,
        misfire: str = DEFAULT_MISFIRE,
        grace: Duration = DEFAULT_GRACE_MS // 1000,
        jitter: Duration = 0,
        overlap: str = DEFAULT_OVERLAP,
        run_timeout: Optional[Duration] = None,
    ) -> None:
        self._set_options(misfire, grace, jitter, overlap, run_timeout)
        every_ms = millis(seconds, "every", allow_zero=False)
        object.__setattr__(self, "every_ms", every_ms)
        if self.run_timeout_ms is None:  # compared by meaning: the default, written out
            object.__setattr__(self, "run_timeout_ms", self._default_timeout_ms())

    def _default_timeout_ms(self) -> Optional[int]:
        return max(self.every_ms, MIN_RUN_TIMEOUT * 1000)

    @property
    def seconds(self) -> Union[int, float]:
        """The period in seconds: an int when whole."""
        return ms_to_seconds(self.every_ms)

    def details(self) -> Dict[str, Any]:
        """``{'every', 'misfire', 'grace'}`` in seconds (and non-default options)."""
        out = {"every": self.seconds, "misfire": self.misfire, "grace": self.grace}
        return {**out, **self._options_details()}

    def _placed(self, shift: int) -> Placed:
        return Placed(self, start_ms=shift % self.every_ms)

    def __repr__(self) -> str:
        return f"Every({', '.join([repr(self.seconds), *self._options_repr()])})"

    def __str__(self) -> str:
        return f"every {self.seconds} s"


@dataclass(frozen=True, init=False, repr=False)
class Cron(Rule):
    """A job that recurs on a cron ``expression`` on the wall clock of an IANA ``timezone``.

    ``Cron('0 6 * * *', timezone='Europe/Paris')``. The expression has 5 fields, or 6 with
    the seconds last, or is an alias such as ``@daily`` (the ``cron`` extra: croniter). A
    wall time that a spring-forward skips runs at the first instant after the gap; one that a
    fall-back repeats runs once, at its first pass. ``timezone`` is a place's zone, ``UTC``
    or a fixed offset (``Etc/GMT+5``); names that mean another clock on each host
    (``localtime``, ``Factory``, ``posix/...``) are refused. ``misfire``, ``grace``,
    ``jitter``, ``overlap`` and ``run_timeout`` (by default to the next occurrence, at least
    60 s): see :class:`Rule`.
    """

    expression: str
    timezone: str

    tag: ClassVar[str] = wire.CRON

    def __init__(
        self,
        expression: str,
        *,
        timezone: str = "UTC",
        misfire: str = DEFAULT_MISFIRE,
        grace: Duration = DEFAULT_GRACE_MS // 1000,
        jitter: Duration = 0,
        overlap: str = DEFAULT_OVERLAP,
        run_timeout: Optional[Duration] = None,
    ) -> None:
        self._set_options(misfire, grace, jitter, overlap, run_timeout)
        if not isinstance(timezone, str):
            raise TypeError(f"timezone must be a str, not {type(timezone).__name__}")
        if timezone != "UTC":  # UTC needs no lookup (nor a tz database)
            location_zone(timezone)
        _check_expression(expression)
        object.__setattr__(self, "expression", str(expression))
        object.__setattr__(self, "timezone", str(timezone))

    def details(self) -> Dict[str, Any]:
        """``{'cron', 'timezone', 'misfire', 'grace'}`` (and non-default options)."""
        return {
            "cron": self.expression,
            "timezone": self.timezone,
            "misfire": self.misfire,
            "grace": self.grace,
            **self._options_details(),
        }

    def _placed(self, shift: int) -> Placed:
        return Placed(self, offset_ms=shift)

    def __repr__(self) -> str:
        shown = [repr(self.expression)]
        if self.timezone != "UTC":
            shown.append(f"timezone={self.timezone!r}")
        return f"Cron({', '.join([*shown, *self._options_repr()])})"

    def __str__(self) -> str:
        return f"cron {self.expression} ({self.timezone})"


def _check_expression(expression: object) -> None:
    """A cron expression rache takes: 5 or 6 fields (or an alias) with an occurrence."""
    if not isinstance(expression, str):
        raise TypeError(f"cron must be a str, not {type(expression).__name__}")
    if wire.SEPARATOR in expression or "\n" in expression:
        raise ValueError(f"cron expression {expression!r} is not valid")
    fields = len(expression.split())
    if fields not in (5, 6) and not (fields == 1 and expression.strip().startswith("@")):
        raise ValueError(
            f"cron expression {expression!r} is not valid: it has {fields} fields, where "
            "rache takes 5, or 6 with the seconds last (or an alias such as @daily)"
        )
    try:
        occurrences = croniter()(expression, datetime(2000, 1, 1))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"cron expression {expression!r} is not valid: {exc}") from None
    try:  # a rule of 5 or 6 fields that runs once runs forever: one occurrence tells
        occurrences.get_next(datetime)
    except (ValueError, KeyError, TypeError):
        raise ValueError(
            f"cron expression {expression!r} has no occurrence (a day none has?)"
        ) from None


@dataclass(frozen=True)
class Placed:
    """A rule placed for one job, as ``<prefix>recurring`` stores it.

    The value, and where its occurrences fall: an every-N rule's are ``start_ms + k *
    every_ms`` (placing it, ``start_ms`` is the jitter shift, which the script adds to the
    start it sets); a cron rule's are its wall-clock times plus ``offset_ms``.
    """

    rule: Union[Every, Cron]
    start_ms: int = 0
    offset_ms: int = 0

    def encode_tail(self) -> bytes:
        """The stored rule after the fields that the scripts fill in (see ``wire``).

        The one encoder of a rule: ``e|<start>|`` (the start written by the script) or
        ``c|<pending>|<lease>|`` (both empty while idle), then this.
        """
        rule = self.rule
        timeout = _stored_timeout_ms(rule)
        if isinstance(rule, Every):
            return wire.every_rule_tail(
                rule.every_ms, rule.misfire, rule.grace_ms, rule.overlap, timeout
            )
        return wire.cron_rule_tail(
            rule.misfire,
            rule.grace_ms,
            self.offset_ms,
            rule.timezone,
            rule.expression,
            rule.overlap,
            timeout,
        )

    def describe(self) -> Dict[str, Any]:
        """The rule for ``job_details``: what was asked, in seconds and names, placed."""
        out = self.rule.details()
        if isinstance(self.rule, Every):
            out = {"every": out.pop("every"), "start": ms_to_seconds(self.start_ms), **out}
        else:
            out = {
                "cron": out.pop("cron"),
                "timezone": out.pop("timezone"),
                "offset": ms_to_seconds(self.offset_ms),
                **out,
            }
        return out


def _stored_timeout_ms(rule: Union[Every, Cron]) -> Optional[int]:
    """A rule's run timeout as stored: None (not written) when it is the default."""
    if isinstance(rule, Every) and rule.run_timeout_ms == max(
        rule.every_ms, MIN_RUN_TIMEOUT * 1000
    ):
        return None
    return rule.run_timeout_ms


def _stored(cls: Type[_R], **fields: Any) -> _R:
    """A value from fields read back from Redis: checked when it was written, not again."""
    value = object.__new__(cls)
    for name, field in fields.items():
        object.__setattr__(value, name, field)
    return value


def decode(raw: bytes) -> Tuple[Placed, str, str]:
    """A stored rule, with a cron rule's pending occurrence and lease token ('' if none).

    The one decoder of a rule; ValueError for anything that is not one.
    """
    fields = wire.split_rule(raw)
    try:
        misfire, overlap, timeout = wire.split_flags(fields[3])
    except ValueError:
        raise ValueError(f"not a rache recurrence rule: {raw!r}") from None
    options = {"misfire": misfire, "overlap": overlap, "jitter_ms": 0}
    if fields[0] == wire.EVERY:
        _, start, every, _, grace = fields
        every_ms = int(every)
        if timeout is None:
            timeout = max(every_ms, MIN_RUN_TIMEOUT * 1000)
        rule = _stored(
            Every, grace_ms=int(grace), every_ms=every_ms, run_timeout_ms=timeout, **options
        )
        return Placed(rule, start_ms=int(start)), "", ""
    _, pending, lease, _, grace, offset, zone_name, expression = fields
    cron = _stored(
        Cron,
        grace_ms=int(grace),
        expression=expression,
        timezone=zone_name,
        run_timeout_ms=timeout,
        **options,
    )
    return Placed(cron, offset_ms=int(offset)), pending, lease


def checked(raw: bytes) -> Tuple[Placed, str, str]:
    """A stored rule from outside (an export's), as :func:`decode` reads it, checked.

    Its rule is built again by ``Every`` or ``Cron``, so every check a new rule gets runs
    (a period of 0, a negative grace, a cron expression croniter refuses), and it is taken
    only if it encodes back to the very same string. Its zone must be one this host knows,
    but the names a new rule may not take (``localtime``, ``posix/...``) still pass: a rule
    stored before they were refused still copies. ValueError saying what was wrong.
    """
    placed, pending, lease = decode(raw)
    rule = placed.rule
    grace = ms_to_seconds(rule.grace_ms)
    timeout = None if rule.run_timeout_ms is None else ms_to_seconds(rule.run_timeout_ms)
    options: Dict[str, Any] = {"misfire": rule.misfire, "grace": grace, "overlap": rule.overlap}
    fresh: Union[Every, Cron]
    if isinstance(rule, Every):
        fresh = Every(ms_to_seconds(rule.every_ms), run_timeout=timeout, **options)
        if not abs(placed.start_ms) < MAX_MS + MAX_RULE_MS:
            raise ValueError(f"its start {placed.start_ms} ms is out of bounds")
        head = f"{wire.EVERY}|{placed.start_ms}|"
    else:
        zone(rule.timezone)  # known here; a zone refused only to new rules still copies
        fresh = _stored(
            Cron,
            **{
                **Cron(rule.expression, run_timeout=timeout, **options).__dict__,
                "timezone": rule.timezone,
            },
        )
        if not 0 <= placed.offset_ms <= MAX_RULE_MS:
            raise ValueError(f"its offset {placed.offset_ms} ms is out of bounds")
        if bool(pending) != bool(lease) or any(
            not math.isfinite(float(time)) or float(time) < 0 for time in (pending, lease) if time
        ):
            raise ValueError(f"its lease ({pending!r}, {lease!r}) is not two times")
        head = f"{wire.CRON}|{pending}|{lease}|"
    again = Placed(fresh, start_ms=placed.start_ms, offset_ms=placed.offset_ms)
    if head.encode() + again.encode_tail() != raw:
        raise ValueError("it does not encode back to itself (is it as export_jobs gives it?)")
    return again, pending, lease


def from_details(details: Mapping[str, Any]) -> Union[Every, Cron]:
    """The rule that ``job_details``' ``recurring`` describes (see :meth:`Rule.details`).

    As read back from Redis: not checked again (a zone this host lacks still reads), its
    jitter in its placement. KeyError if ``details`` lacks what a rule has.
    """
    timeout = details.get("run_timeout")
    options = {
        "misfire": details["misfire"],
        "grace_ms": round(details["grace"] * 1000),
        "jitter_ms": 0,
        "overlap": details.get("overlap", DEFAULT_OVERLAP),
        "run_timeout_ms": None if timeout is None else round(timeout * 1000),
    }
    if "every" in details:
        every_ms = round(details["every"] * 1000)
        if options["run_timeout_ms"] is None:
            options["run_timeout_ms"] = max(every_ms, MIN_RUN_TIMEOUT * 1000)
        return _stored(Every, every_ms=every_ms, **options)
    return _stored(Cron, expression=details["cron"], timezone=details["timezone"], **options)


def zone(name: str) -> Any:
    """The IANA time zone ``name``; ValueError naming it if this host does not know it."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone {name!r} is not a known IANA time zone") from None


#: Names that ``ZoneInfo`` loads on a usual host but that name no place, each with why: a
#: rule in one of them would follow another clock on each host that evaluates it.
_NOT_LOCATIONS = {
    "localtime": "it is the zone of the host that reads it, which differs from host to host "
    "(a cron rule is evaluated on whichever host claims it)",
    "posixrules": "it is the tz database's template for POSIX TZ strings, a copy of a zone "
    "chosen per host",
    "Factory": "it is the tz database's placeholder for a host whose zone is not set ('-00')",
}
#: Folders of some hosts' tz files beside the zones (``zoneinfo.available_timezones()``
#: leaves them out): ``posix/`` copies the zones, ``right/`` counts leap seconds.
_NOT_LOCATION_FOLDERS = {
    "posix/": "'posix/' zones are a copy of the tz database that some hosts keep",
    "right/": "'right/' zones count leap seconds, which Unix time does not: their wall clock "
    "is off by those seconds",
}


def location_zone(name: str) -> Any:
    """The IANA zone ``name`` for a new rule: a place's zone (or ``UTC``, ``Etc/GMT+5`` ...).

    ValueError naming ``timezone`` if this host does not know it, or if it is one of the
    names that mean something else on each host (``localtime``, ``posixrules``,
    ``Factory``, ``posix/...``, ``right/...``). Rules read back from Redis are not checked
    again: they are evaluated in whatever zone they name (``zone``).
    """
    why = _NOT_LOCATIONS.get(name)
    instead = "the zone of the job's wall clock, such as 'Europe/Paris', or 'UTC'"
    for folder, reason in _NOT_LOCATION_FOLDERS.items():
        if name.startswith(folder):
            why, instead = reason, repr(name[len(folder) :]) if name != folder else instead
    if why is not None:
        raise ValueError(f"timezone {name!r} is not an IANA location zone: {why}; name {instead}")
    return zone(name)


def croniter() -> Any:
    """Croniter's class (the ``cron`` extra), or MissingExtra naming what to install."""
    try:
        from croniter import croniter
    except ImportError:
        raise MissingExtra("a cron rule", "croniter", "cron") from None
    return croniter

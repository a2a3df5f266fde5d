"""Rules' overlap= and run_timeout=: checked, compared by meaning, one encoder, one decoder."""

from __future__ import annotations

from typing import Any

import pytest

from rache import Cron, Every, wire
from rache.rules import checked, decode, from_details


def test_defaults_store_the_rules_of_before() -> None:
    assert Every(10).place("x").encode_tail() == b"10000|c|60000"
    assert Every(10).overlap == "allow" and Every(10).run_timeout == 60
    assert Every(120).run_timeout == 120
    assert Cron("* * * * *").run_timeout is None
    # Rules stored before overlap policies decode as allow, with the default timeout.
    (placed, _, _) = decode(b"e|5|10000|s|1000")
    assert placed.rule == Every(10, misfire="skip", grace=1)
    (placed, _, _) = decode(b"c|||c|60000|0|UTC|* * * * *")
    assert placed.rule == Cron("* * * * *")


@pytest.mark.parametrize(
    "rule, tail",
    [
        (Every(10, overlap="skip"), b"10000|ck|60000"),
        (Every(10, overlap="buffer_one", run_timeout=5), b"10000|cb5000|60000"),
        (Every(10, run_timeout=90), b"10000|ca90000|60000"),
        (Every(10, run_timeout=60), b"10000|c|60000"),  # the default, not written
        (Cron("* * * * *", overlap="skip", run_timeout=30), b"ck30000|60000|0|UTC|* * * * *"),
        (Cron("* * * * *", misfire="skip", overlap="buffer_one"), b"sb|60000|0|UTC|* * * * *"),
    ],
)
def test_one_encoder_one_decoder(rule: Any, tail: bytes) -> None:
    assert rule.place("x").encode_tail() == tail
    head = b"e|0|" if isinstance(rule, Every) else b"c|||"
    assert decode(head + tail)[0].rule == rule
    assert checked(head + tail)[0].rule == rule
    assert from_details(rule.details()) == rule
    assert eval(repr(rule), {"Every": Every, "Cron": Cron}) == rule


def test_compared_by_meaning() -> None:
    assert Every(10, run_timeout=60) == Every(10)
    assert Every(10, overlap="skip") != Every(10)
    assert Every(10).details() == {"every": 10, "misfire": "coalesce", "grace": 60}
    assert Every(10, overlap="skip", run_timeout=5).details()["run_timeout"] == 5


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"overlap": "never"}, ValueError, "overlap must be one of allow, skip, buffer_one"),
        ({"overlap": None}, TypeError, "overlap must be a str"),
        ({"run_timeout": 0}, ValueError, "run_timeout must be more than 0"),
        ({"run_timeout": -1}, ValueError, "run_timeout"),
        ({"run_timeout": "1m"}, TypeError, "run_timeout"),
    ],
)
def test_bad_values_name_the_option(kwargs: Any, error: Any, words: str) -> None:
    with pytest.raises(error, match=words):
        Every(10, **kwargs)
    with pytest.raises(error, match=words):
        Cron("* * * * *", **kwargs)


@pytest.mark.parametrize("flags", ["cx", "c5", "ck5x", "", "kk"])
def test_bad_flags_are_refused(flags: str) -> None:
    with pytest.raises(ValueError):
        wire.split_flags(flags)
    with pytest.raises(ValueError, match="not a rache recurrence rule"):
        decode(f"e|0|1000|{flags}|0".encode())

"""Durations and sizes: every unit, the forms rejected, and the round trip through format_*."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from topo.units import (
    DURATION_PATTERN,
    MAX_AGE_PATTERN,
    SIZE_PATTERN,
    format_duration,
    format_size,
    parse_duration,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        (0, 0),
        (60000, 60000),
        ("0ms", 0),
        ("500ms", 500),
        ("1s", 1000),
        ("30s", 30_000),
        ("5m", 300_000),
        ("1h", 3_600_000),
        ("24h", 86_400_000),
        ("1d", 86_400_000),
        ("7d", 604_800_000),
        (" 30s ", 30_000),  # surrounding blanks are forgiven
    ],
)
def test_parse_duration(text: object, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize(
    ("text", "n"),
    [
        (0, 0),
        (1048576, 1048576),
        ("512B", 512),
        ("10KB", 10_000),
        ("10KiB", 10_240),
        ("10MB", 10_000_000),
        ("10MiB", 10_485_760),
        ("1GB", 1_000_000_000),
        ("1GiB", 1_073_741_824),
        ("2TB", 2_000_000_000_000),
        ("2TiB", 2 * 1024**4),
    ],
)
def test_parse_size(text: object, n: int) -> None:
    assert parse_size(text) == n


def test_kb_is_decimal_and_kib_binary() -> None:
    assert parse_size("1KB") == 1000
    assert parse_size("1KiB") == 1024
    assert parse_size("1MB") != parse_size("1MiB")


@pytest.mark.parametrize(
    "bad",
    [
        True,
        False,
        None,
        1.5,
        -1,
        "",
        "5",  # a digit string is not an integer: the file must say 5 or 5ms
        "5 s",
        "5S",
        "5sec",
        "1.5s",
        "-5s",
        "5w",
        "s",
        "5ms5",
        [5],
    ],
)
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match=r"duration|negative"):
        parse_duration(bad)


@pytest.mark.parametrize(
    "bad",
    [True, False, None, 1.5, -1, "", "10", "10kb", "10kB", "10Mib", "10 MiB", "1.5GB", "-1B", "10PB", "MiB", {}],
)
def test_parse_size_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match=r"size|negative"):
        parse_size(bad)


def test_negative_messages_name_the_value() -> None:
    with pytest.raises(ValueError, match="cannot be negative, got -5"):
        parse_duration(-5)
    with pytest.raises(ValueError, match="cannot be negative, got -5"):
        parse_size(-5)


def test_bool_is_not_an_integer() -> None:
    # bool is an int in Python; `message-ttl: true` must not become 1 ms
    with pytest.raises(ValueError, match="got True"):
        parse_duration(True)
    with pytest.raises(ValueError, match="got False"):
        parse_size(False)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, 0),
        (1, 1),
        (500, 500),
        (1000, "1s"),
        (90_000, "90s"),
        (300_000, "5m"),
        (3_600_000, "1h"),
        (86_400_000, "1d"),
        (90_000_000, "25h"),
        (1500, 1500),
    ],
)
def test_format_duration(ms: int, text: int | str) -> None:
    assert format_duration(ms) == text


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, 0),
        (512, 512),
        (1000, 1000),  # decimal units are read, never written: the IEC form or the integer
        (1024, "1KiB"),
        (10_485_760, "10MiB"),
        (1_073_741_824, "1GiB"),
        (1024**4, "1TiB"),
        (1536, 1536),  # 1.5 KiB: no exact unit, stays an integer
    ],
)
def test_format_size(n: int, text: int | str) -> None:
    assert format_size(n) == text


@given(st.integers(min_value=0, max_value=10**15))
def test_duration_round_trip(ms: int) -> None:
    assert parse_duration(format_duration(ms)) == ms


@given(st.integers(min_value=0, max_value=10**18))
def test_size_round_trip(n: int) -> None:
    assert parse_size(format_size(n)) == n


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["ms", "s", "m", "h", "d"]))
def test_duration_pattern_agrees_with_parser(n: int, unit: str) -> None:
    # the JSON Schema's pattern and the parser accept the same strings
    text = f"{n}{unit}"
    assert re.match(DURATION_PATTERN, text)
    parse_duration(text)


@given(st.text(max_size=8))
def test_duration_pattern_and_parser_reject_alike(text: str) -> None:
    matched = re.match(DURATION_PATTERN, text) is not None
    try:
        parse_duration(text)
        parsed = True
    except ValueError:
        parsed = False
    if text == text.strip():  # the parser also forgives blanks around the value
        assert matched == parsed


@given(st.text(max_size=8))
def test_size_pattern_and_parser_reject_alike(text: str) -> None:
    matched = re.match(SIZE_PATTERN, text) is not None
    try:
        parse_size(text)
        parsed = True
    except ValueError:
        parsed = False
    if text == text.strip():
        assert matched == parsed


@pytest.mark.parametrize("text", ["7D", "12h", "30m", "1Y", "6M", "45s", "01D"])
def test_max_age_form_accepted(text: str) -> None:
    assert re.match(MAX_AGE_PATTERN, text)


@pytest.mark.parametrize("text", ["0D", "00h", "7d", "7", "D", "7 D", "7x", "1.5h", "-1D", "7ms"])
def test_max_age_form_rejected(text: str) -> None:
    # RabbitMQ (rabbit_amqqueue:check_max_age): a positive integer and one of Y M D h m s
    assert not re.match(MAX_AGE_PATTERN, text)

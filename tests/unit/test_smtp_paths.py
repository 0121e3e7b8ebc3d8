"""The SMTP door reads everyday MAIL FROM / RCPT TO paths with one regular expression and leaves the
rest to aiosmtpd: for any argument, the address and parameters it finds are aiosmtpd's own."""
from __future__ import annotations

import random

import pytest
from aiosmtpd.smtp import SMTP

from ingest.smtp import _PLAIN_PATH, _PlainAddresses


class _Handler:
    pass


def _read(protocol: SMTP, arg: str):
    try:
        return protocol._getaddr(arg)
    except Exception as exc:  # aiosmtpd's parser raises on some junk: the same junk must raise the same
        return ("raised", type(exc).__name__)


@pytest.mark.parametrize("arg", ["<ann@example.org>", "<ann@example.org> SIZE=1200 BODY=8BITMIME",
                                 "<a.b+tag@mail-1.example.org>SIZE=5", "<ann@example.org>  ", "<>",
                                 '<"quoted local"@example.org>', "<@relay.example:ann@example.org>",
                                 "<ann@[192.0.2.1]>", "<ann@example.org> (a comment) SIZE=1", "<ann@exa mple.org>",
                                 "<ann@example.org.>", "ann@example.org", " <ann@example.org>", "<jörg@example.org>"])
def test_known_paths_read_as_aiosmtpd_reads_them(arg):
    assert _read(_PlainAddresses(_Handler()), arg) == _read(SMTP(_Handler()), arg)


def test_random_paths_read_as_aiosmtpd_reads_them():
    rng = random.Random(20261202)
    ours, theirs = _PlainAddresses(_Handler()), SMTP(_Handler())
    quick = 0
    for _ in range(20000):
        if rng.random() < 0.6:
            local = "".join(rng.choice("ab.-+_1'") for _ in range(rng.randint(0, 5)))
            domain = "".join(rng.choice("ab.-1") for _ in range(rng.randint(0, 5)))
            tail = "".join(rng.choice(" \tSIZE=1()ab\r\n") for _ in range(rng.randint(0, 8)))
            arg = f"<{local}@{domain}>{tail}"
        else:
            arg = "".join(rng.choice("ab.@<>-+ \t()\"[]:,=Zé1_") for _ in range(rng.randint(0, 14)))
        quick += _PLAIN_PATH.fullmatch(arg) is not None
        assert _read(ours, arg) == _read(theirs, arg), arg
    assert quick > 2000  # the quick reading was tried, not only aiosmtpd's


def test_the_local_part_limit_still_applies():
    ours, theirs = _PlainAddresses(_Handler()), SMTP(_Handler())
    ours.local_part_limit = theirs.local_part_limit = 8
    for arg in ("<abcdefgh@example.org>", "<abcdefghi@example.org> SIZE=1"):
        assert _read(ours, arg) == _read(theirs, arg)
    assert _read(ours, "<abcdefghi@example.org>") == (None, None)

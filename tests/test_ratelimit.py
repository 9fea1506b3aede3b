"""SMTP_RATE_LIMIT: parsing, windows held under a fake clock, and the daily cap kept across runs."""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
from pathlib import Path

import pytest

from newsletter.compose.mime import Envelope
from newsletter.errors import ConfigError, DailyCapReached, NewsletterError
from newsletter.model import Subscriber
from newsletter.rate import Limit, SendRate, parse_rate_limit
from newsletter.send.loop import deliver
from newsletter.send.ratelimit import RateLimiter, limiter_for
from newsletter.send.transports import Smtp
from newsletter.settings import parse_smtp_url
from newsletter.state.ledger import Ledger

from .conftest import CliRunner
from .smtpd import Recorder, Server

DAY1 = dt.datetime(2026, 12, 1, 14, 0, tzinfo=dt.UTC)
DAY2 = DAY1 + dt.timedelta(days=1)
CAMPAIGN = "2026-12-08/week-before"
SETTING = "10/s, 3/day"


class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(text: str, *, sent: int = 0, clock: FakeClock | None = None) -> RateLimiter:
    return RateLimiter(
        parse_rate_limit(text),
        today=lambda: DAY1.date(),
        sent_on=lambda _day: sent,
        clock=clock or FakeClock(),
    )


def assert_within(times: list[float], limit: Limit) -> None:
    """No window of ``limit.seconds`` holds more than ``limit.count`` of the send times."""
    times = sorted(times)
    for i, start in enumerate(times):
        inside = [t for t in times[i:] if t < start + limit.seconds - 1e-9]
        assert len(inside) <= limit.count, f"{len(inside)} sends within {limit} from t={start}"


# --- parsing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limits"),
    [
        ("5/s", [Limit(5, "second")]),
        ("2/sec", [Limit(2, "second")]),
        ("1000/hour", [Limit(1000, "hour")]),
        ("100/min, 500/day", [Limit(100, "minute"), Limit(500, "day")]),
        ("500/day,100/min", [Limit(100, "minute"), Limit(500, "day")]),  # kept shortest window first
        ("10 per minute; 20000 per day", [Limit(10, "minute"), Limit(20000, "day")]),
        (" 14 / Second ", [Limit(14, "second")]),
        (
            "3/s, 120/m, 1000/h, 2000/d",
            [Limit(3, "second"), Limit(120, "minute"), Limit(1000, "hour"), Limit(2000, "day")],
        ),
    ],
)
def test_parse(text: str, limits: list[Limit]) -> None:
    rate = parse_rate_limit(text)
    assert list(rate.limits) == limits
    assert rate
    assert parse_rate_limit(str(rate)) == rate  # what we print can be written back


@pytest.mark.parametrize("text", ["", "  ", "none", "OFF"])
def test_unset_means_no_limit(text: str) -> None:
    rate = parse_rate_limit(text)
    assert not rate and rate == SendRate() and rate.daily is None and str(rate) == "none"


def test_daily_and_windows() -> None:
    rate = parse_rate_limit("100/min, 500/day")
    assert rate.daily == 500
    assert rate.windows == (Limit(100, "minute"),)
    assert str(rate) == "100/min, 500/day"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("5", "cannot read '5'"),
        ("fast", "cannot read 'fast'"),
        ("5/fortnight", "unknown unit 'fortnight'"),
        ("0.5/s", "not a whole number of messages — e.g. 30/min rather than 0.5/s"),
        ("five/s", "'five' in 'five/s' is not a whole number"),
        ("0/day", "allows no message at all"),
        ("-3/min", "allows no message at all"),
        ("5/s, 10/sec", "gives a limit per second twice (5/s and 10/sec)"),
        (", ;", "holds no limit"),
    ],
)
def test_parse_errors_say_what_to_write(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_rate_limit(text)
    message = str(caught.value)
    assert message.startswith("SMTP_RATE_LIMIT")
    assert says in message
    assert "e.g." in message or "keep one" in message or "leave SMTP_RATE_LIMIT empty" in message


# --- windows under a fake clock --------------------------------------------------------------------


def test_one_connection_per_second_window() -> None:
    clock = FakeClock()
    lim = limiter("5/s", clock=clock)
    times = []
    for _ in range(23):
        clock.now += sum(lim.throttle())  # the caller sleeps exactly the pauses it is given
        times.append(clock.now)
    assert_within(times, Limit(5, "second"))
    # No slower than it must be: 5 at once, then 5 a second later, and so on.
    assert [t - 1000.0 for t in times] == [float(i // 5) for i in range(23)]


def test_pause_is_zero_while_under_the_limit() -> None:
    clock = FakeClock()
    lim = limiter("2/s", clock=clock)
    assert list(lim.throttle()) == []
    clock.now += 0.6
    assert list(lim.throttle()) == []
    assert list(lim.throttle()) == [pytest.approx(0.4)]  # the first leaves the window at t+1.0


def simulate(
    lim: RateLimiter, clock: FakeClock, *, connections: int, messages: int, busy: float
) -> list[float]:
    """Connections that each ask for a slot when free, wait the pause, then spend ``busy`` sending."""
    free = [(clock.now, n) for n in range(connections)]
    sent: list[float] = []
    while len(sent) < messages:
        at, n = heapq.heappop(free)
        clock.now = max(clock.now, at)
        start = clock.now + sum(lim.throttle())
        sent.append(start)
        heapq.heappush(free, (start + busy, n))
    return sent


@pytest.mark.parametrize("connections", [1, 4, 16])
def test_limits_hold_across_connections(connections: int) -> None:
    clock = FakeClock()
    lim = limiter("3/s, 20/min, 45/hour", clock=clock)
    sent = simulate(lim, clock, connections=connections, messages=60, busy=0.05)
    for limit in lim.rate.windows:
        assert_within(sent, limit)
    # The binding limits are reached, not undercut: 20 in the first minute, 45 in the first hour.
    start = sent[0]
    assert sum(t < start + 60 for t in sent) == 20
    assert sum(t < start + 3600 for t in sent) == 45
    assert sent[45] == pytest.approx(start + 3600)


def test_slow_sends_need_no_pause() -> None:
    clock = FakeClock()
    lim = limiter("5/s", clock=clock)
    sent = simulate(lim, clock, connections=1, messages=20, busy=0.25)  # 4/s on its own
    assert sent == [pytest.approx(1000.0 + 0.25 * i) for i in range(20)]


# --- the daily budget ------------------------------------------------------------------------------


def test_daily_cap_stops_instead_of_sleeping() -> None:
    clock = FakeClock()
    lim = limiter("100/min, 3/day", clock=clock)
    for _ in range(3):
        assert list(lim.throttle()) == []
    assert lim.remaining_today == 0
    with pytest.raises(DailyCapReached) as caught:
        list(lim.throttle())
    err = caught.value
    assert isinstance(err, NewsletterError) and err.exit_code == 3
    assert err.cap == 3 and err.day == DAY1.date()
    assert "daily limit of 3 messages" in str(err) and "2026-12-01" in str(err)
    assert "newsletter tick" in str(err) and "00:00 UTC" in str(err)
    with pytest.raises(DailyCapReached):
        lim.check()


def test_daily_budget_is_seeded_with_what_was_already_sent() -> None:
    lim = limiter("500/day", sent=498)
    assert lim.remaining_today == 2
    lim.acquire()
    lim.acquire()
    with pytest.raises(DailyCapReached):
        lim.acquire()


def test_a_new_utc_day_reads_its_own_count() -> None:
    day = [DAY1.date()]
    counts = {DAY1.date(): 2, DAY2.date(): 1}
    asked: list[dt.date] = []

    def sent_on(d: dt.date) -> int:
        asked.append(d)
        return counts[d]

    lim = RateLimiter(parse_rate_limit("2/day"), today=lambda: day[0], sent_on=sent_on, clock=FakeClock())
    with pytest.raises(DailyCapReached):
        lim.acquire()
    day[0] = DAY2.date()
    assert lim.remaining_today == 1
    lim.acquire()
    with pytest.raises(DailyCapReached) as caught:
        lim.acquire()
    assert caught.value.day == DAY2.date()
    assert asked == [DAY1.date(), DAY2.date()]


def test_no_daily_cap_means_no_budget() -> None:
    lim = limiter("5/s")
    assert lim.remaining_today is None
    lim.check()


def test_limiter_for_unset_setting_is_none(tmp_path: Path) -> None:
    with Ledger(tmp_path / "state.sqlite3") as ledger:
        assert limiter_for(parse_rate_limit(""), ledger, now=lambda: DAY1) is None
        with pytest.raises(ConfigError):
            limiter_for(parse_rate_limit("lots"), ledger, now=lambda: DAY1)


# --- the daily cap across two ticks, with the real ledger and a real SMTP server ----------------------


def envelope(member: Subscriber) -> Envelope:
    data = b"From: news@example.org\r\nTo: " + member.email.encode() + b"\r\nSubject: hi\r\n\r\nhello\r\n"
    return Envelope("news@example.org", member.email, data, f"<{member.key}@example.org>", member.key)


async def tick(
    state: Path,
    smtp: Server,
    members: list[Subscriber],
    *,
    now: dt.datetime,
    check: bool = True,
    connections: int = 1,
) -> int:
    """One run in a fresh process: open the ledger, build the limiter from it, send; this run's sent count."""
    with Ledger(state) as ledger:
        ledger.open_campaign(CAMPAIGN, meeting="2026-12-08", reminder="week-before", kind="reminder", now=now)
        if check:  # what the send command does: stop before connecting when the day is spent
            lim = limiter_for(parse_rate_limit(SETTING), ledger, now=lambda: now, clock=FakeClock())
            assert lim is not None
        else:
            lim = RateLimiter(
                parse_rate_limit(SETTING), today=lambda: now.date(), sent_on=ledger.sent_on, clock=FakeClock()
            )
        report = await deliver(
            campaign=CAMPAIGN,
            members=members,
            build=envelope,
            ledger=ledger,
            transport=Smtp(parse_smtp_url(smtp.url), timeout=10),
            clock=lambda: now,
            connections=connections,
            throttle=lim.throttle,
        )
        return report.counts["sent"]


async def test_daily_cap_carries_across_ticks(tmp_path: Path, smtp: Server) -> None:
    state = tmp_path / "state.sqlite3"
    members = [Subscriber(email=f"member{i}@example.org", name=f"Member {i}") for i in range(5)]

    # First tick: three go out, then the day's budget is spent and the run stops.
    with pytest.raises(DailyCapReached):
        await tick(state, smtp, members, now=DAY1)
    assert len(smtp.messages) == 3
    with Ledger(state) as ledger:
        assert ledger.sent_on(DAY1.date()) == 3
        assert ledger.counts(CAMPAIGN) == {"sent": 3, "pending": 2}

    # Second tick, same day: the budget read back from the database is spent; nothing more goes out,
    # whether the run checks before connecting or only finds out at the first message.
    later = DAY1 + dt.timedelta(hours=9)
    for check in (True, False):
        with pytest.raises(DailyCapReached):
            await tick(state, smtp, members, now=later, check=check)
    assert len(smtp.messages) == 3
    with Ledger(state) as ledger:
        assert ledger.counts(CAMPAIGN) == {"sent": 3, "pending": 2}

    # Next UTC day: the rest of the mailing goes out, nobody twice.
    assert await tick(state, smtp, members, now=DAY2) == 2
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == sorted(m.email for m in members)
    with Ledger(state) as ledger:
        assert ledger.sent_on(DAY1.date()) == 3 and ledger.sent_on(DAY2.date()) == 2
        assert ledger.counts(CAMPAIGN) == {"sent": 5}


async def test_daily_cap_lets_messages_in_flight_finish(tmp_path: Path) -> None:
    async def slow_data(recorder: Recorder, server: object, envelope: object) -> None:
        await asyncio.sleep(0.5)  # a relay that takes its time to accept: the cap is hit meanwhile

    state = tmp_path / "state.sqlite3"
    members = [Subscriber(email=f"member{i}@example.org", name=f"Member {i}") for i in range(5)]
    with Server(Recorder(data_hook=slow_data), hostname="localhost") as smtp:
        with pytest.raises(DailyCapReached):
            await tick(state, smtp, members, now=DAY1, connections=4)
        with Ledger(state) as ledger:
            assert ledger.counts(CAMPAIGN) == {"sent": 3, "pending": 2}
            assert ledger.sent_on(DAY1.date()) == len(smtp.messages) == 3


# --- through the CLI ----------------------------------------------------------------------------------


def test_send_stops_at_the_daily_cap_and_continues_the_next_day(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    monkeypatch.setenv("SMTP_RATE_LIMIT", "100/min, 3/day")
    everyone = sum(1 for _ in (group / "subscribers.csv").open(encoding="utf-8-sig")) - 1
    assert everyone == 5
    NAMED = ("--meeting", "2026-12-08", "--reminder", "week-before")  # sent early, as asked

    code, out, err = run(group, "send", *NAMED, "--at", "2026-11-25T10:00")
    assert code == 3, err
    assert "daily limit of 3 messages" in err and "2026-11-25" in err
    assert len(smtp.messages) == 3

    code, out, err = run(group, "send", *NAMED, "--at", "2026-11-25T18:00")  # same UTC day: nothing more
    assert code == 3 and "daily limit of 3 messages" in err
    assert len(smtp.messages) == 3

    code, out, err = run(group, "send", *NAMED, "--at", "2026-11-26T10:00")  # the next day: the rest
    assert code == 0, err
    assert len(smtp.messages) == everyone
    assert len({m.rcpt_tos[0].lower() for m in smtp.messages}) == everyone

"""`report` and `history`: their numbers against what the database holds, and the links of what was liked."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from story_liker import report as reporting
from story_liker.db import make_engine, migrate
from story_liker.errors import UsageError
from story_liker.store import LikedPost, LikedStory, Store
from tests.conftest import Terminal, run_cli
from tests.double import shortcode
from tests.fake import stored_id

ME = "liker"
PKS = {"alice": 101, "bob": 102, "carol": 103, "dave": 104}


@pytest.fixture
def seeded(database_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A week of likes and runs, some older than the window, one skipped story; the CLI's environment."""
    engine = make_engine(database_url)
    migrate(engine)
    store = Store(engine)
    now = datetime.now(UTC).replace(microsecond=0)
    store.sync_targets(ME, ["alice", "bob", "carol", "dave"], now - timedelta(days=9))
    store.set_target_enabled(ME, "dave", False)
    ids = {t.username: stored_id(t) for t in store.targets(ME, enabled_only=False)}
    checked = {"alice": now - timedelta(hours=1), "bob": now - timedelta(hours=10), "carol": None, "dave": None}
    store.update_targets(
        {ids[n]: {"user_pk": PKS[n], "story_checked_at": checked[n]} for n in ("alice", "bob", "carol", "dave")}
    )

    def story(pk: int, user: str, hours: float, skipped: bool = False) -> None:
        at = now - timedelta(hours=hours)
        store.record_stories(ME, [LikedStory(str(pk), PKS[user], at - timedelta(hours=1), skipped)], at, counted=True)

    def post(pk: int, user: str, hours: float) -> None:
        at = now - timedelta(hours=hours)
        store.record_posts(ME, [LikedPost(str(pk), PKS[user], "photo", at - timedelta(hours=2))], at, counted=True)

    story(3_500_000_000_000_000_001, "alice", 1)
    story(3_500_000_000_000_000_002, "alice", 2)
    story(3_500_000_000_000_000_003, "alice", 26)
    story(3_500_000_000_000_000_004, "alice", 3, skipped=True)  # left deliberately: never counted as liked
    post(3_400_000_000_000_000_001, "alice", 50)
    post(3_400_000_000_000_000_002, "alice", 5)
    post(3_400_000_000_000_000_003, "bob", 24 * 8)  # outside a 7-day window, but bob was liked
    runs = [  # (hours ago, command, outcome, requests)
        (1, "run-stories", "ok", 5),
        (2, "run-stories", "ok", 4),
        (26, "run-stories", "throttled", 3),
        (27, "run-stories", "cooling_down", 0),
        (50, "run-posts", "ok", 7),
        (24 * 8, "run-posts", "ok", 100),  # outside
    ]
    for number, (hours, command, outcome, requests) in enumerate(runs):
        started = now - timedelta(hours=hours)
        store.start_run(f"run{number}", account=ME, command=command, now=started)
        code = {"ok": 0, "throttled": 75, "cooling_down": 75}[outcome]
        store.finish_run(
            f"run{number}",
            exit_code=code,
            outcome=outcome,
            counts={"requests": requests},
            now=started + timedelta(minutes=1),
        )
    env = {"IG_USERNAME": ME, "DATABASE_URL": database_url, "TIMEZONE": "UTC"}
    yield {"store": store, "now": now, "env": env, "runs": runs, "cwd": tmp_path}
    engine.dispose()


def cli(seeded: dict[str, Any], *args: str) -> Any:
    return run_cli(*args, env=seeded["env"], cwd=seeded["cwd"])


def counted(store: Store, table: str, since: datetime) -> Counter[str]:
    """Likes per UTC day straight from the database, to hold the report against."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.text(f"SELECT liked_at FROM {table} WHERE account = :me AND NOT skipped"),  # noqa: S608  # fixed names
            {"me": ME},
        ).all()
    days: Counter[str] = Counter()
    for (at,) in rows:
        at = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        if at >= since:
            days[at.date().isoformat()] += 1
    return days


def test_report_numbers_match_the_database(seeded: dict[str, Any]) -> None:
    result = cli(seeded, "report", "--since", "7d", "--json")
    assert result.code == 0, result.output
    data = json.loads(result.stdout)
    since = datetime.fromisoformat(data["since"])
    stories, posts = counted(seeded["store"], "story", since), counted(seeded["store"], "post", since)
    assert data["story_likes"] == sum(stories.values()) == 3
    assert data["post_likes"] == sum(posts.values()) == 2
    assert {d["date"]: d["story_likes"] for d in data["per_day"] if d["story_likes"]} == dict(stories)
    assert {d["date"]: d["post_likes"] for d in data["per_day"] if d["post_likes"]} == dict(posts)
    assert len(data["per_day"]) in (7, 8)  # every day of the window, empty ones too
    requests: Counter[str] = Counter()
    for hours, _command, _outcome, count in seeded["runs"]:
        started = seeded["now"] - timedelta(hours=hours)
        if started >= since:
            requests[started.date().isoformat()] += count
    assert {d["date"]: d["requests"] for d in data["per_day"] if d["requests"]} == dict(requests)
    assert data["requests"] == 19 and data["runs"] == 5
    per_target = {t["username"]: (t["story_likes"], t["post_likes"]) for t in data["per_target"]}
    assert per_target == {"alice": (3, 2), "bob": (0, 0), "carol": (0, 0)}  # dave is disabled
    assert [b["command"] for b in data["cooldowns"]["started"]] == ["run-stories"]
    assert data["cooldowns"]["runs_that_waited"] == 1
    assert data["never_liked"] == ["carol"]  # bob was liked, before the window
    assert {t["username"]: t["why"] for t in data["not_checked"]} == {
        "bob": "not checked within 6 h",
        "carol": "never checked",
    }


def test_a_shorter_window_counts_less(seeded: dict[str, Any]) -> None:
    data = json.loads(cli(seeded, "report", "--since", "24h", "--json").stdout)
    assert (data["story_likes"], data["post_likes"], data["requests"]) == (2, 1, 9)
    assert data["cooldowns"]["started"] == []


def test_report_text_and_its_bar_chart_on_a_terminal(seeded: dict[str, Any]) -> None:
    plain = cli(seeded, "report")
    assert plain.code == 0, plain.output
    assert "3 story likes, 2 post likes, 19 requests in 5 runs" in plain.stdout
    assert "█" not in plain.stdout  # no terminal: no chart
    assert "never liked  carol" in plain.stdout
    assert "carol (never checked)" in plain.stdout
    term = Terminal(["report"], seeded["env"], seeded["cwd"])
    term.read_until(b"per target")
    assert term.wait() == 0
    assert "█".encode() in term.screen


@pytest.mark.parametrize("since", ["0d", "lots", "400d", "-1h"])
def test_a_bad_since_is_78(seeded: dict[str, Any], since: str) -> None:
    result = cli(seeded, "report", "--since", since)
    assert result.code in (2, 78) and ("--since" in result.output or "Usage" in result.output)


def test_history_newest_first_with_links(seeded: dict[str, Any]) -> None:
    result = cli(seeded, "history", "--json")
    assert result.code == 0, result.output
    items = json.loads(result.stdout)
    liked = [i["liked_at"] for i in items]
    assert liked == sorted(liked, reverse=True) and len(items) == 6  # the skipped story is not a like
    newest = items[0]
    assert newest["kind"] == "story" and newest["target"] == "alice"
    assert newest["url"] == "https://www.instagram.com/stories/alice/3500000000000000001/"
    posts = [i for i in items if i["kind"] == "post"]
    assert [p["url"] for p in posts] == [f"https://www.instagram.com/p/{shortcode(int(p['pk']))}/" for p in posts]
    assert posts[-1]["target"] == "bob"


def test_history_of_one_target_and_a_limit(seeded: dict[str, Any]) -> None:
    bob = json.loads(cli(seeded, "history", "--target", "@Bob", "--json").stdout)
    assert [(i["kind"], i["pk"]) for i in bob] == [("post", "3400000000000000003")]
    two = json.loads(cli(seeded, "history", "--limit", "2", "--json").stdout)
    assert [i["pk"] for i in two] == ["3500000000000000001", "3500000000000000002"]
    text = cli(seeded, "history", "--limit", "1")
    assert text.stdout.strip().endswith("https://www.instagram.com/stories/alice/3500000000000000001/")
    assert cli(seeded, "history", "--target", "zed").code == 2  # usage, as the exit-code table says
    assert cli(seeded, "history", "--target", "not a name!").code == 2
    assert json.loads(cli(seeded, "history", "--target", "carol", "--json").stdout) == []


def test_shortcode_matches_instagram() -> None:
    for pk in (1, 63, 64, 3_400_000_000_000_000_001, 2_847_123_456_789_012_345):
        assert reporting.shortcode(pk) == shortcode(pk)
    assert reporting.link("post", "3400000000000000001_101", None) == (
        f"https://www.instagram.com/p/{shortcode(3_400_000_000_000_000_001)}/"
    )


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("7d", timedelta(days=7)),
        ("24h", timedelta(hours=24)),
        ("90m", timedelta(minutes=90)),
        ("2w", timedelta(weeks=2)),
        ("3", timedelta(days=3)),
    ],
)
def test_since_durations(text: str, span: timedelta) -> None:
    assert reporting.parse_since(text) == span
    with pytest.raises(UsageError):  # a value typed on the command line: 2, not a configuration error
        reporting.parse_since("yesterday")
    with pytest.raises(UsageError):
        reporting.parse_since("0d")


def test_report_and_history_count_only_the_likes_this_tool_sent(store: Store) -> None:
    """A run that liked 18 stories and found 12 already liked: status said 18, report said 30, and history listed
    the 12 as liked at the run's time. Found ones are kept for bookkeeping and said apart, never counted."""
    from story_liker.jobs.stories import run_stories
    from story_liker.settings import load
    from tests.fake import ME, Harness, ScriptedInstagram, story, tray_of

    names = {100 + n: f"user{n}" for n in range(6)}
    limits = {"story_likes_per_hour": 50, "story_likes_per_10_minutes": 50}  # the counting is the point here
    h = Harness(store, overrides={"target_accounts": ",".join(names.values()), **limits})
    h.store_session()
    reels = {pk: [story(pk, n, at=h.clock(), has_liked=n < 2) for n in range(5)] for pk in names}  # 2 of 5 liked
    run_stories(
        h.deps(ScriptedInstagram(h.clock, tray=tray_of(reels, names), reels=reels)), dry_run=False, max_likes=None
    )
    settings = load(ig_username=ME, timezone="UTC")
    window = reporting.Window(h.clock() - timedelta(days=1), h.clock() + timedelta(minutes=1))
    data = reporting.report_data(h.store, settings, ME, window=window)
    assert data["story_likes"] == 18 and data["found_already_liked"] == {"story": 12, "post": 0}
    assert "found already liked (in the app, not counted as likes): 12 stories" in reporting.report_text(
        data, bars=False
    )
    history = reporting.history_data(h.store, ME, target=None, limit=100)
    assert len(history) == 18
    assert "12 stories" in reporting.digest_text(data)


# --- days in the account's time zone, counted by the database --------------------------------------------------

BERLIN_AUTUMN = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)  # 03:00 CEST is 02:00 CET: the day has 25 hours


def test_segments_cut_the_window_where_the_offset_changes() -> None:
    from zoneinfo import ZoneInfo

    window = reporting.Window(datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 10, 30, tzinfo=UTC))
    pieces = reporting.segments(window, ZoneInfo("Europe/Berlin"))
    assert [(p.start, p.end, p.offset) for p in pieces] == [
        (window.start, BERLIN_AUTUMN, 7200),
        (BERLIN_AUTUMN, window.end, 3600),
    ]
    assert [p.offset for p in reporting.segments(window, UTC)] == [0]
    year = reporting.Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert [p.offset for p in reporting.segments(year, ZoneInfo("Europe/Berlin"))] == [3600, 7200, 3600]


def test_report_days_are_the_time_zones_across_a_change_of_offset(store: Store) -> None:
    """Likes and runs a minute either side of local midnight, before and after the clocks went back: each on the
    day Europe/Berlin says, as Python's own conversion says, while the database does the grouping."""
    from zoneinfo import ZoneInfo

    from story_liker.settings import load

    zone = ZoneInfo("Europe/Berlin")
    store.sync_targets(ME, ["alice", "bob"], BERLIN_AUTUMN - timedelta(days=9))
    ids = {t.username: stored_id(t) for t in store.targets(ME)}
    store.update_targets({ids[name]: {"user_pk": PKS[name]} for name in ids})
    times = [
        datetime(2026, 10, 23, 21, 59, tzinfo=UTC),  # 23:59 CEST on the 23rd
        datetime(2026, 10, 23, 22, 0, tzinfo=UTC),  # 00:00 CEST on the 24th
        datetime(2026, 10, 24, 21, 59, tzinfo=UTC),  # 23:59 CEST on the 24th
        datetime(2026, 10, 24, 22, 0, tzinfo=UTC),  # 00:00 CEST on the 25th
        datetime(2026, 10, 25, 22, 59, tzinfo=UTC),  # 23:59 CET on the 25th
        datetime(2026, 10, 25, 23, 0, tzinfo=UTC),  # 00:00 CET on the 26th
        datetime(2026, 10, 26, 23, 0, tzinfo=UTC),  # 00:00 CET on the 27th
    ]
    for n, at in enumerate(times):
        user = "alice" if n % 2 else "bob"
        store.record_stories(ME, [LikedStory(f"9{n}", PKS[user], at)], at, counted=True)
        store.record_posts(
            ME,
            [LikedPost(f"8{n}", PKS[user], "photo", at), LikedPost(f"7{n}", PKS[user], "photo", at)],
            at,
            counted=True,
        )
        store.start_run(f"r{n}", account=ME, command="run-stories", now=at)
        store.finish_run(
            f"r{n}",
            exit_code=75 if n == 3 else 0,
            outcome="throttled" if n == 3 else "ok",
            counts={"requests": n + 1},
            now=at,
        )
    store.start_run("other", account="someone", command="run-stories", now=times[0])  # another account's: not counted
    window = reporting.Window(datetime(2026, 10, 22, tzinfo=UTC), datetime(2026, 10, 28, tzinfo=UTC))
    data = reporting.report_data(store, load(ig_username=ME, timezone="Europe/Berlin"), ME, window=window)
    expected: Counter[str] = Counter(at.astimezone(zone).date().isoformat() for at in times)
    requests: Counter[str] = Counter()
    for n, at in enumerate(times):
        requests[at.astimezone(zone).date().isoformat()] += n + 1
    assert {d["date"]: d["story_likes"] for d in data["per_day"] if d["story_likes"]} == expected
    assert {d["date"]: d["post_likes"] for d in data["per_day"] if d["post_likes"]} == {
        k: 2 * v for k, v in expected.items()
    }
    assert {d["date"]: d["runs"] for d in data["per_day"] if d["runs"]} == expected
    assert {d["date"]: d["requests"] for d in data["per_day"] if d["requests"]} == requests
    assert [d["date"] for d in data["per_day"]] == [f"2026-10-{day}" for day in range(22, 29)]
    assert {d["date"]: d["cooldowns_started"] for d in data["per_day"] if d["cooldowns_started"]} == {"2026-10-25": 1}
    assert data["cooldowns"]["started"] == [{"at": times[3].isoformat(), "command": "run-stories"}]
    assert {t["username"]: (t["story_likes"], t["post_likes"]) for t in data["per_target"]} == {
        "bob": (4, 8),
        "alice": (3, 6),
    }
    assert (data["story_likes"], data["post_likes"], data["runs"]) == (7, 14, 7)
    assert data["never_liked"] == []


def test_the_reads_of_a_long_history_are_indexed(store: Store) -> None:
    """What status, history and report read of the likes walks an index (SQLite's plans), never a whole table."""
    if store.engine.dialect.name != "sqlite":
        pytest.skip("the query plans checked are SQLite's")
    steps: list[str] = []

    def explain(connection: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
            steps.extend(str(row[-1]) for row in rows)

    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    store.sync_targets(ME, ["alice"], now)
    window = reporting.Window(now - timedelta(days=7), now)
    sa.event.listen(store.engine, "before_cursor_execute", explain)
    try:
        store.last_story_likes(ME)
        store.last_post_likes(ME)
        store.liked_history(ME, target_user_pk=None, limit=50)
        store.liked_history(ME, target_user_pk=101, limit=50)
        store.likes_per_day(ME, reporting.segments(window, UTC))
        store.likes_per_target(ME, window.start, window.end)
        store.found_liked_between(ME, window.start, window.end)
        store.last_runs(ME)
        store.last_success(ME, "run-posts")
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", explain)
    reads = [
        step
        for step in steps
        if step.split()[:2] in (["SCAN", t] for t in ("story", "post", "run"))
        or step.split()[:2] in (["SEARCH", t] for t in ("story", "post", "run"))
    ]
    assert len(reads) >= 9, steps
    assert all("INDEX" in step for step in reads), reads

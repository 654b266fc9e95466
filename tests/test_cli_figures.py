"""``materials figures``: the burden figures on the server console, counted from known activity.

The county of tests/conftest.py does, through the services, exactly this:
- 东镇 uploads three materials (one of them twice), 西乡 one;
- 扶贫办 downloads two of 东镇's (one twice), 统计局 one of them: 3 reuses of 2 documents;
- 扶贫办 accepts a 东镇 material instead of asking (answered from the repository), asks 西乡
  (approved, joined by 统计局, answered with an older material: repeated), and asks 东镇 for
  something that falls overdue; 统计局 is refused once and leaves one draft.
Everything happens now, so this month's span holds it all.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from api.cli import main
from services import documents, requests
from services.access import Principal
from services.backends import Backends, open_backends
from services.catalog import county_today
from services.demo.county import upload
from services.models import COUNTY_TIME, AuditEvent, User
from services.requests import RequestFields
from tests.conftest import (
    EAST,
    POVERTY,
    STATS,
    WEST,
    make_settings,
    seed_county,
    sequence_and_verify,
)

COUNTS = (
    "uploads",
    "reused_documents",
    "reuses",
    "requests",
    "answered_from_repository",
    "joined",
    "answered_by_township",
    "repeated",
    "refused",
    "overdue",
)
# Per row: the counts above, then hours saved (2 h per request spared, 0.5 h per reuse).
EXPECTED = {
    "township": {
        EAST: (3, 2, 3, 2, 1, 0, 0, 0, 0, 1, 3.5),
        WEST: (1, 0, 0, 3, 0, 1, 1, 1, 1, 0, 2.0),
    },
    "department": {
        POVERTY: (0, 2, 2, 3, 1, 0, 1, 1, 0, 1, 3.0),
        STATS: (0, 1, 1, 2, 0, 1, 0, 0, 1, 0, 2.5),
    },
}
COUNTY_TOTALS = (4, 2, 3, 5, 1, 1, 1, 1, 1, 1, 5.5)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def principal(backends: Backends, username: str) -> Principal:
    with backends.db.session() as session:
        user = session.scalars(select(User).where(User.username == username)).one()
        return Principal.of(user)


def material(backends: Backends, username: str, name: str) -> str:
    content = f"{name}：本月走访农户若干户，记录如下。".encode()
    return upload(
        backends,
        principal=principal(backends, username),
        filename=f"{name}.txt",
        fields={"category": "工作总结"},
        content=content,
    ).id


def download(backends: Backends, username: str, document_id: str) -> None:
    _, chunks = documents.download(
        backends, principal=principal(backends, username), document_id=document_id, ip=None
    )
    for _ in chunks:
        pass


def activity(backends: Backends) -> None:
    east = [material(backends, "east", name) for name in ("一月总结", "二月总结", "三月总结")]
    material(backends, "east", "一月总结")  # the same bytes again: not an upload
    west = material(backends, "west", "西镇总结")
    for username, document_id in (
        ("poverty", east[0]),
        ("poverty", east[0]),
        ("poverty", east[1]),
        ("stats", east[0]),
    ):
        download(backends, username, document_id)

    poverty, stats, coord = (principal(backends, u) for u in ("poverty", "stats", "coord"))
    west_clerk = principal(backends, "west")
    due = county_today() + timedelta(days=5)

    def ask(who: Principal, township: str, title: str, *, asked_on: date | None = None) -> int:
        """A draft due in five days, or (asked earlier) due the day after it was asked."""
        now = datetime.combine(asked_on, time(9), tzinfo=COUNTY_TIME) if asked_on else None
        day = asked_on + timedelta(days=1) if asked_on else due
        fields = RequestFields(township, title, category="工作总结", due=day)
        return requests.create(backends, principal=who, fields=fields, ip=None, now=now).request.id

    def send(who: Principal, request_id: int) -> None:
        requests.send(backends, principal=who, request_id=request_id, reason="需要", ip=None)

    found = ask(poverty, EAST, "一月总结")
    requests.accept(backends, principal=poverty, request_id=found, document_id=east[0], ip=None)

    asked = ask(poverty, WEST, "西镇总结")
    send(poverty, asked)
    requests.approve(backends, principal=coord, request_id=asked, ip=None)
    joining = ask(stats, WEST, "西镇工作总结")
    requests.join(backends, principal=stats, request_id=joining, other_id=asked, ip=None)
    requests.answer(backends, principal=west_clerk, request_id=asked, document_ids=[west], ip=None)

    refused = ask(stats, WEST, "西镇统计表")
    send(stats, refused)
    requests.refuse(
        backends,
        principal=coord,
        request_id=refused,
        reason="不属于乡镇职责",
        document_id=None,
        ip=None,
    )
    ask(stats, EAST, "东镇草稿")  # stays a draft: not counted

    late = ask(poverty, EAST, "东镇逾期材料", asked_on=county_today() - timedelta(days=10))
    send(poverty, late)
    requests.approve(backends, principal=coord, request_id=late, ip=None)
    requests.run_due_dates(backends)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("figures") / "data"
    backends = open_backends(make_settings(directory))
    try:
        seed_county(backends)
        activity(backends)
    finally:
        backends.close()
    return directory


def this_month() -> str:
    return county_today().strftime("%Y-%m")


def csv_rows(result: Result) -> dict[str, tuple[float, ...]]:
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(result.stdout_bytes.decode("utf-8-sig"))))
    assert rows[0] == ["key", *COUNTS, "hours_saved"]
    return {row[0]: tuple(float(value) for value in row[1:]) for row in rows[1:]}


@pytest.mark.parametrize("by", ["township", "department"])
def test_csv_counts_the_known_activity(by: str, data_dir: Path) -> None:
    month = this_month()
    result = run(
        "figures", "--from", month, "--to", month, "--by", by, "--csv", "--data-dir", str(data_dir)
    )
    assert csv_rows(result) == {**EXPECTED[by], "全县": COUNTY_TOTALS}


def test_csv_by_county_is_one_row(data_dir: Path) -> None:
    result = run("figures", "--by", "county", "--csv", "--data-dir", str(data_dir))
    assert csv_rows(result) == {"全县": COUNTY_TOTALS}


def test_the_text_table_is_for_people(data_dir: Path) -> None:
    result = run("figures", "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "减负成效（按乡镇，全部期间）"
    assert lines[1].split() == [
        "单位",
        "上传材料",
        "被复用材料",
        "复用次数",
        "材料需求",
        "库内直接获取",
        "并入同类需求",
        "乡镇答复",
        "重复索要",
        "未予准入",
        "逾期需求",
        "节省工时（小时）",
    ]
    rows = {line.split()[0]: line.split()[1:] for line in lines[3:] if not line.startswith("-")}
    expected = {**EXPECTED["township"], "全县": COUNTY_TOTALS}
    assert rows == {key: [f"{value:g}" for value in row] for key, row in expected.items()}
    # Aligned: every line of the table is as wide as its headings (Chinese characters count 2).
    widths = {len(line) + sum(1 for ch in line if ord(ch) > 0x2E80) for line in lines[1:]}
    assert len(widths) == 1


def test_a_span_without_activity_counts_nothing(data_dir: Path) -> None:
    result = run(
        "figures", "--from", "2020-01", "--to", "2020-06", "--csv", "--data-dir", str(data_dir)
    )
    assert set(csv_rows(result).values()) == {(0,) * (len(COUNTS) + 1)}


def test_reading_the_figures_is_audited_as_the_console_operator(data_dir: Path) -> None:
    assert run("figures", "--by", "department", "--data-dir", str(data_dir)).exit_code == 0
    backends = open_backends(make_settings(data_dir))
    try:
        with backends.db.session() as session:
            event = session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "figures_read")
                .order_by(AuditEvent.id.desc())
                .limit(1)
            ).one()
            assert event.actor.startswith("cli:")
            assert (event.outcome, event.details["by"]) == ("allowed", "department")
        assert sequence_and_verify(backends).ok
    finally:
        backends.close()


def test_bad_input_is_refused(data_dir: Path) -> None:
    bad_by = run("figures", "--by", "village", "--data-dir", str(data_dir))
    assert bad_by.exit_code == 2  # click's usage error
    bad_period = run("figures", "--from", "2026-13", "--data-dir", str(data_dir))
    assert bad_period.exit_code == 1
    assert '"invalid_period"' in bad_period.stdout
    backwards = run("figures", "--from", "2026-06", "--to", "2026-01", "--data-dir", str(data_dir))
    assert backwards.exit_code == 1

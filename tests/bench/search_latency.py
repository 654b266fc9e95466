"""Benchmark: index a synthetic Chinese corpus into the SQLite FTS5 index and time searches.

Run: ``.venv/bin/python -m tests.bench.search_latency [--docs 10000] [--chars 2000] [--index F]``.
Prints the indexing rate and the median / p95 / max latency of about 200 varied searches (words,
phrases, dates, character fragments, misses, filters, scopes) against the target (p95 under
50 ms), with their CPU time and the load average. The corpus is generated with a fixed seed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from services.search import IndexedDocument, ReadScope, SearchQuery, TextAnalyzer
from services.search._sqlite import SqliteSearchIndex

TOWNSHIPS = [
    "城关镇", "东坝镇", "西河乡", "南山镇", "北湖街道", "青石乡",
    "白沙镇", "红岩乡", "金桥街道", "柳林镇", "石门乡", "新华街道",
]  # fmt: skip
DEPARTMENTS = list(range(100, 112))
CATEGORIES = ["工作总结", "会议纪要", "统计报表", "通知", "工作留痕", "请示报告", "台账", "其他"]
SUBJECTS = [
    "县扶贫办", "组织部", "纪委监委", "统计局", "民政局", "农业农村局", "乡村振兴局", "财政局",
    "镇党委", "村两委", "驻村工作队", "第一书记", "网格员", "帮扶责任人", "村委会", "卫健局",
]  # fmt: skip
VERBS = [
    "开展", "落实", "推进", "部署", "督查", "核实", "走访", "召开", "完成", "组织", "整改",
    "排查", "统计", "审核", "上报", "宣传", "检查", "复核", "调度", "培训",
]  # fmt: skip
OBJECTS = [
    "脱贫攻坚工作", "入户走访", "精准扶贫政策", "低保户动态调整", "危房改造验收", "饮水安全排查",
    "产业帮扶项目", "扶贫资金使用情况", "防返贫监测", "建档立卡户信息", "易地扶贫搬迁后续扶持",
    "医疗保障政策", "义务教育控辍保学", "就业技能培训", "小额信贷发放", "光伏扶贫电站运维",
    "人居环境整治", "森林防火巡查", "防汛值班", "疫情防控", "秸秆禁烧", "矛盾纠纷排查",
    "党员学习教育", "基层党建", "集体经济发展", "农田水利建设", "道路养护", "乡村振兴示范点",
]  # fmt: skip
DETAILS = [
    "共计{n}户", "涉及资金{n}万元", "覆盖{n}个行政村", "整改问题{n}个", "参加人员{n}人",
    "发放补助{n}万元", "完成率百分之{n}", "走访群众{n}人次", "建立台账{n}本", "拍摄照片{n}张",
]  # fmt: skip
CONNECTORS = ["同时", "此外", "按照要求", "根据县里部署", "经研究", "截至目前", "下一步", "会上"]
CN_QUARTERS = ["一", "二", "三", "四"]
TARGET_P95_MS = 50  # issue 10: embedded search at 10,000 documents


def sentence(rng: random.Random) -> str:
    parts = [
        rng.choice(CONNECTORS) + "，" if rng.random() < 0.3 else "",
        rng.choice(SUBJECTS),
        rng.choice(VERBS),
        rng.choice(OBJECTS),
        "，" + rng.choice(DETAILS).format(n=rng.randint(2, 980)),
    ]
    if rng.random() < 0.2:
        year, quarter = rng.randint(2019, 2023), rng.randint(1, 4)
        ordinal = "第" if rng.random() < 0.5 else ""
        parts.insert(0, f"{year}年{ordinal}{CN_QUARTERS[quarter - 1]}季度，")
    elif rng.random() < 0.2:
        day = date(rng.randint(2019, 2023), rng.randint(1, 12), rng.randint(1, 28))
        parts.insert(0, f"{day.year}年{day.month}月{day.day}日，")
    return "".join(parts) + "。"


def corpus(count: int, chars: int, seed: int = 20240601) -> list[IndexedDocument]:
    rng = random.Random(seed)
    documents = []
    start = datetime(2019, 1, 1, tzinfo=UTC)
    for number in range(count):
        body_parts: list[str] = []
        while sum(len(part) for part in body_parts) < chars:
            body_parts.append(sentence(rng))
            if rng.random() < 0.1:
                body_parts.append("\n")
        year, quarter = rng.randint(2019, 2023), rng.randint(1, 4)
        township = rng.randrange(len(TOWNSHIPS))
        category = rng.choice(CATEGORIES)
        when = f"{year}年第{CN_QUARTERS[quarter - 1]}季度"
        title = f"{TOWNSHIPS[township]}{when}{rng.choice(OBJECTS)}{category}"
        visibility = rng.choices(["departments", "restricted", "private"], [7, 2, 1])[0]
        restricted = visibility == "restricted"
        period_start = date(year, 3 * quarter - 2, 1)
        period_end = (period_start + timedelta(days=92)).replace(day=1) - timedelta(days=1)
        documents.append(
            IndexedDocument(
                id=f"doc-{number:06}",
                title=title,
                filename=f"{title}.docx",
                category=category,
                tags=tuple(rng.sample(OBJECTS, 2)),
                description=sentence(rng) if rng.random() < 0.5 else "",
                body="".join(body_parts),
                township_id=township + 1,
                township_name=TOWNSHIPS[township],
                visibility=visibility,
                department_ids=tuple(rng.sample(DEPARTMENTS, 2)) if restricted else (),
                period=f"{year}-Q{quarter}",
                period_start=period_start,
                period_end=period_end,
                created_at=start + timedelta(minutes=number * 17),
                content_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            )
        )
    return documents


def queries(count: int, seed: int = 7) -> list[tuple[str, SearchQuery]]:
    """Varied searches, each labelled with its kind."""
    rng = random.Random(seed)
    scopes = [
        ReadScope(everything=True),
        ReadScope(department_id=DEPARTMENTS[0]),
        ReadScope(township_id=3),
    ]
    makers: dict[str, Callable[[], str]] = {
        "word": lambda: rng.choice(["扶贫", "低保户", "台账", "入户走访", "统计", "督查", "光伏"]),
        "phrase": lambda: rng.choice(OBJECTS),
        "two words": lambda: f"{rng.choice(SUBJECTS)} {rng.choice(OBJECTS)}",
        "sentence": lambda: rng.choice(SUBJECTS) + rng.choice(VERBS) + rng.choice(OBJECTS),
        "date": lambda: rng.choice(
            [
                f"{rng.randint(2019, 2023)}年第{rng.choice(CN_QUARTERS)}季度",
                f"{rng.randint(2019, 2023)}年{rng.randint(1, 12)}月",
                f"{rng.randint(2019, 2023)}",
            ]
        ),
        "fragment": lambda: rng.choice(["村振", "贫监", "危房", "饮水", "辍保"]),
        "township": lambda: rng.choice(TOWNSHIPS),
        "miss": lambda: rng.choice(["航天飞机", "量子计算", "zzqx", "不存在的词语"]),
        "syntax": lambda: rng.choice(['"扶贫', "扶贫*", "(台账 OR", "NEAR(a b)", "-统计:"]),
        "empty": lambda: "",
    }
    result = []
    kinds = list(makers)
    for number in range(count):
        kind = kinds[number % len(kinds)]
        filters: dict[str, object] = {}
        roll = rng.random()
        if roll < 0.15:
            filters["category"] = rng.choice(CATEGORIES)
        elif roll < 0.3:
            year = rng.randint(2019, 2023)
            filters["period_from"], filters["period_to"] = date(year, 1, 1), date(year, 6, 30)
        elif roll < 0.4:
            filters["township_id"] = rng.randint(1, len(TOWNSHIPS))
        query = SearchQuery(
            text=makers[kind](),
            scope=scopes[number % len(scopes)],
            page=rng.choice([1, 1, 1, 2, 5]),
            **filters,  # type: ignore[arg-type]
        )
        result.append((kind, query))
    return result


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=10_000, help="documents to index")
    parser.add_argument("--chars", type=int, default=2_000, help="body length of each document")
    parser.add_argument("--queries", type=int, default=200, help="searches to time")
    parser.add_argument("--batch", type=int, default=100, help="documents per upsert")
    parser.add_argument(
        "--index",
        type=Path,
        help="keep the index in this file; when it already holds the corpus, search it as it is",
    )
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        path = args.index
        if path is None:
            directory = stack.enter_context(
                tempfile.TemporaryDirectory(dir=Path.cwd(), prefix=".bench-search-")
            )
            path = Path(directory) / "search.sqlite3"
        analyzer = TextAnalyzer()
        index = SqliteSearchIndex(path, analyzer=analyzer)
        stack.callback(index.close)
        if index.count() == args.docs:
            print(f"searching the {args.docs} documents already in {path}")
            # Loaded on first use otherwise, as indexing does: not what a search costs.
            analyzer.segmenter.load()
            analyzer.pinyin("扶贫")
        else:
            build(index, path, corpus(args.docs, args.chars), args.batch)
        search(index, queries(args.queries))


def build(
    index: SqliteSearchIndex, path: Path, documents: list[IndexedDocument], batch: int
) -> None:
    total_chars = sum(len(document.body) for document in documents)
    began = time.perf_counter()
    for offset in range(0, len(documents), batch):
        index.upsert(documents[offset : offset + batch])
    seconds = time.perf_counter() - began
    size_mib = path.stat().st_size / 2**20
    print(
        f"indexed {len(documents)} documents ({total_chars / 1e6:.1f} M characters) in "
        f"{seconds:.1f} s: {len(documents) / seconds:.0f} documents/s, index {size_mib:.0f} MiB"
    )


def search(index: SqliteSearchIndex, searches: list[tuple[str, SearchQuery]]) -> None:
    # The search runs in this thread (SQLite included): its CPU time is the work a search takes,
    # its wall time that plus any wait for a core other processes hold.
    load = os.getloadavg()[0]
    timings: list[float] = []
    cpu: list[float] = []
    by_kind: dict[str, list[float]] = defaultdict(list)
    totals: dict[str, list[int]] = defaultdict(list)
    for kind, query in searches:
        began, began_cpu = time.perf_counter(), time.thread_time()
        result = index.search(query)
        elapsed = (time.perf_counter() - began) * 1000
        cpu.append((time.thread_time() - began_cpu) * 1000)
        timings.append(elapsed)
        by_kind[kind].append(elapsed)
        totals[kind].append(result.total)
    p95 = percentile(timings, 0.95)
    print(
        f"{len(timings)} searches: median {statistics.median(timings):.1f} ms, "
        f"p95 {p95:.1f} ms, max {max(timings):.1f} ms "
        f"(target: p95 under {TARGET_P95_MS} ms, {'met' if p95 < TARGET_P95_MS else 'missed'})"
    )
    print(
        f"  CPU time: median {statistics.median(cpu):.1f} ms, p95 {percentile(cpu, 0.95):.1f} ms, "
        f"max {max(cpu):.1f} ms; load average {load:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores"
    )
    for kind, values in by_kind.items():
        print(
            f"  {kind:<10} median {statistics.median(values):6.1f} ms  "
            f"max {max(values):6.1f} ms  hits median {statistics.median(totals[kind]):.0f}"
        )


if __name__ == "__main__":
    main()

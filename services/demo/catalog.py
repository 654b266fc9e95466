"""The sample catalog (材料目录) and the months of submissions that fill its slots.

Periods are counted back from today, so the coverage grids show filled, missing and overdue
cells whenever the demo is loaded: ``back=1`` is the last period that has ended.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from services import catalog
from services.access import Principal
from services.backends import Backends
from services.catalog import ItemFields
from services.demo.county import DEPARTMENTS, TOWNSHIPS, upload
from services.metadata import period_bounds, period_containing, period_label
from services.models import CatalogItem, Cycle, Document, Sharing

CHENGGUAN, HEKOU = TOWNSHIPS
ZHENXING, TONGJI = DEPARTMENTS
VILLAGES = {CHENGGUAN: ("东街村", "西街村", "南关村"), HEKOU: ("河口村", "柳湾村", "石桥村")}
CLERKS = {CHENGGUAN: "chengguan", HEKOU: "hekou"}


def _numbers(*parts: str) -> Callable[[int, int], int]:
    """Stable made-up figures for one material: ``n(low, high)`` differs per call and material."""
    seed = int(hashlib.sha256("/".join(parts).encode()).hexdigest(), 16)
    calls = iter(range(1, 100))

    def n(low: int, high: int) -> int:
        step: int = 7 ** next(calls)
        return low + (seed // step) % (high - low + 1)

    return n


def poverty_summary(township: str, period: str) -> tuple[str, bytes]:
    label, n = period_label(period), _numbers(township, period, "扶贫")
    text = f"""# {township}{label}扶贫工作总结

## 一、基本情况
{label}，{township}共走访脱贫户和监测对象{n(90, 180)}户，\
覆盖全部{len(VILLAGES[township])}个行政村；新识别监测对象{n(2, 9)}户，消除返贫风险{n(3, 12)}户。

## 二、主要措施
1. 落实“四个不摘”要求，镇村干部结对帮扶{n(40, 90)}户。
2. 发放产业奖补资金{n(12, 60)}万元，扶持特色种养户{n(20, 70)}户。
3. 组织务工培训{n(2, 6)}场，帮助{n(30, 120)}名脱贫劳动力稳岗就业。

## 三、存在问题和下一步打算
部分监测户收入来源单一，产业抗风险能力弱。下一阶段继续开展“回头看”，确保不发生规模性返贫。
"""
    return f"{township}{label}扶贫工作总结.md", text.encode()


_LEDGER_ROWS = (
    ("张某某", "脱贫不稳定户", "因病", "医疗救助、家庭医生签约"),
    ("王某某", "边缘易致贫户", "因学", "雨露计划补助、助学贷款"),
    ("李某某", "突发严重困难户", "因灾", "临时救助、危房改造"),
    ("赵某某", "脱贫不稳定户", "缺劳动力", "公益性岗位、低保兜底"),
    ("刘某某", "边缘易致贫户", "务工不稳", "就业培训、劳务输出"),
    ("陈某某", "脱贫不稳定户", "因残", "残疾人两项补贴、产业奖补"),
)


def monitoring_ledger(township: str, period: str) -> tuple[str, bytes]:
    label, n = period_label(period), _numbers(township, period, "台账")
    lines = ["序号,村组,户主,监测类型,主要风险,帮扶措施,责任人,状态"]
    for number in range(1, n(3, 5) + 1):
        name, kind, risk, measure = _LEDGER_ROWS[(number + n(0, 5)) % len(_LEDGER_ROWS)]
        village = VILLAGES[township][number % 3]
        state = "风险已消除" if n(0, 2) == 0 else "持续帮扶"
        group = f"{village}{n(1, 6)}组"
        lines.append(f"{number},{group},{name},{kind},{risk},{measure},{village}包村干部,{state}")
    return f"{township}{label}防返贫监测台账.csv", ("\n".join(lines) + "\n").encode()


def party_building_summary(township: str, period: str) -> tuple[str, bytes]:
    label, n = period_label(period), _numbers(township, period, "党建")
    text = f"""{township}{label}度党建工作总结

一、基本情况
全{township[-1]}共有基层党组织{n(12, 30)}个，党员{n(300, 700)}名，全年发展党员{n(5, 15)}名。

二、主要工作
（一）落实“三会一课”制度，开展主题党日活动{n(10, 24)}次。
（二）整顿软弱涣散村党组织{n(1, 3)}个，选派驻村第一书记{n(2, 5)}名。
（三）村级集体经济收入全部达到{n(5, 15)}万元以上。

三、下一步打算
以党建引领乡村振兴，持续为基层减负，把干部从填表报数中解放出来。
"""
    return f"{township}{label}度党建工作总结.txt", text.encode()


def flood_report(township: str, period: str) -> tuple[str, bytes]:
    label, n = period_label(period), _numbers(township, period, "防汛")
    text = f"""# {township}{label}防汛工作报告

本季度开展河道和山塘水库巡查{n(20, 60)}次，排查隐患点{n(5, 15)}处，已整改{n(3, 5)}处。
储备防汛物资：编织袋{n(2, 6)}千条，救生衣{n(80, 200)}件，冲锋舟{n(1, 3)}艘。
汛期值班{n(150, 400)}人次，提前转移避险群众{n(0, 60)}人，未发生人员伤亡。
"""
    return f"{township}{label}防汛工作报告.md", text.encode()


@dataclass(frozen=True)
class DemoItem:
    """A catalog item, how its materials read, and which periods each township submitted
    (counted back from the last period that has ended)."""

    name: str
    category: str
    cycle: Cycle
    due_days: int
    departments: tuple[str, ...]
    sharing: Sharing
    description: str
    material: Callable[[str, str], tuple[str, bytes]]
    submitted: dict[str, tuple[int, ...]] = field(default_factory=dict)
    townships: tuple[str, ...] | None = None  # None: every township owes it


POVERTY = DemoItem(
    "季度扶贫工作总结",
    "工作总结",
    Cycle.quarterly,
    15,
    (ZHENXING, TONGJI),
    Sharing.unconditional,
    "各乡镇每季度结束后 15 日内报送本季度巩固脱贫成果、防止返贫工作总结。",
    poverty_summary,
    {CHENGGUAN: (1, 2, 3), HEKOU: (2, 3)},
)
LEDGER = DemoItem(
    "月度防返贫监测台账",
    "工作台账",
    Cycle.monthly,
    10,
    (ZHENXING,),
    Sharing.conditional,
    "监测对象名单及帮扶措施，含户主信息，仅向县乡村振兴局共享。",
    monitoring_ledger,
    {CHENGGUAN: (2, 3, 4, 5), HEKOU: (1, 3, 4)},
)
PARTY = DemoItem(
    "年度党建工作总结",
    "工作总结",
    Cycle.yearly,
    31,
    (ZHENXING, TONGJI),
    Sharing.unconditional,
    "每年 1 月底前报送上一年度基层党建工作总结。",
    party_building_summary,
    {CHENGGUAN: (1,)},
)
FLOOD = DemoItem(
    "防汛工作季报",
    "工作报告",
    Cycle.quarterly,
    10,
    (ZHENXING,),
    Sharing.unconditional,
    "沿河乡镇每季度报送河道巡查、防汛物资和值班情况。",
    flood_report,
    {HEKOU: (2,)},
    townships=(HEKOU,),
)
ITEMS = (POVERTY, LEDGER, PARTY, FLOOD)

_UNITS = {Cycle.monthly: "month", Cycle.quarterly: "quarter", Cycle.yearly: "year"}


def ended_period(cycle: Cycle, today: date, back: int) -> str:
    """The period ``back`` periods before the current one (1: the last that has ended)."""
    unit = _UNITS[cycle]
    period = period_containing(today, unit)
    for _ in range(back):
        period = period_containing(period_bounds(period)[0] - timedelta(days=1), unit)
    return period


@dataclass(frozen=True)
class Catalog:
    """The demo's catalog items by name, and the documents filling their slots."""

    items: dict[str, CatalogItem]
    filled: dict[tuple[str, str, str], Document]  # (item name, township, period) → document

    def item_id(self, demo_item: DemoItem) -> str:
        return str(self.items[demo_item.name].id)


def owed_from(item: DemoItem, today: date) -> date:
    """The item's 起始日期: the first day of the oldest period a township submitted, as if the
    county started using the catalog then (earlier periods are 无需报送, not overdue)."""
    oldest = max((back for backs in item.submitted.values() for back in backs), default=1)
    return period_bounds(ended_period(item.cycle, today, oldest))[0]


def create_catalog(
    backends: Backends, *, coordinator: Principal, today: date
) -> dict[str, CatalogItem]:
    """The coordinator's catalog items, created when missing and owed from the first period
    submitted; all of them by name."""
    existing = {item.name: item for item in catalog.list_items(backends)}
    for item in ITEMS:
        if item.name in existing:
            continue
        existing[item.name] = catalog.create_item(
            backends,
            principal=coordinator,
            fields=ItemFields(
                name=item.name,
                category=item.category,
                cycle=item.cycle.value,
                due_days=item.due_days,
                owed_from=owed_from(item, today),
                townships=list(item.townships) if item.townships else "all",
                departments=list(item.departments),
                sharing=item.sharing.value,
                description=item.description,
            ),
            ip=None,
        )
    return existing


def submit(
    backends: Backends,
    *,
    users: dict[str, Principal],
    items: dict[str, CatalogItem],
    today: date,
) -> dict[tuple[str, str, str], Document]:
    """Each township's submissions filling catalog slots, oldest period first."""
    filled: dict[tuple[str, str, str], Document] = {}
    for item in ITEMS:
        for township, backs in item.submitted.items():
            for back in sorted(backs, reverse=True):
                period = ended_period(item.cycle, today, back)
                filename, content = item.material(township, period)
                filled[item.name, township, period] = upload(
                    backends,
                    principal=users[CLERKS[township]],
                    filename=filename,
                    fields={"catalog_item": str(items[item.name].id), "period": period},
                    content=content,
                )
    return filled


def load_catalog(backends: Backends, *, users: dict[str, Principal], today: date) -> Catalog:
    """The catalog and its submissions (idempotent: items by name, uploads by their bytes)."""
    items = create_catalog(backends, coordinator=users["jianfu"], today=today)
    return Catalog(items=items, filled=submit(backends, users=users, items=items, today=today))

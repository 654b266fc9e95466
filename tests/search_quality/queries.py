"""Labelled Chinese queries: what a department types, and which generated materials answer it.

Labels are predicates over the facts a material was generated from (township, kind, topic, period,
agenda), never document ids. A material is relevant when the query names its subject; one that
mentions the words in passing (a meeting's agenda item, a line of a monthly report) is a
distractor, except for the queries that ask for meetings or for a phrase inside longer words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tests.search_quality.corpus import Material
from tests.search_quality.vocabulary import TRACES

__all__ = ["FORGIVING", "MAX_RELEVANT", "QUERIES", "LabelledQuery", "label"]

MAX_RELEVANT = 15

Predicate = Callable[[Material], bool]


@dataclass(frozen=True)
class Query:
    text: str
    # segmentation two_char numbers township village colloquial category title topic, and the
    # forgiving kinds: traditional (characters), typo (one wrong character), syntax (OR, "…",
    # -word), metadata (a township or category typed in the box).
    kind: str
    relevant: Predicate


@dataclass(frozen=True)
class LabelledQuery:
    text: str
    kind: str
    relevant: frozenset[str]  # material keys


def about(
    topic: str | Sequence[str] | None = None,
    *,
    township: str | None = None,
    kind: str | Sequence[str] | None = None,
    period: str | None = None,
    agenda: str | None = None,
) -> Predicate:
    """Materials on a topic (or of a meeting that decided on it), narrowed by the other facts."""
    topics = (topic,) if isinstance(topic, str) else topic
    kinds = (kind,) if isinstance(kind, str) else kind

    def matches(material: Material) -> bool:
        return (
            (topics is None or material.topic in topics)
            and (township is None or material.township == township)
            and (kinds is None or material.kind in kinds)
            and (period is None or material.period == period)
            and (agenda is None or agenda in material.agenda)
        )

    return matches


def mentioning(phrase: str, *, township: str | None = None) -> Predicate:
    """Materials whose title, tags or text hold the phrase (for words inside longer words)."""
    return lambda m: m.mentions(phrase) and (township is None or m.township == township)


FLOOD_WORK = about("flood", kind=("notice", "summary", "patrol"))

QUERIES: tuple[Query, ...] = (
    # A word must be found inside longer dictionary words: 扶贫 in 扶贫办, 光伏扶贫电站, 扶贫车间.
    Query("扶贫", "segmentation", mentioning("扶贫")),
    Query("扶贫办", "segmentation", mentioning("扶贫办")),
    Query("扶贫办督导", "segmentation", mentioning("扶贫办督导")),
    Query("驻村工作队", "segmentation", mentioning("驻村工作队")),
    Query("第一书记", "segmentation", mentioning("第一书记")),
    Query("防返贫监测", "segmentation", about("monitoring")),
    Query("两不愁三保障 柳湾镇", "segmentation", mentioning("两不愁三保障", township="柳湾镇")),
    Query("人居环境整治", "segmentation", about("environment")),
    Query("脱贫攻坚工作总结", "segmentation", about("poverty", kind="summary")),
    Query("建档立卡脱贫户统计表", "segmentation", about("poverty", kind="table")),
    # Two-character words, which jieba keeps whole and which also occur in passing elsewhere.
    Query("低保", "two_char", about("dibao")),
    Query("党建", "two_char", about("party")),
    Query("防汛", "two_char", about("flood")),
    Query("秸秆", "two_char", about("straw")),
    Query("光伏", "two_char", mentioning("光伏")),
    Query("医保", "two_char", about("medical")),
    # Numbers and dates, written the ways people write them.
    Query("2020年第三季度", "numbers", about(period="2020-Q3")),
    Query("2020年三季度", "numbers", about(period="2020-Q3")),
    Query("2020Q3 脱贫户", "numbers", about("poverty", kind="table", period="2020-Q3")),
    Query("二〇二〇年三季度统计表", "numbers", about(kind="table", period="2020-Q3")),
    Query("2020年第二季度 脱贫户统计表", "numbers", about(kind="table", period="2020-Q2")),
    Query("2023年12月", "numbers", about(period="2023-12")),
    Query("2023年12月防返贫监测户统计表", "numbers", about(kind="table", period="2023-12")),
    Query("126户", "numbers", mentioning("126户")),
    Query("2019年脱贫攻坚工作总结", "numbers", about("poverty", kind="summary", period="2019")),
    # A township's name with a subject.
    Query("河口乡 脱贫", "township", about(("poverty", "monitoring"), township="河口乡")),
    Query("柳湾镇 秸秆禁烧", "township", about("straw", township="柳湾镇")),
    Query("青山街道 党建", "township", about("party", township="青山街道")),
    Query("石桥乡 低保", "township", about("dibao", township="石桥乡")),
    Query("城关镇 人居环境整治", "township", about("environment", township="城关镇")),
    Query("河口乡 防汛", "township", about("flood", township="河口乡")),
    Query("青山街道 森林防火", "township", about("fire", township="青山街道")),
    # A village's name (the dictionary keeps it whole): only materials that name that village, not
    # those of 柳湾镇 that say 村 elsewhere, nor 马家湾村 for 柳湾村.
    Query("柳湾村", "village", mentioning("柳湾村")),
    Query("杨柳村", "village", mentioning("杨柳村")),
    Query("北山村", "village", mentioning("北山村")),
    Query("高家庄村", "village", mentioning("高家庄村")),
    Query("龍泉村", "village", mentioning("龙泉村")),
    Query("马家湾村 入户走访", "village", lambda m: m.kind == "visit" and m.mentions("马家湾村")),
    # Everyday wording that reaches the same materials through the words they share.
    Query("贫困户走访 石桥乡", "colloquial", about(kind="visit", township="石桥乡")),
    Query("石桥乡入户走访记录", "colloquial", about(kind="visit", township="石桥乡")),
    Query("禁止焚烧秸秆", "colloquial", about("straw", kind="notice")),
    Query("秸秆禁烧通告", "colloquial", about("straw", kind="notice")),
    Query("汛期值班", "colloquial", FLOOD_WORK),
    Query("防汛值班", "colloquial", FLOOD_WORK),
    Query("农村垃圾整治", "colloquial", about("environment")),
    Query("低保户核查", "colloquial", about(kind="check")),
    Query("低保家庭入户核查", "colloquial", about(kind="check")),
    # A kind of material about a subject.
    Query("会议纪要 防汛", "category", about(kind="minutes", agenda="flood")),
    Query("会议纪要 秸秆禁烧", "category", about(kind="minutes", agenda="straw")),
    Query("会议纪要 低保", "category", about(kind="minutes", agenda="dibao")),
    Query("防汛 通知", "category", about("flood", kind="notice")),
    Query("实施方案 人居环境整治", "category", about("environment", kind="plan")),
    Query("安全生产 通知", "category", about("safety", kind="notice")),
    Query("2021年 乡村振兴工作总结", "category", about("revival", kind="summary", period="2021")),
    Query("秸秆 统计表", "category", about("straw", kind="table")),
    Query("低保 统计表", "category", about("dibao", kind="table")),
    # A fragment of one document's title: exactly one answer.
    Query("马家湾村蔬菜大棚项目验收", "title", about("project", township="河口乡")),
    Query("杨柳村村级光伏电站项目验收", "title", about("project", township="柳湾镇")),
    Query("城关镇2021年党建工作总结", "title", about("party", township="城关镇", kind="summary")),
    Query(
        "关于开展2022年度低保对象复核工作的通知",
        "title",
        about("dibao", township="石桥乡", kind="notice"),
    ),
    Query(
        "石桥乡2020年第三季度脱贫攻坚工作总结",
        "title",
        about("poverty", township="石桥乡", kind="summary", period="2020-Q3"),
    ),
    # Subjects in their own words.
    Query("安全生产", "topic", about("safety")),
    Query("森林防火", "topic", about("fire")),
    Query("申报产业奖补项目", "topic", about("revival", kind="notice")),
    Query("主题党日", "topic", about("party", kind="notice")),
    Query("城乡居民医保参保", "topic", about("medical")),
)


def either(*predicates: Predicate) -> Predicate:
    return lambda m: any(predicate(m) for predicate in predicates)


FORGIVING: tuple[Query, ...] = (
    # Typed on a traditional-character IME, or pasted from a traditional document.
    Query("扶貧辦", "traditional", mentioning("扶贫办")),
    Query("低保戶核查", "traditional", about(kind="check")),
    Query("秸稈禁燒通告", "traditional", about("straw", kind="notice")),
    Query("會議紀要 防汛", "traditional", about(kind="minutes", agenda="flood")),
    Query("青山街道 黨建", "traditional", about("party", township="青山街道")),
    Query("城鄉居民醫保參保", "traditional", about("medical")),
    # One wrong character: the partial matches, or (nothing found) the first suggestion followed.
    Query("秸杆禁烧", "typo", about("straw")),
    Query("低宝户核查", "typo", about(kind="check")),
    Query("防汛值斑", "typo", FLOOD_WORK),
    Query("党健", "typo", about("party")),
    Query("光扶", "typo", mentioning("光伏")),
    Query("森林防伙", "typo", about("fire")),
    # Query syntax: alternatives, an exact phrase, an exclusion.
    Query(
        "马家湾村蔬菜大棚 OR 杨柳村村级光伏电站",
        "syntax",
        either(about("project", township="河口乡"), about("project", township="柳湾镇")),
    ),
    Query("森林防火 或 秸秆禁烧 通知", "syntax", about(("fire", "straw"), kind="notice")),
    Query("“两不愁三保障” 柳湾镇", "syntax", mentioning("两不愁三保障", township="柳湾镇")),
    Query('"入户走访记录" 石桥乡', "syntax", about(kind="visit", township="石桥乡")),
    Query("低保 -统计表", "syntax", lambda m: about("dibao")(m) and m.kind != "table"),
    # A township or a category typed in the box, as the filters would choose them.
    Query("城关镇 工作留痕", "metadata", lambda m: m.township == "城关镇" and m.category == TRACES),
    Query("河口乡 会议纪要", "metadata", about(kind="minutes", township="河口乡")),
    Query("石桥乡 统计报表", "metadata", about(kind="table", township="石桥乡")),
    Query("青山街道 实施方案", "metadata", about(kind="plan", township="青山街道")),
)


def label(corpus: Sequence[Material]) -> list[LabelledQuery]:
    """Every query with the keys of the materials that answer it."""
    return [
        LabelledQuery(
            query.text,
            query.kind,
            frozenset(m.key for m in corpus if query.relevant(m)),
        )
        for query in (*QUERIES, *FORGIVING)
    ]

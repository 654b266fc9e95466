"""Materials on 脱贫攻坚 (2019–2020), 防返贫监测 and 乡村振兴: summaries, visits, tables, plans.

Each function writes one township's materials through the ``Composer``, in a fixed order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.search_quality.vocabulary import (
    CAUSES,
    CG,
    CN_NUMERALS,
    HK,
    INCOME_SOURCES,
    LW,
    NOTICE,
    OPINIONS,
    PLAN,
    PLANTED,
    QS,
    RISKS,
    SQ,
    SUMMARY,
    TABLE,
    TRACES,
    Township,
    period_words,
)

if TYPE_CHECKING:
    from tests.search_quality.corpus import Composer


# -- 脱贫攻坚 (2019–2020) -------------------------------------------------------------------


def poverty_summaries(c: Composer, t: Township) -> None:
    for period in ("2019", "2020-Q3", "2020"):
        poverty_summary(c, t, period)


def poverty_summary(c: Composer, t: Township, period: str) -> None:
    words = period_words(period)
    year = int(period[:4])
    quarterly = "-Q" in period
    until = "2020年9月底" if quarterly else f"{year}年底"
    scope = "本季度" if quarterly else "全年"
    first, second = c.pick(t.industries, 2)
    households = c.n(260, 680)
    people = households * 3 - c.n(20, 90)
    lifted = households - c.n(3, 40) if year == 2019 else households
    visited = PLANTED if (t is SQ and quarterly) else c.n(140, 900)
    body = [
        f"{words}，{t.name}{t.committee}、政府坚持以脱贫攻坚统揽经济社会发展全局，对照脱贫退出"
        f"标准，聚焦义务教育、基本医疗、住房安全和饮水安全，扎实推进各项帮扶措施落地见效。现将"
        f"{'本季度' if quarterly else '全年'}工作情况总结如下。",
        "一、基本情况",
        f"全{t.unit}辖{len(t.villages)}个村（社区），共有建档立卡贫困户{households}户{people}人。"
        f"截至{until}，累计脱贫{lifted}户，贫困发生率降至{c.n(0, 2)}.{c.n(10, 99)}%。",
    ]
    if period == "2020":
        body.append(f"与2019年底相比，剩余未脱贫人口全部达到脱贫标准，{scope}无新增致贫。")
    body += [
        "二、主要工作",
        f"（一）产业帮扶。围绕{first}、{second}等主导产业，发放产业奖补资金"
        f"{c.n(40, 380)}万元，带动贫困户{c.n(90, 400)}户发展产业增收。",
        f"（二）就业帮扶。开发公益性岗位{c.n(30, 160)}个，组织贫困劳动力外出务工"
        f"{c.n(300, 1500)}人，举办{first}技能培训{c.n(3, 12)}期。",
        f"（三）教育医疗保障。落实雨露计划等教育资助{c.n(80, 400)}人次，贫困人口家庭医生签约"
        "服务实现全覆盖，住院费用报销比例达到90%以上。",
        f"（四）入户走访。组织帮扶干部开展遍访贫困户行动，{scope}共走访贫困户{visited}户，逐户"
        f"核实收入和帮扶措施落实情况，建立问题清单{c.n(20, 90)}条，已全部整改销号。",
    ]
    if (t in (HK, LW, SQ) and quarterly) or (t is CG and year == 2019):
        body.append(f"{scope}接受县扶贫办督导检查{c.n(2, 4)}次，反馈问题均已整改到位。")
    if t is LW and period == "2020":
        body.append(
            f"杨柳村村级光伏扶贫电站全年发电收益{c.n(20, 60)}万元，通过设置公益岗位和"
            "奖补方式分配到户。"
        )
    if t is QS and period == "2020":
        body.append(f"在龙泉村建成扶贫车间1处，吸纳周边群众就近就业{c.n(20, 60)}人。")
    body += [
        "三、存在的问题",
        c.rng.choice(
            (
                "部分贫困户收入以务工和转移性收入为主，产业增收基础还不牢固。",
                "个别村帮扶措施与群众需求对接不够精准，内生动力有待激发。",
                "部分村组道路、饮水等基础设施仍有短板。",
            )
        ),
        "四、下一步工作打算",
        f"持续抓好{second}等产业项目，落实各项帮扶政策，确保脱贫成果经得起检验。",
        *c.signature(t, year + (1 if not quarterly else 0), 1 if not quarterly else 10),
    ]
    c.add(
        t,
        category=SUMMARY,
        kind="summary",
        topic="poverty",
        period=period,
        title=f"{t.name}{words}脱贫攻坚工作总结",
        body=body,
    )


def visits(c: Composer, t: Township) -> None:
    """Seven household-visit records: three or four before 2021, the rest after."""
    slots = [(2019, m) for m in (4, 8, 11)] + [(2020, m) for m in (3, 6, 9)]
    slots += [(y, m) for y in (2021, 2022) for m in (3, 6, 9, 12)]
    early = 4 if t in (HK, QS) else 3
    chosen = c.rng.sample(slots[:6], early) + c.rng.sample(slots[6:], 7 - early)
    roles = ["包村干部", "帮扶责任人", "驻村工作队队员", "驻村第一书记", "村党支部书记"]
    for number, (year, month) in enumerate(sorted(chosen)):
        village = t.villages[number % len(t.villages)]
        escorted = t is HK and year == 2019
        visit(c, t, village, year, month, c.rng.choice(roles), escorted=escorted)


def visit(
    c: Composer, t: Township, village: str, year: int, month: int, role: str, *, escorted: bool
) -> None:
    early = year <= 2020
    visitor = c.person()
    body = [
        f"{t.name}{'脱贫攻坚' if early else '巩固脱贫成果'}入户走访记录表",
        f"走访时间：{c.day(year, month)}",
        f"走访地点：{village}{c.n(1, 9)}组",
        f"走访人员：{visitor}（{role}）、{c.person()}（村委会委员）",
    ]
    if escorted:
        body.append(f"陪同人员：县扶贫办督导组{c.person()}")
    for number in range(c.n(2, 3)):
        members = c.n(2, 6)
        if early:
            status = f"建档立卡贫困户，致贫原因：{c.rng.choice(CAUSES)}"
        elif c.rng.random() < 0.4:
            status = f"脱贫户（原建档立卡贫困户），{c.rng.choice(RISKS)}，已纳入防返贫监测"
        else:
            status = "脱贫户（原建档立卡贫困户），经排查暂无返贫风险"
        body += [
            f"走访对象{CN_NUMERALS[number]}：{c.household()}户，{status}，家庭人口{members}人，"
            f"劳动力{c.n(0, members)}人。",
            f"家庭收入：上年家庭人均纯收入约{c.n(5200, 16800)}元，主要来源为"
            f"{c.rng.choice(INCOME_SOURCES)}。",
        ]
        if early:
            body.append(
                "“两不愁三保障”情况：吃穿不愁，义务教育、基本医疗、住房安全和饮水安全均有保障。"
            )
        body += [
            f"帮扶措施：{measure(c, t)}；{measure(c, t)}。",
            f"群众意见：{c.rng.choice(OPINIONS)}。",
        ]
    body.append(f"走访人签字：{visitor}    户主签字：已签字（原件存{village}档案室）")
    kind_of_household = "贫困户" if early else "脱贫户"
    c.add(
        t,
        category=TRACES,
        kind="visit",
        topic="poverty",
        period=f"{year}-{month:02d}",
        title=f"{t.name}{village}{kind_of_household}入户走访记录（{year}年{month}月）",
        body=body,
        village=village,
        tags=["入户走访", "工作留痕"] if c.rng.random() < 0.5 else [],
    )


def measure(c: Composer, t: Township) -> str:
    industry = c.rng.choice(t.industries)
    return c.rng.choice(
        (
            f"落实产业奖补资金{c.n(800, 5000)}元，支持发展{industry}",
            f"安排公益性岗位一个，月工资{c.n(500, 1200)}元",
            f"协助申请小额信贷{c.n(2, 5)}万元用于{industry}",
            f"落实雨露计划教育资助{c.n(1500, 3000)}元",
            "协助办理家庭医生签约和慢性病卡",
            f"推荐参加{industry}技能培训",
            "协调解决安全饮水问题，入户管道已接通",
            f"联系县内企业务工岗位，家中{c.n(1, 2)}人已外出务工",
        )
    )


def poverty_tables(c: Composer, t: Township) -> None:
    for quarter in (2, 3):
        period = f"2020-Q{quarter}"
        words = period_words(period)
        title = f"{t.name}{words}建档立卡脱贫户统计表"
        header = ["村（社区）", "总户数", "总人口", "建档立卡户数", "建档立卡人口"]
        header += ["已脱贫户数", "已脱贫人口", "未脱贫户数", "备注"]
        data = []
        for village in t.villages:
            homes = c.n(280, 900)
            listed = c.n(40, 160)
            remaining = c.n(0, 6) if quarter == 2 else c.n(0, 2)
            data.append(
                [
                    *(village, homes, homes * 3 + c.n(10, 300)),
                    *(listed, listed * 3 - c.n(0, 20)),
                    *(listed - remaining, (listed - remaining) * 3, remaining, ""),
                ]
            )
        end = "2020年6月30日" if quarter == 2 else "2020年9月30日"
        c.add(
            t,
            category=TABLE,
            kind="table",
            topic="poverty",
            period=period,
            title=title,
            rows=[
                [title],
                [
                    f"填报单位：{t.government}",
                    f"填报人：{c.staff[t.name]['clerk']}",
                    f"填报日期：{c.day(2020, 3 * quarter + 1)}",
                ],
                header,
                *data,
                [f"说明：本表数据截至{end}，由各村（社区）填报，{t.unit}统计站汇总。"],
            ],
        )


# -- 防返贫监测 and 乡村振兴 (2021 on) ------------------------------------------------------


def monitoring(c: Composer, t: Township) -> None:
    year = c.rng.choice((2021, 2022))
    c.add(
        t,
        category=PLAN,
        kind="plan",
        topic="monitoring",
        period=str(year),
        title=f"{t.name}防止返贫动态监测和帮扶工作实施方案",
        body=[
            f"为巩固拓展脱贫攻坚成果，守住不发生规模性返贫的底线，根据县委、县政府关于健全"
            f"防返贫动态监测和帮扶机制的部署，结合{t.name}实际，制定本方案。",
            "一、监测对象",
            "以家庭为单位，重点监测脱贫不稳定户、边缘易致贫户和突发严重困难户。",
            "二、监测方式",
            "采取农户自主申报、村组干部排查、部门信息比对相结合的方式，每月开展一次防返贫监测"
            "排查，对脱贫户和监测户实行动态管理。",
            "三、帮扶措施",
            f"对纳入监测的农户，根据风险类型落实产业、就业、{c.rng.choice(t.industries)}"
            "技术指导、医疗救助等帮扶措施，风险消除后按程序标注。",
            "四、工作要求",
            f"各村要明确防返贫监测信息员，{t.unit}每季度对监测帮扶工作开展督查。",
            *c.signature(t, year, c.n(2, 5)),
        ],
    )
    periods = ["2023-12"]
    if t in (HK, LW):
        periods.append("2023-11")
    if t in (SQ, QS):
        periods.append("2021-Q3")
    for period in periods:
        monitoring_table(c, t, period)


def monitoring_table(c: Composer, t: Township, period: str) -> None:
    words = period_words(period)
    title = f"{t.name}{words}防返贫监测户统计表"
    header = ["村（社区）", "脱贫户数", "脱贫人口", "监测户数", "监测人口"]
    header += ["其中：脱贫不稳定户", "边缘易致贫户", "突发严重困难户", "已消除风险户数"]
    data = []
    for village in t.villages:
        watched = c.n(3, 14)
        unstable = c.n(0, watched)
        edge = c.n(0, watched - unstable)
        lifted = c.n(40, 160)
        data.append(
            [
                *(village, lifted, lifted * 3 - c.n(0, 15), watched, watched * 3),
                *(unstable, edge, watched - unstable - edge, c.n(0, watched)),
            ]
        )
    year, _, rest = period.partition("-")
    if rest.startswith("Q"):
        filed = c.day(int(year), 10)
    else:  # a month's table is filed early in the next month
        month = int(rest) % 12 + 1
        filed = c.day(int(year) + (month == 1), month)
    c.add(
        t,
        category=TABLE,
        kind="table",
        topic="monitoring",
        period=period,
        title=title,
        rows=[
            [title],
            [f"填报单位：{t.government}", f"填报日期：{filed}"],
            header,
            *data,
            ["填报说明：监测对象按防返贫动态监测和帮扶机制认定。"],
        ],
    )


def revival(c: Composer, t: Township) -> None:
    village, project = t.project
    for year in (2021, c.rng.choice((2022, 2023, 2024, 2025))):
        first, second = c.pick(t.industries, 2)
        body = [
            f"{year}年，{t.name}坚持把巩固拓展脱贫攻坚成果同乡村振兴有效衔接作为重中之重，"
            "统筹推进产业、人才、文化、生态、组织振兴，各项工作取得新成效。",
            "一、巩固脱贫成果",
            f"健全防返贫动态监测机制，全年新识别监测户{c.n(8, 40)}户，"
            f"已消除风险{c.n(5, 30)}户，守住了不发生规模性返贫的底线。",
            "二、产业发展",
            f"围绕{first}、{second}两大主导产业，新建产业基地{c.n(2, 9)}个，"
            f"推进{village}{project}项目建设，带动群众户均增收{c.n(1200, 4800)}元。",
            "三、乡村建设",
            f"深入开展农村人居环境整治，新建和改造村组道路{c.n(5, 40)}公里。",
        ]
        if t is LW:
            body.append(f"杨柳村村级光伏电站运行平稳，年发电收益{c.n(20, 60)}万元。")
        if c.rng.random() < 0.5:
            body.append(f"落实低保兜底保障{c.n(80, 400)}户，困难群众基本生活有保障。")
        body += [
            "四、下一步打算",
            f"持续壮大{first}产业，推动乡村振兴各项任务落地见效。",
            *c.signature(t, year + 1, 1),
        ]
        c.add(
            t,
            category=SUMMARY,
            kind="summary",
            topic="revival",
            period=str(year),
            title=f"{t.name}{year}年乡村振兴工作总结",
            body=body,
        )
    if t in (CG, HK, SQ):
        year = c.rng.choice((2022, 2023, 2024))
        industry = c.rng.choice(t.industries)
        c.add(
            t,
            category=PLAN,
            kind="plan",
            topic="revival",
            period=str(year),
            title=f"{t.name}{year}年产业发展实施方案",
            body=[
                f"为推动乡村振兴产业发展，结合{t.name}资源禀赋，制定本方案。",
                "一、发展目标",
                f"到{year}年底，{industry}种养规模达到{c.n(800, 5000)}亩（头），"
                f"带动农户{c.n(200, 900)}户。",
                "二、重点任务",
                f"建设{industry}标准化示范基地，培育新型经营主体{c.n(3, 12)}家，完善利益联结机制。",
                "三、保障措施",
                "整合衔接资金，落实产业奖补政策，强化技术服务。",
                *c.signature(t, year, 3),
            ],
        )
    if t in (HK, LW, QS):
        year = c.rng.choice((2022, 2023, 2024))
        c.add(
            t,
            category=NOTICE,
            kind="notice",
            topic="revival",
            period=str(year),
            title=f"{t.name}关于申报{year}年产业奖补项目的通知",
            body=[
                "各村（社区）：",
                f"为支持群众发展{c.rng.choice(t.industries)}等特色产业，现就申报{year}年"
                "产业奖补项目有关事项通知如下：",
                "一、申报对象：辖区内脱贫户、监测户和带动农户增收的新型经营主体。",
                f"二、申报时间：{c.day(year, 4)}前报{t.unit}农业农村办。",
                "三、奖补标准：按实际发展规模分档奖补，具体标准见附件。",
                *c.signature(t, year, 3),
            ],
        )

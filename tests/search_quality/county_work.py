"""The rest of a township's year: meetings, 防汛, 秸秆禁烧, 低保, 党建, 人居环境, 安全, 医保 ….

Each function writes one township's materials through the ``Composer``, in a fixed order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.search_quality.vocabulary import (
    AGENDA_TITLES,
    CG,
    CN_NUMERALS,
    HAZARDS,
    HK,
    LW,
    MINUTES,
    NOTICE,
    PLAN,
    QS,
    SQ,
    STUDY,
    SUMMARY,
    TABLE,
    TRACES,
    Township,
)

if TYPE_CHECKING:
    from tests.search_quality.corpus import Composer


# -- 会议纪要 ------------------------------------------------------------------------------


def minutes(c: Composer, t: Township) -> None:
    """Eight committee meetings: two in flood season, two in autumn, two in winter."""
    months = [
        *c.rng.sample((5, 6, 7, 8), 2),
        *c.rng.sample((9, 10, 11), 2),
        *c.rng.sample((1, 2, 3), 2),
        4,
        12,
    ]
    years = list(range(2019, 2026))
    dates = set()
    for month in months:
        year = 2023 if (t is HK and month == 12) else c.rng.choice(years)
        while (year, month) in dates or ((year, month) == (2023, 12) and t is not HK):
            year = c.rng.choice(years)
        dates.add((year, month))
        general = ["party", "safety", "environment", "revival"]
        general.append("poverty" if year <= 2020 else "monitoring")
        if month in (5, 6, 7, 8):
            seasonal = ["flood"]
        elif month in (9, 10, 11):
            seasonal = ["straw"]
        elif month in (1, 2, 3):
            seasonal = ["dibao"]
        else:
            seasonal = []
        agenda = seasonal + c.pick(general, 3 - len(seasonal))
        meeting(c, t, year, month, agenda)


def meeting(c: Composer, t: Township, year: int, month: int, agenda: list[str]) -> None:
    staff = c.staff[t.name]
    body = [
        f"{c.day(year, month)}，{staff['secretary']}同志主持召开{t.committee}会议，"
        f"{t.committee}班子成员出席，{t.unit}属有关单位负责人列席。会议传达学习了"
        f"{c.rng.choice(STUDY)}，研究部署了近期重点工作。现将会议议定事项纪要如下：",
    ]
    for number, topic in enumerate(agenda):
        body.append(f"{CN_NUMERALS[number]}、关于{AGENDA_TITLES[topic]}")
        body.append(decision(c, t, topic, year))
    body += [
        f"出席：{staff['secretary']}、{staff['head']}、{staff['deputy']}、{staff['organiser']}",
        f"列席：{staff['civil']}、{c.person()}",
        f"记录：{staff['clerk']}",
    ]
    c.add(
        t,
        category=MINUTES,
        kind="minutes",
        topic="meeting",
        period=f"{year}-{month:02d}",
        title=f"{t.name}{t.committee}会议纪要（{year}年第{c.n(1, 24)}期）",
        body=body,
        agenda=agenda,
        tags=["会议纪要"] if c.rng.random() < 0.4 else [],
    )


def decision(c: Composer, t: Township, topic: str, year: int) -> str:
    deputy = c.staff[t.name]["deputy"]
    return {
        "flood": f"会议听取了{deputy}同志关于{year}年防汛准备工作的汇报。会议要求，各村要落实"
        "防汛责任人，对山洪地质灾害隐患点开展再排查，汛期严格执行24小时值班制度，"
        "确保安全度汛。",
        "straw": f"会议听取了{deputy}同志关于秋季秸秆禁烧工作的汇报。会议要求，实行网格化管理，"
        "干部包片包地块，严防露天焚烧秸秆，同时抓好秸秆还田和综合利用。",
        "dibao": f"会议研究了{year}年度低保对象复核工作。会议要求，民政办牵头组织各村逐户核实，"
        "做到应保尽保、应退尽退，复核结果按程序公示。",
        "party": "会议研究了基层党建工作。会议要求，各村党组织严格落实“三会一课”制度，"
        "抓好党员教育管理，持续整顿软弱涣散村党组织。",
        "poverty": f"会议听取了{deputy}同志关于脱贫攻坚工作的汇报。会议要求，对照脱贫退出标准"
        "逐户排查，组织帮扶干部对贫困户开展一次全覆盖走访，确保按期脱贫。",
        "monitoring": "会议研究了防返贫动态监测工作。会议要求，对脱贫户和监测户开展常态化"
        "排查，发现风险及时纳入监测、落实帮扶。",
        "environment": "会议研究了农村人居环境整治工作。会议要求，各村抓好生活垃圾收运和"
        "村容村貌提升，每月开展一次评比。",
        "safety": "会议研究了安全生产工作。会议要求，开展道路交通、自建房和森林防火隐患排查，"
        "压实企业主体责任。",
        "revival": f"会议研究了{year}年产业发展项目。会议同意将"
        f"{c.rng.choice(t.industries)}基地建设列入项目库，按程序申报衔接资金。",
        "fire": "会议研究了森林防火工作。会议要求，严管野外用火，落实护林员巡山制度。",
    }[topic]


# -- 防汛, 秸秆禁烧, 低保 --------------------------------------------------------------------


def flood(c: Composer, t: Township) -> None:
    year = c.rng.choice((2020, 2021, 2022, 2023, 2024))
    hazards = c.pick(HAZARDS, 2)
    c.add(
        t,
        category=NOTICE,
        kind="notice",
        topic="flood",
        period=f"{year}-05",
        title=f"{t.name}关于做好{year}年汛期防汛工作的通知",
        body=[
            f"各村（社区）、{t.unit}属各单位：",
            f"{year}年汛期即将来临。据县气象局预测，今年汛期降水偏多，防汛形势严峻。为确保安全"
            f"度汛，现就做好{year}年防汛工作通知如下：",
            f"一、压实防汛责任。落实{t.unit}领导包村、村干部包组、党员包户的防汛责任制，"
            "各村要明确防汛责任人和山洪灾害预警员。",
            f"二、全面排查隐患。5月31日前对{hazards[0]}、{hazards[1]}等开展拉网式排查，"
            "建立隐患台账，逐项落实整改措施。",
            f"三、储备防汛物资。各村要储备编织袋、铁锹、救生衣等防汛物资，组建不少于"
            f"{c.n(10, 30)}人的应急抢险队伍。",
            "四、严格汛期值班。汛期实行24小时值班和领导带班制度，值班电话保持畅通，"
            "遇有险情第一时间报告。",
            *c.signature(t, year, 5, f"{t.name}防汛抗旱指挥部"),
        ],
    )
    if not t.river:
        return
    year = c.rng.choice((2020, 2021, 2023))
    c.add(
        t,
        category=SUMMARY,
        kind="summary",
        topic="flood",
        period=str(year),
        title=f"{t.name}{year}年防汛工作总结",
        body=[
            f"{year}年汛期，{t.name}共经历强降雨过程{c.n(4, 11)}次，{t.river}最高水位超警戒"
            f"0.{c.n(2, 9)}米。在县防汛抗旱指挥部的领导下，全{t.unit}上下全力以赴，"
            "实现了人员零伤亡。",
            "一、主要做法",
            "（一）压实防汛责任。逐村落实防汛责任人，签订防汛责任书。",
            f"（二）排查整治隐患。共排查{c.rng.choice(HAZARDS)}等隐患{c.n(12, 60)}处，"
            "已全部落实防范措施。",
            f"（三）严格汛期值班。汛期严格执行24小时值班和领导带班制度，累计安排值班人员"
            f"{c.n(200, 600)}人次，汛期值班记录完整。",
            f"（四）及时转移避险。强降雨期间提前转移受威胁群众{c.n(30, 300)}人。",
            "二、存在问题",
            "部分村防汛物资储备不足，预警设施老化。",
            "三、下一步打算",
            f"加强{t.river}沿岸堤防巡查，完善防汛应急预案。",
            *c.signature(t, year, 10),
        ],
    )
    year = c.rng.choice((2021, 2022, 2023, 2024))
    month = c.rng.choice((6, 7, 8))
    first, second = c.pick(t.villages, 2)
    c.add(
        t,
        category=TRACES,
        kind="patrol",
        topic="flood",
        period=f"{year}-{month:02d}",
        title=f"{t.name}汛期河道巡查记录（{year}年{month}月）",
        body=[
            f"巡查时间：{c.day(year, month)}",
            f"巡查河段：{t.river}{first}段至{second}段",
            f"巡查人员：{c.person()}、{c.person()}（{t.name}防汛办）",
            f"防汛值班人员：{c.person()}、{c.person()}，汛期值班在岗在位。",
            f"发现问题：{c.rng.choice(HAZARDS)}一处，河道内有堆放杂物。",
            "处理情况：已通知所在村清理，设置警示标志，落实专人看守。",
        ],
        village=first,
    )
    if t in (HK, LW):
        year = c.rng.choice((2022, 2023))
        title = f"{t.name}{year}年防汛物资储备统计表"
        header = ["存放地点", "编织袋（条）", "救生衣（件）", "冲锋舟（艘）", "铁锹（把）"]
        header += ["应急照明灯（台）", "管理责任人"]
        data = [
            [
                *(place, c.n(200, 3000), c.n(10, 80), c.n(0, 2)),
                *(c.n(20, 150), c.n(2, 20), c.person()),
            ]
            for place in (f"{t.unit}防汛物资仓库", *t.villages)
        ]
        c.add(
            t,
            category=TABLE,
            kind="table",
            topic="flood",
            period=str(year),
            title=title,
            rows=[[title], [f"填报单位：{t.name}防汛办"], header, *data],
        )


def straw(c: Composer, t: Township) -> None:
    year = c.rng.choice((2019, 2020, 2021, 2022, 2023))
    c.add(
        t,
        category=NOTICE,
        kind="notice",
        topic="straw",
        period=f"{year}-09",
        title=f"{t.name}关于秸秆禁烧工作的通告",
        body=[
            f"为切实做好{year}年秋季秸秆禁烧工作，保护大气环境，保障人民群众生命财产安全，"
            "根据《中华人民共和国大气污染防治法》等规定，现将有关事项通告如下：",
            f"一、禁烧时间：{year}年9月15日至11月30日。",
            f"二、禁烧范围：全{t.unit}行政区域，重点是公路沿线、村庄周边和林地周边。",
            "三、禁止在田间地头、房前屋后露天焚烧秸秆、落叶、杂草，鼓励秸秆还田和离田利用。",
            "四、违反规定焚烧秸秆的，依法予以处罚；造成火灾或严重污染的，依法追究责任。",
            f"五、欢迎群众监督举报，举报电话：0937-{c.n(5100000, 5199999)}。",
            "特此通告。",
            *c.signature(t, year, 9),
        ],
    )
    if t in (HK, LW, SQ):
        year = c.rng.choice((2021, 2022, 2023))
        title = f"{t.name}{year}年秸秆综合利用情况统计表"
        header = ["村（社区）", "播种面积（亩）", "秸秆产生量（吨）", "还田利用（吨）"]
        header += ["饲料化利用（吨）", "离田收储（吨）", "综合利用率"]
        data = []
        for village in t.villages:
            area = c.n(800, 4000)
            produced = area // 2
            used = [c.n(produced // 4, produced // 2), c.n(10, produced // 5)]
            stored = c.n(10, produced // 6)
            rate = min(99, round(100 * (sum(used) + stored) / produced))
            data.append([village, area, produced, *used, stored, f"{rate}%"])
        c.add(
            t,
            category=TABLE,
            kind="table",
            topic="straw",
            period=str(year),
            title=title,
            rows=[
                [title],
                [f"填报单位：{t.government}", f"填报日期：{c.day(year, 12)}"],
                header,
                *data,
                [f"备注：{year}年秋季秸秆禁烧期间，全{t.unit}未发现露天焚烧火点。"],
            ],
        )
    if t in (CG, LW):
        year = c.rng.choice((2021, 2022))
        c.add(
            t,
            category=PLAN,
            kind="plan",
            topic="straw",
            period=str(year),
            title=f"{t.name}{year}年秸秆综合利用实施方案",
            body=[
                "为坚持疏堵结合、以用促禁，巩固秸秆禁烧成果，提高秸秆综合利用水平，制定本方案。",
                "一、目标任务",
                f"全{t.unit}秸秆综合利用率达到{c.n(88, 95)}%以上。",
                "二、主要措施",
                "推广机械化还田，扶持秸秆饲料化和离田收储，建设村级收储点。",
                "三、保障措施",
                f"落实网格化监管责任，{t.unit}村两级干部包片到地块，严防露天焚烧。",
                *c.signature(t, year, 8),
            ],
        )


def dibao(c: Composer, t: Township) -> None:
    village = c.rng.choice(t.villages)
    year = c.rng.choice((2021, 2022, 2023))
    month = c.rng.choice((3, 4, 5))
    civil = c.staff[t.name]["civil"]
    body = [
        f"核查时间：{c.day(year, month)}",
        f"核查人员：{civil}（{t.name}民政办）、{c.person()}（{village}村委会）",
    ]
    households = c.n(2, 3)
    for _ in range(households):
        body += [
            f"核查对象：{c.household()}，低保户，保障人口{c.n(1, 5)}人，"
            f"月人均补助{c.n(300, 620)}元。",
            "家庭情况："
            + c.rng.choice(
                (
                    "户主患慢性病，无稳定收入，子女在外打零工。",
                    "老两口独居，主要靠养老金和低保金生活。",
                    "家中有重度残疾人一名，需长期照料。",
                    "去年务工收入增加，家庭人均收入已超过当地低保标准。",
                )
            ),
            "核查结论：" + c.rng.choice(("符合条件，继续保障。", "建议按程序调整保障金额。")),
        ]
    body.append(
        f"本次入户核查低保家庭{households}户，核查结果已在村务公开栏公示，兜底保障政策落实到位。"
    )
    c.add(
        t,
        category=TRACES,
        kind="check",
        topic="dibao",
        period=f"{year}-{month:02d}",
        title=f"{t.name}{village}低保家庭入户核查记录（{year}年{month}月）",
        body=body,
        village=village,
    )
    notice_year = {CG.name: 2021, SQ.name: 2022, QS.name: 2023}.get(t.name)
    if notice_year:
        households = c.n(120, 480)
        c.add(
            t,
            category=NOTICE,
            kind="notice",
            topic="dibao",
            period=f"{notice_year}-02",
            title=f"{t.name}关于开展{notice_year}年度低保对象复核工作的通知",
            body=[
                "各村（社区）：",
                "为进一步规范最低生活保障管理，做到应保尽保、应退尽退，根据县民政局安排，"
                f"决定在全{t.unit}开展{notice_year}年度低保对象复核工作。现将有关事项通知如下：",
                f"一、复核范围。全{t.unit}现有低保对象{households}户"
                f"{households * 2 + c.n(0, 90)}人，全部纳入本次复核。",
                "二、复核方式。各村组织人员逐户上门了解家庭收入、财产和人口变化情况，"
                "填写复核表，做到一户一档。",
                "三、时间安排。4月底前完成复核，5月底前完成民主评议和公示。",
                "四、工作要求。严禁优亲厚友、人情保、关系保，确保兜底保障精准。",
                *c.signature(t, notice_year, 2),
            ],
        )
    table_year = {HK.name: 2022, SQ.name: 2023, LW.name: 2021}.get(t.name)
    if table_year:
        title = f"{t.name}{table_year}年低保对象统计表"
        header = ["村（社区）", "低保户数（户）", "保障人口（人）"]
        header += ["其中：重度残疾人（人）", "月保障金（元）", "备注"]
        data = []
        for name in t.villages:
            homes = c.n(12, 90)
            people = homes * 2 + c.n(0, 20)
            data.append([name, homes, people, c.n(0, 12), people * c.n(320, 480), ""])
        c.add(
            t,
            category=TABLE,
            kind="table",
            topic="dibao",
            period=str(table_year),
            title=title,
            rows=[
                [title],
                [f"填报单位：{t.name}民政办", f"填报日期：{c.day(table_year, 12)}"],
                header,
                *data,
            ],
        )


# -- 党建, 人居环境, 安全生产, 森林防火, 医保 ------------------------------------------------


def party(c: Composer, t: Township) -> None:
    year = 2021 if t is CG else c.rng.choice((2019, 2020, 2022, 2023, 2024))
    staff = c.staff[t.name]
    c.add(
        t,
        category=SUMMARY,
        kind="summary",
        topic="party",
        period=str(year),
        title=f"{t.name}{year}年党建工作总结",
        body=[
            f"{year}年，{t.name}{t.committee}坚持以党的政治建设为统领，全面加强基层党组织建设，"
            "以高质量党建引领基层治理和乡村振兴。",
            "一、主要工作",
            f"（一）严格落实“三会一课”制度，{t.committee}中心组集中学习{c.n(10, 24)}次，"
            f"书记讲党课{c.n(2, 6)}次。",
            f"（二）整顿软弱涣散村党组织{c.n(1, 3)}个，选优配强村党组织书记。",
            f"（三）发展党员{c.n(8, 30)}名，其中35岁以下青年党员占比超过六成。",
            "（四）每月开展“主题党日”活动，推动党建工作与中心工作深度融合。",
            "二、存在的问题",
            "个别村党组织书记年龄偏大，党建工作创新不足。",
            "三、下一步打算",
            f"实施基层党建提升行动，由{staff['organiser']}同志牵头抓好党员队伍建设。",
            *c.signature(t, year + 1, 1, f"中共{t.name}委员会"),
        ],
    )
    if t in (CG, HK, QS):
        year = c.rng.choice((2021, 2022, 2023, 2024))
        month = c.rng.choice((3, 5, 7, 10))
        theme = c.rng.choice(("学党史、办实事", "强党性、树形象", "党员联系户、服务进万家"))
        c.add(
            t,
            category=NOTICE,
            kind="notice",
            topic="party",
            period=f"{year}-{month:02d}",
            title=f"{t.name}关于开展{year}年{month}月“主题党日”活动的通知",
            body=[
                "各村（社区）党组织：",
                f"本月主题党日以“{theme}”为主题，现将有关事项通知如下：",
                f"一、活动时间：{c.day(year, month)}。",
                "二、活动内容：重温入党誓词，集中学习，开展党员志愿服务。",
                "三、工作要求：各党组织要把主题党日作为加强基层党建的重要抓手，"
                "活动情况及时报送组织办。",
                *c.signature(t, year, month, f"中共{t.name}委员会组织办"),
            ],
        )
    if t in (SQ, QS):
        year = c.rng.choice((2022, 2023))
        c.add(
            t,
            category=PLAN,
            kind="plan",
            topic="party",
            period=str(year),
            title=f"{t.name}{year}年基层党建提升行动实施方案",
            body=[
                "为推动基层党建全面进步、全面过硬，制定本方案。",
                "一、目标任务：所有村党组织达到标准化规范化要求。",
                "二、重点措施：落实“三会一课”，开展党组织书记轮训，建立党员积分管理制度。",
                "三、组织保障：成立党建提升行动领导小组，每季度通报进展。",
                *c.signature(t, year, 3, f"中共{t.name}委员会"),
            ],
        )


def environment(c: Composer, t: Township) -> None:
    if t in (CG, LW, QS):
        year = c.rng.choice((2022, 2023))
        c.add(
            t,
            category=SUMMARY,
            kind="summary",
            topic="environment",
            period=str(year),
            title=f"{t.name}{year}年农村人居环境整治工作总结",
            body=[
                f"{year}年，{t.name}以农村生活垃圾治理、生活污水治理、农村改厕和村容村貌提升"
                "为重点，持续推进农村人居环境整治。",
                f"一、生活垃圾治理。全年清运生活垃圾{c.n(800, 4000)}吨，村庄保洁实现全覆盖。",
                f"二、农村改厕。完成卫生厕所改造{c.n(100, 600)}户，问题厕所全部整改。",
                f"三、村容村貌。拆除残垣断壁{c.n(20, 90)}处，清理房前屋后杂物堆放。",
                "四、存在问题：部分群众环境卫生意识不强，长效管护机制有待完善。",
                *c.signature(t, year + 1, 1),
            ],
        )
    year = c.rng.choice((2021, 2022, 2023))
    c.add(
        t,
        category=PLAN,
        kind="plan",
        topic="environment",
        period=str(year),
        title=f"{t.name}农村人居环境整治提升实施方案",
        body=[
            f"为深入推进农村人居环境整治提升，建设宜居宜业和美乡村，结合{t.name}实际，制定本方案。",
            "一、总体目标",
            f"到{year + 2}年，农村生活垃圾收运处置体系覆盖所有村，卫生厕所普及率达到"
            f"{c.n(85, 95)}%。",
            "二、重点任务",
            "（一）开展村庄清洁行动，整治垃圾乱堆乱放。（二）稳步推进农村改厕。"
            "（三）治理农村生活污水。（四）提升村容村貌。",
            "三、保障措施",
            "建立“门前三包”责任制和月评比制度，将整治成效纳入村级考核。",
            *c.signature(t, year, 4),
        ],
    )


def safety_fire_medical(c: Composer, t: Township) -> None:
    if t in (CG, HK, SQ):
        year = c.rng.choice((2020, 2022, 2024))
        c.add(
            t,
            category=NOTICE,
            kind="notice",
            topic="safety",
            period=f"{year}-04",
            title=f"{t.name}关于开展{year}年安全生产大检查的通知",
            body=[
                f"各村（社区）、{t.unit}属各单位：",
                "为有效防范遏制各类生产安全事故，决定开展安全生产大检查。",
                "一、检查重点：道路交通、自建房、危化品、建筑施工和人员密集场所。",
                "二、方法步骤：自查自改、集中检查、督查整改三个阶段。",
                "三、工作要求：对发现的隐患建立台账，限期整改，重大隐患挂牌督办。",
                *c.signature(t, year, 4),
            ],
        )
    if t in (LW, SQ, QS):
        year = c.rng.choice((2021, 2023))
        c.add(
            t,
            category=SUMMARY,
            kind="summary",
            topic="safety",
            period=str(year),
            title=f"{t.name}{year}年安全生产工作总结",
            body=[
                f"{year}年，{t.name}牢固树立安全发展理念，全年未发生较大以上生产安全事故。",
                f"一、开展隐患排查{c.n(6, 20)}轮，整改隐患{c.n(40, 200)}处。",
                f"二、开展安全生产宣传培训{c.n(5, 20)}场次。",
                "三、存在问题：部分企业主体责任落实不到位。",
                *c.signature(t, year + 1, 1),
            ],
        )
    if t in (LW, SQ, QS):
        year = c.rng.choice((2020, 2022, 2024))
        c.add(
            t,
            category=NOTICE,
            kind="notice",
            topic="fire",
            period=f"{year}-11",
            title=f"{t.name}关于做好{year}年森林防火工作的通告",
            body=[
                f"{year}年11月1日至次年5月31日为森林防火期。防火期内，禁止在林区野外用火，"
                "严禁上坟烧纸、燃放烟花爆竹。",
                "各村护林员要加强巡山，防火期实行24小时值班。",
                "特此通告。",
                *c.signature(t, year, 10, f"{t.name}森林防火指挥部"),
            ],
        )
    if t in (SQ, QS):
        year = c.rng.choice((2021, 2023))
        c.add(
            t,
            category=SUMMARY,
            kind="summary",
            topic="fire",
            period=str(year),
            title=f"{t.name}{year}年森林防火工作总结",
            body=[
                f"{year}年，{t.name}森林防火工作实现零火情。",
                f"一、落实护林员{c.n(20, 60)}名，防火期坚持24小时值班。",
                f"二、清理林下可燃物{c.n(100, 600)}亩。",
                *c.signature(t, year + 1, 1),
            ],
        )
    if t in (CG, HK, LW):
        year = c.rng.choice((2022, 2023, 2024))
        c.add(
            t,
            category=SUMMARY,
            kind="summary",
            topic="medical",
            period=str(year),
            title=f"{t.name}{year}年城乡居民医保参保工作总结",
            body=[
                f"{year}年度城乡居民医保集中参保期间，全{t.unit}参保{c.n(18000, 42000)}人，"
                f"参保率达到{c.n(95, 99)}%，脱贫人口和监测对象应保尽保。",
                "主要做法：一是入户宣传，二是代缴资助，三是线上缴费。",
                *c.signature(t, year + 1, 1),
            ],
        )
    if t in (SQ, QS):
        year = c.rng.choice((2022, 2024))
        c.add(
            t,
            category=NOTICE,
            kind="notice",
            topic="medical",
            period=f"{year}-09",
            title=f"{t.name}关于做好{year + 1}年度城乡居民医保集中参保缴费工作的通知",
            body=[
                "各村（社区）：",
                f"{year + 1}年度城乡居民医保集中征缴期为{year}年9月1日至12月31日，"
                f"个人缴费标准为每人{c.n(350, 400)}元。",
                "请各村组织网格员逐户宣传，确保应保尽保。",
                *c.signature(t, year, 8),
            ],
        )


# -- 项目验收, 月度汇报, 人口统计 -----------------------------------------------------------


def project_report(c: Composer, t: Township) -> None:
    village, project = t.project
    year = c.rng.choice((2021, 2022, 2023, 2024))
    total = c.n(80, 600)
    body = [
        "县乡村振兴局：",
        f"{village}{project}项目于{year}年{c.n(3, 6)}月开工，{c.n(8, 11)}月完工，"
        f"总投资{total}万元，其中财政衔接资金{total * 3 // 4}万元。",
        f"{c.day(year, 12)}，{t.name}组织农业农村办、财政所、{village}村委会及群众代表"
        "对项目进行了验收。",
        "验收结论：项目建设内容与批复一致，工程质量合格，资金使用规范，同意通过验收。",
        f"项目建成后由{village}村股份经济合作社管护运营，收益主要用于村集体经济和带动脱贫户增收。",
    ]
    if t is LW:
        body.insert(2, "该电站原为光伏扶贫电站，本次为扩容改造后的整体验收。")
    body += c.signature(t, year, 12)
    c.add(
        t,
        category=SUMMARY,
        kind="report",
        topic="project",
        period=f"{year}-12",
        title=f"{t.name}关于{village}{project}项目验收情况的报告",
        body=body,
        village=village,
    )


def monthly_reports(c: Composer, t: Township) -> None:
    for year, month in sorted(
        c.rng.sample([(y, m) for y in (2021, 2022, 2024, 2025) for m in (4, 5, 10)], 3)
    ):
        seasonal = (
            f"安排部署汛期防汛工作，排查{c.rng.choice(HAZARDS)}{c.n(3, 20)}处"
            if month == 5
            else f"开展秋收期间秸秆禁烧巡查{c.n(10, 60)}人次"
            if month == 10
            else f"完成春季植树{c.n(100, 900)}亩"
        )
        c.add(
            t,
            category=SUMMARY,
            kind="summary",
            topic="general",
            period=f"{year}-{month:02d}",
            title=f"{t.name}{year}年{month}月份工作汇报",
            body=[
                f"一是巩固脱贫成果，开展入户走访{c.n(100, 600)}户，新识别监测户{c.n(1, 8)}户。",
                f"二是{seasonal}。",
                f"三是抓好基层党建，召开{t.committee}会议{c.n(1, 3)}次。",
                f"四是推进农村人居环境整治，清运垃圾{c.n(50, 400)}吨。",
                *c.signature(t, year, month),
            ],
        )


def photo(c: Composer, t: Township) -> None:
    """A photo proving a visit took place: findable only by what the uploader typed."""
    village = c.rng.choice(t.villages)
    year, month = c.rng.choice((2021, 2022)), c.n(3, 11)
    c.add(
        t,
        category=TRACES,
        kind="photo",
        topic="photo",
        period=f"{year}-{month:02d}",
        title=f"{t.name}{village}入户走访工作照片（{year}年{month}月）",
        picture=len(c.materials),
        village=village,
        tags=["工作留痕"],
    )


def population_table(c: Composer, t: Township) -> None:
    year = c.rng.choice((2020, 2022, 2024))
    title = f"{t.name}{year}年人口基本情况统计表"
    data = []
    for village in t.villages:
        homes = c.n(280, 900)
        people = homes * 3 + c.n(0, 200)
        men = people // 2 + c.n(0, 40)
        data.append([village, homes, people, men, people - men, c.n(150, 600)])
    c.add(
        t,
        category=TABLE,
        kind="table",
        topic="population",
        period=str(year),
        title=title,
        rows=[
            [title],
            [f"填报单位：{t.name}统计站", f"填报日期：{c.day(year + 1, 1)}"],
            ["村（社区）", "户数", "人口", "男", "女", "60岁以上"],
            *data,
        ],
    )

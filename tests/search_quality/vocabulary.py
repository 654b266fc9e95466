"""The townships, names and phrases the corpus is written from, and how periods read in Chinese."""

from __future__ import annotations

from dataclasses import dataclass

# Upload categories, as the county defined them.
SUMMARY, MINUTES, TRACES, TABLE, NOTICE, PLAN = (
    "工作总结",
    "会议纪要",
    "工作留痕",
    "统计报表",
    "通知公告",
    "实施方案",
)


@dataclass(frozen=True)
class Township:
    name: str
    username: str
    villages: tuple[str, ...]
    industries: tuple[str, ...]
    river: str  # empty where no river runs through: no flood summary or patrols there
    project: tuple[str, str]  # (village, project) accepted this township's showcase project

    @property
    def unit(self) -> str:
        return "街道" if self.name.endswith("街道") else self.name[-1]

    @property
    def committee(self) -> str:
        return "党工委" if self.unit == "街道" else "党委"

    @property
    def government(self) -> str:
        return f"{self.name}办事处" if self.unit == "街道" else f"{self.name}人民政府"


TOWNSHIPS = (
    Township(
        "城关镇",
        "chengguan",
        ("东关村", "西关村", "南街社区", "北山村", "柏树村"),
        ("设施蔬菜", "冷链物流", "农村电商", "家政服务"),
        "",
        ("柏树村", "冷链物流仓储"),
    ),
    Township(
        "河口乡",
        "hekou",
        ("河口村", "马家湾村", "王庄村", "李家坪村", "沙坝村"),
        ("蔬菜大棚", "生猪养殖", "核桃", "水产养殖"),
        "清水河",
        ("马家湾村", "蔬菜大棚"),
    ),
    Township(
        "柳湾镇",
        "liuwan",
        ("柳湾村", "杨柳村", "新庄村", "白杨村", "红旗村"),
        ("中药材", "肉牛养殖", "小杂粮", "苗木花卉"),
        "柳河",
        ("杨柳村", "村级光伏电站"),
    ),
    Township(
        "石桥乡",
        "shiqiao",
        ("石桥村", "高家庄村", "刘家沟村", "三岔村", "桃园村"),
        ("食用菌", "茶叶", "中蜂养殖", "花椒"),
        "石河",
        ("桃园村", "安全饮水巩固提升"),
    ),
    Township(
        "青山街道",
        "qingshan",
        ("青山社区", "翠竹社区", "松林社区", "龙泉村", "凤凰村"),
        ("乡村旅游", "农家乐", "茶叶", "民宿"),
        "",
        ("龙泉村", "乡村旅游步道"),
    ),
)
CG, HK, LW, SQ, QS = TOWNSHIPS

SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙朱胡郭何林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余"
    "杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金廖贾夏韦付方邹孟熊秦邱尹薛闫段雷侯史陶"
    "黎贺顾毛郝龚邵万钱严覃戴莫孔汤"
)
GIVEN_NAMES = (
    *("建国", "卫东", "秀英", "志强", "海燕", "红梅", "国庆", "玉兰", "文华", "德明", "小军"),
    *("丽娟", "永福", "桂芳", "春生", "明亮", "晓燕", "福贵", "长林", "金花", "立新", "俊杰"),
    *("彩霞", "宏伟", "玉珍", "新民", "学军", "翠兰", "世平", "凤英", "宗明", "秋菊"),
)
CN_NUMERALS = "一二三四五六七八九十"
# Numbers no material may contain, derived ones included, except where PLANTED stands for one:
# the "126户" query must have exactly one answer.
RESERVED_NUMBERS = frozenset({126})
PLANTED = "〈planted〉"  # stands for 126 until the reserved numbers are moved aside

CAUSES = ("因病", "因残", "因学", "缺劳力", "缺技术", "缺资金")
RISKS = ("因病支出较大", "务工收入下降", "因灾农房受损", "家中有重病患者")
INCOME_SOURCES = ("务工收入", "种养殖收入", "公益性岗位工资", "务工和产业收入", "转移性收入")
OPINIONS = (
    "对帮扶工作满意，感谢帮扶干部",
    "希望继续给予产业发展支持",
    "反映组内道路路灯不亮，已转村委会处理",
    "希望孩子上学的资助政策能够延续",
    "无意见",
    "希望就近安排务工岗位",
)
HAZARDS = ("山洪地质灾害隐患点", "病险塘坝", "河道行洪障碍", "临河危旧房屋", "在建工程基坑")
STUDY = (
    "县委全会精神",
    "县委经济工作会议精神",
    "全县乡村振兴工作推进会精神",
    "上级关于基层治理的文件精神",
    "县纪委全会精神",
)
DESCRIPTIONS = (
    "按县委办要求报送",
    "供县直各部门共享使用，不再另行报送",
    "纸质版已存档",
    "已经会议审议通过",
    "根据上级通知整理",
)

AGENDA_TITLES = {
    "flood": "汛期防汛工作",
    "straw": "秋季秸秆禁烧工作",
    "dibao": "低保对象年度复核工作",
    "party": "基层党建工作",
    "poverty": "脱贫攻坚工作",
    "monitoring": "防返贫动态监测工作",
    "environment": "农村人居环境整治工作",
    "safety": "安全生产工作",
    "revival": "产业发展工作",
    "fire": "森林防火工作",
}
TOPIC_TAGS = {
    "poverty": "脱贫攻坚",
    "monitoring": "防返贫",
    "revival": "乡村振兴",
    "dibao": "低保",
    "party": "党建",
    "flood": "防汛",
    "straw": "秸秆禁烧",
    "environment": "人居环境",
    "safety": "安全生产",
    "fire": "森林防火",
    "medical": "医保",
    "population": "人口统计",
    "project": "项目验收",
}
_WORD_STEMS = ("新建 Microsoft Word 文档", "扫描件{}", "附件{}", "材料{}")
_TABLE_STEMS = ("新建 Microsoft Excel 工作表", "附件{}", "报表{}")
GENERIC_STEMS = {
    "docx": _WORD_STEMS,
    "pdf": ("扫描件{}", "附件{}", "scan_{:04d}"),
    "txt": ("新建文本文档", "材料{}"),
    "txt-gb18030": ("新建文本文档", "材料{}"),
    "md": ("材料{}", "草稿{}"),
    # As many stems as the format they stand in for: the corpus's random draws stay the same.
    "pptx": ("新建 Microsoft PowerPoint 演示文稿", "汇报{}", "附件{}", "材料{}"),
    "scan": ("扫描件{}", "附件{}", "scan_{:04d}"),
    "xlsx": _TABLE_STEMS,
    "csv": _TABLE_STEMS,
    "csv-gb18030": _TABLE_STEMS,
}
PROSE_FORMATS = ("docx", "docx", "docx", "pdf", "pdf", "txt", "txt-gb18030", "md")
TABLE_FORMATS = ("xlsx", "xlsx", "csv", "csv-gb18030")
# Kinds of material that come in another format than the one drawn: plans and reports shown as
# slides, notices scanned after signing and stamping (only OCR reads them).
FORMAT_OF_KIND = {("plan", "docx"): "pptx", ("report", "docx"): "pptx", ("notice", "pdf"): "scan"}


def period_words(period: str) -> str:
    """2020 → 2020年, 2020-Q3 → 2020年第三季度, 2023-12 → 2023年12月."""
    year, _, rest = period.partition("-")
    if not rest:
        return f"{year}年"
    if rest.startswith("Q"):
        return f"{year}年第{CN_NUMERALS[int(rest[1]) - 1]}季度"
    return f"{year}年{int(rest)}月"

"""Near-duplicate fingerprints: edits and layout barely move them, different reports differ."""

from __future__ import annotations

import subprocess
import sys

from indexer.similarity import band_keys, fingerprint, similarity

FLOOD_REPORT = """城关镇2024年防汛工作总结

今年以来，城关镇党委、政府高度重视防汛工作，坚持人民至上、生命至上，把防汛工作作为头等大事来抓。
一是压实防汛责任。镇里成立了以党委书记为组长的防汛工作领导小组，明确各村（社区）党支部书记为第一责任人，层层签订防汛责任书，形成了横向到边、纵向到底的责任体系。
二是开展隐患排查。汛前组织专业人员对全镇12座小型水库、36处山塘、8处地质灾害隐患点进行拉网式排查，发现问题隐患23处，已全部完成整改。
三是加强物资储备。镇防汛物资仓库储备编织袋5000条、救生衣200件、冲锋舟2艘、发电机4台，各村也按要求储备了必要的防汛物资。
四是强化应急演练。6月上旬，镇里组织开展了防汛抢险应急演练，参演人员120余人，检验了预案的可操作性，提高了干部群众的应急处置能力。
五是落实值班值守。汛期严格执行24小时领导带班和专人值班制度，确保信息畅通、反应迅速、处置得当。
今年汛期我镇共转移安置受威胁群众326人，未发生人员伤亡事故。
下一步，我们将认真总结经验，查找不足，进一步完善防汛应急预案，加强基层防汛队伍建设，全力保障人民群众生命财产安全。"""

# Two sentences reworded, one number corrected: what a second draft of the same report looks like.
EDITED_REPORT = (
    FLOOD_REPORT.replace(
        "汛前组织专业人员对全镇12座小型水库",
        "汛前组织水利站专业人员对全镇12座小型水库",
    )
    .replace("参演人员120余人", "参演人员150余人")
    .replace(
        "确保信息畅通、反应迅速、处置得当。",
        "确保信息及时上报、指令快速传达、险情妥善处置。",
    )
)

TAX_REPORT = """河口乡2024年上半年财政收支情况报告

上半年，全乡一般公共预算收入完成860万元，占年度预算的52.3%，同比增长6.8%。
其中税收收入完成640万元，非税收入完成220万元。
一般公共预算支出完成2150万元，占年度预算的48.7%，主要用于教育、社会保障、农林水和基层政权运行。
民生支出占比达到78%，较去年同期提高2个百分点。
上半年财政运行总体平稳，但也存在收入结构不优、刚性支出压力较大等问题。
下半年，乡财政所将加强税源管理，积极争取上级转移支付，严控一般性支出，确保全年预算任务完成。
同时继续做好惠民惠农财政补贴资金“一卡通”发放工作，提高资金使用效益。"""


def test_a_lightly_edited_report_is_a_near_duplicate() -> None:
    assert EDITED_REPORT != FLOOD_REPORT
    assert similarity(fingerprint(FLOOD_REPORT), fingerprint(EDITED_REPORT)) >= 0.8


def test_unrelated_reports_are_not() -> None:
    assert similarity(fingerprint(FLOOD_REPORT), fingerprint(TAX_REPORT)) < 0.3


def test_docx_text_and_pdf_export_text_of_one_report_match() -> None:
    # A PDF export breaks lines mid-sentence, spaces Latin text and may use full-width forms.
    pdf_like = "\n".join(
        FLOOD_REPORT.replace("\n", "")[start : start + 38] for start in range(0, 2000, 38)
    )
    pdf_like = pdf_like.replace("2024", "２０２４").replace("，", " , ").replace("12座", "12 座")
    assert similarity(fingerprint(FLOOD_REPORT), fingerprint(pdf_like)) >= 0.8


def test_identical_text_scores_one_and_signatures_have_128_values() -> None:
    marks = fingerprint(FLOOD_REPORT)
    assert len(marks) == 128
    assert similarity(marks, fingerprint(FLOOD_REPORT)) == 1.0


def test_empty_or_very_short_text_has_no_fingerprint() -> None:
    assert fingerprint("") == ()
    assert fingerprint("  \n 通知。 ") == ()
    assert similarity((), fingerprint(FLOOD_REPORT)) == 0.0
    assert similarity(fingerprint(FLOOD_REPORT), ()) == 0.0


def test_fingerprints_are_the_same_in_another_process() -> None:
    code = (
        "import sys; from indexer.similarity import fingerprint; "
        "print(list(fingerprint(sys.stdin.read())))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        input=FLOOD_REPORT,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345"},
    )
    assert tuple(int(value) for value in other.stdout.strip()[1:-1].split(",")) == fingerprint(
        FLOOD_REPORT
    )


def test_near_duplicates_share_a_band_and_unrelated_reports_do_not() -> None:
    flood, edited, tax = (
        set(band_keys(fingerprint(t))) for t in (FLOOD_REPORT, EDITED_REPORT, TAX_REPORT)
    )
    assert len(flood) == 32
    assert flood & edited
    assert not flood & tax
    assert band_keys(()) == []

"""The audit log's verification and archiving in Chinese, for people at the console: the one
wording ``materials check`` (its ``audit`` line), ``materials audit verify`` and ``materials audit
archive`` share. The JSON the commands print for scripts keeps its keys and codes.
"""

from __future__ import annotations

from services.audit_archive import ArchiveResult
from services.audit_verify import CHECK_NAMES, VerifyReport


def verify_summary(report: VerifyReport) -> str:
    """The verification on one line: how much was verified, or where and how it failed."""
    if report.ok:
        return f"审计日志 {report.events} 条已验证，与 {report.checkpoints} 个签名检查点相符"
    reason = CHECK_NAMES.get(report.reason or "", report.reason or "未知原因")
    first, last = report.first_bad_seq, report.last_bad_seq
    if first is None:
        return f"审计日志不符：{reason}"
    if last is not None and last > first:
        return f"审计日志在 seq {first} 至 {last} 之间不符：{reason}"
    return f"审计日志在 seq {first} 处不符：{reason}"


def verify_lines(report: VerifyReport) -> list[str]:
    """``materials audit verify`` for people: the summary, what else was held against the log,
    what could not be checked, and the verdict last."""
    lines = [verify_summary(report)]
    if not report.ok and report.detail:
        lines.append(f"详情：{report.detail}")
    if report.ok:
        if report.exported:
            lines.append(f"对象存储中的检查点 {report.exported} 个，相符")
        if report.receipts:
            lines.append(f"回执 {report.receipts} 份，相符")
        if report.pruned:
            lines.append(f"已归档并清理的事件 {report.pruned} 条，叶哈希仍在树中，相符")
        if report.pending:
            lines.append(f"另有 {report.pending} 条事件等待排序（尚无序号，排序后才能核对）")
    lines += [f"注意：{warning}" for warning in report.warnings]
    lines.append(verify_verdict(report))
    return lines


def verify_verdict(report: VerifyReport) -> str:
    """The last line for people, as ``materials check`` ends with its own."""
    if report.ok:
        return "结论：审计日志完整"
    return "结论：审计日志不可信，须查明原因（记录被改动、删除、插入或检查点不符）"


def archive_line(result: ArchiveResult, *, prune: bool) -> str:
    """One archive written (and, with ``prune``, its events removed from the database)."""
    archive = result.archive
    if archive is None:
        return NOTHING_TO_ARCHIVE
    line = (
        f"已归档 seq {archive.first_seq} 至 {archive.last_seq}，共 {archive.events} 条事件："
        f"{archive.name}"
    )
    if prune:
        line += f"；已从数据库清理 {result.deleted} 条"
        if result.kept:
            line += f"，{result.kept} 条因回执引用而保留"
    return line


NOTHING_TO_ARCHIVE = "没有超过保留期限、需要归档的事件"
NO_SIGNING_KEY = "尚无审计日志签名密钥：还没有签过检查点，无法证明归档属于本日志"

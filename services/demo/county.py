"""The sample county itself: its organisations, one login per role, and a handful of materials
uploaded without a catalog item (as townships did before the catalog existed)."""

from __future__ import annotations

import hashlib
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from services import administration, documents
from services.access import Principal
from services.audit import Actor
from services.backends import Backends
from services.documents import IncomingFile
from services.models import Document, OrgKind, Role

COUNTY = "示范县"
TOWNSHIPS = ("城关镇", "河口乡")
DEPARTMENTS = ("县乡村振兴局", "县统计局")
# Who loads the demo, as the audit log names it.
DEMO_ACTOR = Actor(username="cli:demo", role="system")


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str
    org: str
    display_name: str = ""  # the person's name (姓名), shown beside the username


LOGINS = (
    DemoLogin("admin", "demo-admin-2026", Role.admin.value, COUNTY, "王建国"),
    # A second admin: grants to auditors and new admins wait for another admin's confirmation.
    DemoLogin("admin2", "demo-admin2-2026", Role.admin.value, COUNTY, "刘芳"),
    DemoLogin("auditor", "demo-audit-2026", Role.auditor.value, COUNTY, "陈静"),
    DemoLogin("jianfu", "demo-coord-2026", Role.coordinator.value, COUNTY, "赵立新"),
    DemoLogin("chengguan", "demo-town-2026", Role.uploader.value, TOWNSHIPS[0], "张明"),
    DemoLogin("hekou", "demo-town-2026", Role.uploader.value, TOWNSHIPS[1], "李秀英"),
    DemoLogin("zhenxing", "demo-dept-2026", Role.reader.value, DEPARTMENTS[0], "周海涛"),
    DemoLogin("tongji", "demo-dept-2026", Role.reader.value, DEPARTMENTS[1], "孙丽"),
)


def _png(width: int = 8, height: int = 8) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x30\x90\x50" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# (uploader, file name, form fields, bytes)
MATERIALS: tuple[tuple[str, str, dict[str, str], bytes], ...] = (
    (
        "chengguan",
        "城关镇2026年第三季度脱贫攻坚工作总结.md",
        {"category": "工作总结", "period": "2026-Q3", "tags": "脱贫攻坚,扶贫"},
        "# 城关镇2026年第三季度脱贫攻坚工作总结\n\n本季度走访贫困户126户，落实帮扶措施…\n".encode(),
    ),
    (
        "chengguan",
        "入户走访记录（9月）.csv",
        {
            "category": "工作留痕",
            "period": "2026-09",
            "visibility": "restricted",
            "departments": DEPARTMENTS[0],
        },
        "日期,户主,村组,走访人,内容\n2026-09-03,张某,东街村一组,李干部,了解春耕情况\n".encode(),
    ),
    (
        "chengguan",
        "入户走访照片.png",
        {"category": "工作留痕", "period": "2026-09-03", "tags": "入户走访"},
        _png(),
    ),
    (
        "hekou",
        "河口乡党委会议纪要.txt",
        {"category": "会议纪要", "period": "2026-10", "visibility": "private"},
        "河口乡党委会议纪要\n时间：2026年10月8日\n议题：秋季防汛、低保复核\n".encode("gb18030"),
    ),
    (
        "hekou",
        "河口乡2026年人口与农业统计表.csv",
        {"category": "统计报表", "period": "2026", "tags": "统计"},
        "村,户数,人口,耕地（亩）\n河口村,412,1380,2210\n柳湾村,305,1012,1804\n".encode(),
    ),
)


def create_county(backends: Backends) -> dict[str, Principal]:
    """The county, its townships and departments, and one user per login (idempotent);
    the users by username."""
    administration.add_org(
        backends, actor=DEMO_ACTOR, name=COUNTY, kind=OrgKind.county, parent=None
    )
    for name in TOWNSHIPS:
        administration.add_org(
            backends, actor=DEMO_ACTOR, name=name, kind=OrgKind.township, parent=COUNTY
        )
    for name in DEPARTMENTS:
        administration.add_org(
            backends, actor=DEMO_ACTOR, name=name, kind=OrgKind.department, parent=COUNTY
        )
    users: dict[str, Principal] = {}
    for login in LOGINS:
        user, _ = administration.add_user(
            backends,
            actor=DEMO_ACTOR,
            username=login.username,
            password=login.password,
            org=login.org,
            role=login.role,
            display_name=login.display_name,
        )
        users[login.username] = Principal.of(user)
    return users


def upload(
    backends: Backends,
    *,
    principal: Principal,
    filename: str,
    fields: dict[str, str],
    content: bytes,
) -> Document:
    """One material uploaded by a township clerk, as the upload form would send it (identical
    bytes sent again are the township's existing document)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "material"
        path.write_bytes(content)
        result = documents.upload(
            backends,
            principal=principal,
            incoming=IncomingFile(
                path=path,
                size=len(content),
                sha256=hashlib.sha256(content).hexdigest(),
                filename=filename,
                declared_type=None,
            ),
            fields=fields,
            ip=None,
        )
    return result.document


def upload_materials(backends: Backends, users: dict[str, Principal]) -> None:
    """The materials townships uploaded before the catalog existed."""
    for username, filename, fields, content in MATERIALS:
        upload(
            backends, principal=users[username], filename=filename, fields=fields, content=content
        )

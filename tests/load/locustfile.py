"""Locust users of the county: township clerks uploading, department clerks searching and reading.

Run by ``tests/load/harness.py`` with ``--plan PLAN.json`` (the accounts it created, the largest
file to send, where to write the summary); any other way of running it needs such a plan too.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import math
import os
import random
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from locust import HttpUser, between, events, task
from locust.env import Environment

KIB, MIB = 1024, 1024 * 1024
WORDS = (
    "乡村振兴", "脱贫攻坚", "防汛抗旱", "低保复核", "产业帮扶", "危房改造", "医疗保障",
    "义务教育", "饮水安全", "人居环境", "秸秆禁烧", "基层治理", "合作社", "茶叶", "务工",
)  # fmt: skip
CATEGORIES = ("扶贫", "统计报表", "会议纪要", "防汛", "党建", "其他")
PERIODS = ("2025", "2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3", "2026-09")
SHARED_FORMS = 4  # county-wide forms every township fills in with identical bytes

# Filled from the plan when Locust starts (events.init), read by the users.
PLAN: dict[str, Any] = {}
TALLY = {"created": 0, "duplicates": 0, "downloaded_bytes": 0}
_accounts = {"township": itertools.count(), "department": itertools.count()}


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--plan", default="", help="JSON plan written by tests/load/harness.py")


@events.init.add_listener
def _load_plan(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is not None and options.plan:
        PLAN.update(json.loads(Path(options.plan).read_text(encoding="utf-8")))


@events.quitting.add_listener
def _write_tally(environment: Environment, **_: Any) -> None:
    """The tally and the final statistics (Locust's CSV files can miss the last requests)."""
    if not PLAN.get("summary"):
        return
    stats = environment.stats
    entries = [*stats.entries.values(), stats.total]
    operations = [
        {
            "name": entry.name,
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "per_second": entry.total_rps,
            "p50": entry.get_response_time_percentile(0.5) or 0,
            "p95": entry.get_response_time_percentile(0.95) or 0,
        }
        for entry in entries
    ]
    failures = [
        f"failed {error.occurrences}x {error.method} {error.name}: {error.error}"
        for error in stats.errors.values()
    ]
    summary = {"tally": TALLY, "operations": operations, "failures": failures}
    Path(PLAN["summary"]).write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")


# Files: rebuilt from a recipe, so a re-upload sends exactly the same bytes.


@dataclass(frozen=True)
class Recipe:
    kind: str  # txt, gbk, docx, pdf, jpg
    size: int  # the target size in bytes (docx and jpg land near it, the others on it)
    token: str  # makes the bytes unique; the same token gives the same bytes
    township: str

    @property
    def filename(self) -> str:
        stem = {"txt": "工作纪要", "gbk": "统计说明", "docx": "情况报告", "pdf": "附件"}
        suffix = {"gbk": "txt"}.get(self.kind, self.kind)
        return f"{stem.get(self.kind, '现场照片')}-{self.token[:8]}.{suffix}"


def choose_size(rng: random.Random, largest: int) -> int:
    """Mostly small office files, some of a few MB, rarely up to 20 MB (log-uniform in bands)."""
    draw = rng.random()
    low, high = (
        (10 * KIB, 100 * KIB)
        if draw < 0.6
        else (100 * KIB, MIB)
        if draw < 0.88
        else (MIB, 5 * MIB)
        if draw < 0.97
        else (5 * MIB, 20 * MIB)
    )
    size = int(math.exp(rng.uniform(math.log(low), math.log(high))))
    return max(10 * KIB, min(size, largest))


def choose_kind(rng: random.Random, size: int) -> str:
    if size > 2 * MIB:
        return "pdf"  # scanned annexes: a text page and a large image stream
    return rng.choices(("txt", "gbk", "docx", "pdf", "jpg"), weights=(25, 10, 25, 25, 15))[0]


def _sentences(rng: random.Random, recipe: Recipe, count: int) -> str:
    return "".join(
        f"{recipe.township}{rng.choice(WORDS)}工作第{number}项：{rng.choice(WORDS)}"
        f"落实{rng.randint(3, 400)}户，{rng.choice(WORDS)}资金{rng.randint(1, 90)}万元。"
        for number in range(count)
    )


_NOISE: list[bytes] = []


def _noise(size: int) -> bytes:
    """Incompressible bytes, generated once per process (a scan's image data)."""
    if not _NOISE:
        _NOISE.append(os.urandom(20 * MIB))
    return _NOISE[0][:size]


def _pdf(text: str, padding: int) -> bytes:
    page = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    scan = _noise(padding)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(page) + page + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(scan) + scan + b"\nendstream",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1))
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def _docx(text: str) -> bytes:
    namespace = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    paragraphs = "".join(
        f"<w:p><w:r><w:t>{escape(line)}</w:t></w:r></w:p>" for line in text.split("。") if line
    )
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org'
            '/package/2006/content-types"><Default Extension="rels" ContentType="application/'
            'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
            'ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType='
            '"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
            'schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            'Target="word/document.xml"/></Relationships>'
        ),
        "word/document.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<w:document xmlns:w="{namespace}"><w:body>{paragraphs}</w:body></w:document>'
        ),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        for name, content in parts.items():
            entry = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            package.writestr(entry, content)
    return buffer.getvalue()


_PHOTOS: dict[int, bytes] = {}


def _jpeg(size: int, token: str) -> bytes:
    """A photo (noise, as a camera's sensor gives) near ``size``, made unique by a comment."""
    from PIL import Image

    side = min(2400, max(64, int(math.sqrt(size / 0.75))))  # about 0.75 bytes a pixel at q=85
    side -= side % 64
    if side not in _PHOTOS:
        image = Image.frombytes("L", (side, side), _noise(side * side)).convert("RGB")
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=85)
        _PHOTOS[side] = buffer.getvalue()
    photo = _PHOTOS[side]
    comment = f"materials-load {token}".encode()
    segment = b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
    return photo[:2] + segment + photo[2:]  # right after SOI


def build(recipe: Recipe) -> bytes:
    """The file's bytes; the same recipe always gives the same bytes."""
    rng = random.Random(recipe.token)
    if recipe.kind == "jpg":
        return _jpeg(recipe.size, recipe.token)
    if recipe.kind == "pdf":
        text = f"Township annex {recipe.token} {rng.randint(1, 10**9)}"
        return _pdf(text, max(0, recipe.size - 700))
    if recipe.kind == "docx":
        return _docx(f"编号{recipe.token}。" + _sentences(rng, recipe, max(5, recipe.size // 300)))
    encoding = "gb18030" if recipe.kind == "gbk" else "utf-8"
    body = f"编号{recipe.token}\n".encode(encoding)
    line = _sentences(rng, recipe, 40).encode(encoding)
    while len(body) < recipe.size:
        body += line
    # Cut at the size, then drop a character split by the cut.
    return body[: recipe.size].decode(encoding, errors="ignore").encode(encoding)


def _fail(response: Any, expected: str) -> None:
    got = f"{response.status_code}: {response.text[:300]}" if response.status_code else ""
    response.failure(f"expected {expected}, got {got or repr(response.error)}")


class CountyUser(HttpUser):
    abstract = True
    kind = ""

    def on_start(self) -> None:
        accounts = [(org, name) for org, names in PLAN[f"{self.kind}s"].items() for name in names]
        number = next(_accounts[self.kind])
        self.org, self.username = accounts[number % len(accounts)]
        # Each clerk at a PC of their own behind the county's reverse proxy (the harness trusts
        # 127.0.0.1 as that proxy): the login guard counts attempts per address.
        subnet = 1 if self.kind == "township" else 2
        self.client.headers["X-Forwarded-For"] = f"10.{subnet}.{number // 200}.{number % 200 + 1}"
        self.rng = random.Random(f"{self.username}-{uuid.uuid4()}")
        with self.client.post(
            "/api/v1/auth/token",
            data={"username": self.username, "password": PLAN["password"]},
            name="POST /auth/token",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                _fail(response, "200")
                return
            token = response.json()["access_token"]
        self.client.headers["Authorization"] = f"Bearer {token}"

    def search(self, query: str, **filters: str) -> list[dict[str, Any]]:
        params = {"q": query, "size": "10", **filters}
        with self.client.get(
            "/api/v1/search", params=params, name="GET /search", catch_response=True
        ) as response:
            if response.status_code != 200:
                _fail(response, "200")
                return []
            hits: list[dict[str, Any]] = response.json()["hits"]
            return [hit["document"] for hit in hits]

    def read(self, document: dict[str, Any]) -> None:
        with self.client.get(
            f"/api/v1/documents/{document['id']}",
            name="GET /documents/{id}",
            catch_response=True,
        ) as response:
            if response.status_code != 200 or response.json()["sha256"] != document["sha256"]:
                _fail(response, "200 with the same sha256")

    def download(self, document: dict[str, Any]) -> None:
        # The store's presigned URL follows a 302, as a browser would; the bytes are checked.
        with self.client.get(
            f"/api/v1/documents/{document['id']}/download",
            name="GET /documents/{id}/download",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                _fail(response, "200")
                return
            digest = hashlib.sha256(response.content).hexdigest()
            if digest != document["sha256"]:
                response.failure(f"downloaded bytes hash to {digest}, not {document['sha256']}")
                return
            TALLY["downloaded_bytes"] += len(response.content)

    def typed(self) -> str:
        """Search as people type: each longer prefix of a word or a township's name."""
        word = self.rng.choice(WORDS + tuple(PLAN["townships"]))
        hits: list[dict[str, Any]] = []
        for end in range(1, len(word) + 1):
            hits = self.search(word[:end]) or hits
        return word if hits else ""


class TownshipClerk(CountyUser):
    """Uploads the township's materials, sometimes the same file again; checks what it sent."""

    kind = "township"
    wait_time = between(2, 6)

    def on_start(self) -> None:
        super().on_start()
        self.sent: list[tuple[Recipe, dict[str, Any]]] = []

    def post(self, recipe: Recipe, *, again: bool) -> None:
        content = build(recipe)
        rng = self.rng
        fields = {
            "title": f"{self.org}{rng.choice(WORDS)}{recipe.filename.split('.')[0]}",
            "category": rng.choice(CATEGORIES),
            "period": rng.choice(PERIODS),
            "tags": ",".join(rng.sample(WORDS, 2)),
        }
        draw = rng.random()
        if draw < 0.15:
            departments = rng.sample(sorted(PLAN["departments"]), 2)
            fields |= {"visibility": "restricted", "departments": ",".join(departments)}
        elif draw < 0.2:
            fields["visibility"] = "private"
        with self.client.post(
            "/api/v1/documents",
            files={"file": (recipe.filename, content, "application/octet-stream")},
            data=fields,
            name="POST /documents",
            catch_response=True,
        ) as response:
            body = response.json() if response.status_code in (200, 201) else {}
            if not again and response.status_code == 201:
                TALLY["created"] += 1
            elif again and response.status_code == 200 and body.get("duplicate"):
                TALLY["duplicates"] += 1
            else:
                _fail(response, "200 duplicate" if again else "201")
                return
            if body.get("sha256") != hashlib.sha256(content).hexdigest():
                response.failure("the document's sha256 is not the one of the bytes sent")
                return
        self.sent.append((recipe, body))
        if rng.random() < 0.5:
            self.read(body)  # the page the web interface shows after an upload

    @task(8)
    def upload(self) -> None:
        size = choose_size(self.rng, PLAN["max_bytes"])
        recipe = Recipe(choose_kind(self.rng, size), size, uuid.uuid4().hex, self.org)
        self.post(recipe, again=False)

    @task(1)
    def upload_again(self) -> None:
        """The same bytes again (a clerk unsure it went through): the existing document answers."""
        if self.sent:
            self.post(self.rng.choice(self.sent)[0], again=True)

    @task(1)
    def upload_county_form(self) -> None:
        """A county-wide form: identical bytes from every township, stored once per township."""
        number = self.rng.randrange(SHARED_FORMS)
        recipe = Recipe("docx", 40 * KIB, f"county-form-{number}", "全县")
        content = build(recipe)
        with self.client.post(
            "/api/v1/documents",
            files={"file": (f"全县统一表格{number}.docx", content, "application/octet-stream")},
            data={"category": "统计报表", "period": "2026"},
            name="POST /documents",
            catch_response=True,
        ) as response:
            # Another clerk of the township may have sent it first: either answer is right.
            if response.status_code == 201:
                TALLY["created"] += 1
            elif response.status_code == 200 and response.json().get("duplicate"):
                TALLY["duplicates"] += 1
            else:
                _fail(response, "201 or 200 duplicate")

    @task(1)
    def lookup(self) -> None:
        """Check before sending a file again: the township's document with those bytes."""
        if not self.sent:
            return
        _, document = self.rng.choice(self.sent)
        with self.client.get(
            "/api/v1/documents/lookup",
            params={"sha256": document["sha256"]},
            name="GET /documents/lookup",
            catch_response=True,
        ) as response:
            if response.status_code != 200 or response.json()["id"] != document["id"]:
                _fail(response, f"200 with {document['id']}")

    @task(2)
    def own_materials(self) -> None:
        if self.sent:
            self.read(self.rng.choice(self.sent)[1])
        self.search(self.rng.choice(WORDS), township=self.org)


class DepartmentClerk(CountyUser):
    """Looks for a township's material before asking for it: searches, reads, downloads."""

    kind = "department"
    wait_time = between(1, 3)

    @task(4)
    def find_and_use(self) -> None:
        word = self.typed()
        if not word:
            return
        hits = self.search(word, page="1")
        for document in hits[: self.rng.randint(1, 3)]:
            self.read(document)
        if hits and self.rng.random() < 0.4:
            self.download(self.rng.choice(hits))

    @task(2)
    def browse_township(self) -> None:
        township = self.rng.choice(sorted(PLAN["townships"]))
        hits = self.search(self.rng.choice(WORDS), township=township)
        if hits:
            self.read(self.rng.choice(hits))

    @task(1)
    def browse_category(self) -> None:
        hits = self.search(self.rng.choice(WORDS), category=self.rng.choice(CATEGORIES))
        if hits and self.rng.random() < 0.3:
            self.download(self.rng.choice(hits))

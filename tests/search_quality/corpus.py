"""A fixed corpus of township materials, composed from templates and vocabulary with a fixed seed.

Each ``Material`` keeps what it was generated from (township, kind, topic, period, agenda), so
queries can label their relevant documents from those facts instead of from hard-coded ids.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from tests.samples import png_bytes
from tests.search_quality import county_work, poverty_work
from tests.search_quality.files import CONTENT_TYPES, EXTENSIONS, render_rows, render_text
from tests.search_quality.vocabulary import (
    DESCRIPTIONS,
    FORMAT_OF_KIND,
    GENERIC_STEMS,
    GIVEN_NAMES,
    PLANTED,
    PROSE_FORMATS,
    RESERVED_NUMBERS,
    SURNAMES,
    TABLE_FORMATS,
    TOPIC_TAGS,
    TOWNSHIPS,
    Township,
)

__all__ = ["SEED", "TOWNSHIPS", "Composer", "Material", "Township", "build_corpus"]

SEED = 20260315
# Writers of each township's materials, in the order they consume the random stream.
WRITERS = (
    poverty_work.poverty_summaries,
    poverty_work.visits,
    poverty_work.poverty_tables,
    poverty_work.monitoring,
    poverty_work.revival,
    county_work.minutes,
    county_work.flood,
    county_work.straw,
    county_work.dibao,
    county_work.party,
    county_work.environment,
    county_work.safety_fire_medical,
    county_work.project_report,
    county_work.photo,
    county_work.monthly_reports,
    county_work.population_table,
)
_RESERVED = re.compile(rf"(?<!\d)(?:{'|'.join(map(str, sorted(RESERVED_NUMBERS)))})(?!\d)")


@dataclass(frozen=True)
class Material:
    """One generated document and the facts it was generated from."""

    key: str
    township: str
    username: str
    category: str
    kind: str  # summary minutes visit check patrol photo table notice plan report
    topic: str
    period: str  # as uploaded: 2020, 2020-Q3 or 2020-09
    title: str
    fmt: str
    lines: tuple[str, ...] = ()  # prose, the title first
    rows: tuple[tuple[str, ...], ...] = ()  # tables
    tags: tuple[str, ...] = ()
    description: str = ""
    agenda: tuple[str, ...] = ()  # topics a meeting decided on
    village: str = ""
    picture: int = 0  # photos: a number that makes each image's bytes its own
    send_title: bool = True  # False: the uploader left the title blank (the file name is used)
    file_stem: str = ""  # a file name other than the title, as saved on the office computer

    @property
    def text(self) -> str:
        if self.lines:
            return "\n".join(self.lines)
        return "\n".join("\t".join(cell for cell in row if cell) for row in self.rows)

    def mentions(self, phrase: str) -> bool:
        """Whether the title, the tags or the content contain the phrase verbatim."""
        return any(phrase in part for part in (self.title, self.text, *self.tags))

    @property
    def filename(self) -> str:
        return (self.file_stem or self.title) + EXTENSIONS[self.fmt]

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.fmt]

    def content(self) -> bytes:
        if self.picture:
            return png_bytes(8 + self.picture % 50, 6, bytes((self.picture % 256, 96, 64)))
        if self.rows:
            return render_rows(self.fmt, self.rows)
        return render_text(self.fmt, self.lines)

    def upload_fields(self) -> dict[str, str]:
        fields = {"category": self.category, "period": self.period}
        if self.send_title:
            fields["title"] = self.title
        if self.tags:
            fields["tags"] = ",".join(self.tags)
        if self.description:
            fields["description"] = self.description
        return fields


def _unreserved(text: str) -> str:
    """A derived number that happens to be reserved moves up by one; planted ones are written."""
    return _RESERVED.sub(lambda match: str(int(match.group()) + 1), text).replace(PLANTED, "126")


@cache
def build_corpus(seed: int = SEED) -> tuple[Material, ...]:
    """The whole corpus, the same on every call and every machine."""
    return tuple(Composer(seed).compose())


class Composer:
    """Writes every township's materials; one random stream, consumed in a fixed order."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.materials: list[Material] = []
        self.staff = {
            t.name: {
                role: self.person()
                for role in ("secretary", "head", "deputy", "organiser", "civil", "clerk")
            }
            for t in TOWNSHIPS
        }

    # -- vocabulary ---------------------------------------------------------------------------

    def n(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def person(self) -> str:
        return self.rng.choice(SURNAMES) + self.rng.choice(GIVEN_NAMES)

    def household(self) -> str:
        return self.rng.choice(SURNAMES) + "某某"

    def day(self, year: int, month: int) -> str:
        return f"{year}年{month}月{self.n(1, 28)}日"

    def pick(self, options: Sequence[str], count: int = 1) -> list[str]:
        return self.rng.sample(list(options), count)

    # -- assembling -----------------------------------------------------------------------------

    def add(
        self,
        t: Township,
        *,
        category: str,
        kind: str,
        topic: str,
        period: str,
        title: str,
        body: Sequence[str] = (),
        rows: Sequence[Sequence[object]] = (),
        agenda: Sequence[str] = (),
        village: str = "",
        tags: Sequence[str] | None = None,
        picture: int = 0,
    ) -> None:
        key = "/".join(part for part in (t.username, kind, topic, period, village) if part)
        suffix = sum(1 for m in self.materials if m.key.split("#")[0] == key)
        if suffix:
            key = f"{key}#{suffix + 1}"
        if tags is None:
            tags = [TOPIC_TAGS[topic]] if topic in TOPIC_TAGS and self.rng.random() < 0.6 else []
        fmt = "png" if picture else self.rng.choice(TABLE_FORMATS if rows else PROSE_FORMATS)
        fmt = FORMAT_OF_KIND.get((kind, fmt), fmt)
        description = self.rng.choice(DESCRIPTIONS) if self.rng.random() < 0.3 else ""
        send_title = bool(picture) or self.rng.random() < 0.85
        file_stem = ""
        if not send_title and self.rng.random() < 0.6:
            # Then the title shown and indexed is this name: only the content tells the subject.
            file_stem = self.rng.choice(GENERIC_STEMS[fmt]).format(self.n(1, 40))
        self.materials.append(
            Material(
                key=key,
                township=t.name,
                username=t.username,
                category=category,
                kind=kind,
                topic=topic,
                period=period,
                title=title,
                fmt=fmt,
                lines=tuple(_unreserved(line) for line in (title, *body)) if body else (),
                rows=tuple(tuple(_unreserved(str(cell)) for cell in row) for row in rows),
                tags=tuple(tags),
                description=description,
                agenda=tuple(agenda),
                village=village,
                picture=picture,
                send_title=send_title,
                file_stem=file_stem,
            )
        )

    def signature(self, t: Township, year: int, month: int, issuer: str = "") -> list[str]:
        return [issuer or t.government, self.day(year, month)]

    def compose(self) -> list[Material]:
        for t in TOWNSHIPS:
            for write in WRITERS:
                write(self, t)
        return self.materials

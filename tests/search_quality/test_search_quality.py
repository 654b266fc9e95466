"""Search quality on a labelled Chinese corpus: recall@10 and MRR through the HTTP API.

Five townships upload the generated materials, the outbox is drained, and the auditor (who may read
everything) runs each labelled query; the figures print as a Markdown table for the README.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from statistics import mean
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from indexer.worker import IndexWorker
from services import dictionary, orgs
from services.access import Principal
from services.backends import Backends, open_backends
from services.config import Settings
from services.models import Document, OrgKind, Role, User
from tests.conftest import PASSWORD, Api, seed_county, stack_settings
from tests.search_quality.corpus import TOWNSHIPS, Material, build_corpus
from tests.search_quality.queries import MAX_RELEVANT, LabelledQuery, label

TOP = 10
MIN_RECALL = 0.97
MIN_MRR = 0.90
MIN_DOCUMENTS = 220


@dataclass(frozen=True)
class Outcome:
    query: LabelledQuery
    returned: tuple[str, ...]  # material keys of the top hits, best first
    relaxed: bool = False  # the answer was the relaxed query's (nothing matched every word)
    followed: str = ""  # nothing found: the suggestion followed, as a clerk would click it

    @property
    def hits(self) -> int:
        return sum(1 for key in self.returned[:TOP] if key in self.query.relevant)

    @property
    def recall(self) -> float:
        """Hits in the top ten over the relevant documents that fit there."""
        return self.hits / min(TOP, len(self.query.relevant))

    @property
    def first_relevant(self) -> int | None:
        ranks = (rank for rank, key in enumerate(self.returned, 1) if key in self.query.relevant)
        return next(ranks, None)

    @property
    def reciprocal_rank(self) -> float:
        rank = self.first_relevant
        return 0.0 if rank is None else 1.0 / rank


@dataclass(frozen=True)
class Run:
    corpus: tuple[Material, ...]
    indexed: int
    outcomes: list[Outcome]
    text_sources: dict[str, str | None]  # material key → where its indexed text came from


def _seed_townships(backends: Backends) -> None:
    """The sample county plus the corpus's townships, each with one uploader."""
    seed_county(backends)
    with backends.db.session() as session:
        for township in TOWNSHIPS:
            orgs.create_org(session, name=township.name, kind=OrgKind.township)
            orgs.create_user(
                session,
                passwords=backends.passwords,
                username=township.username,
                password=PASSWORD,
                org=township.name,
                role=Role.uploader,
            )


def _add_villages(backends: Backends) -> None:
    """The townships' villages in the county dictionary, added by the admin as on the 词库 page."""
    with backends.db.session() as session:
        admin = session.scalar(select(User).where(User.username == "admin"))
        assert admin is not None
        principal = Principal.of(admin)
    villages = [village for township in TOWNSHIPS for village in township.villages]
    added = dictionary.add_words(backends, principal=principal, words=villages, ip=None)
    assert added.added == villages


def _upload_all(api: Api, corpus: tuple[Material, ...]) -> dict[str, str]:
    """Each material uploaded by its township; document id → material key."""
    keys = {}
    for material in corpus:
        response = api.upload(
            material.username,
            material.filename,
            material.content(),
            material.content_type,
            **material.upload_fields(),
        )
        assert response.status_code == 201, (material.key, response.text)
        keys[response.json()["id"]] = material.key
    return keys


@pytest.fixture(scope="module")
def run(
    request: pytest.FixtureRequest, stack: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    """Build the county, upload and index the corpus once, and run every labelled query."""
    corpus = build_corpus()
    with stack_settings(request, stack, tmp_path_factory.mktemp("search-quality") / "data") as s:
        yield from _run(corpus, s)


def _run(corpus: tuple[Material, ...], settings: Settings) -> Iterator[Run]:
    backends = open_backends(settings)
    try:
        _seed_townships(backends)
        _add_villages(backends)
        with TestClient(create_app(settings, backends=backends)) as client:
            api = Api(client, {})
            keys = _upload_all(api, corpus)
            IndexWorker(backends, backends.index).drain()
            outcomes = []
            for query in label(corpus):

                def ask(text: str) -> dict[str, Any]:
                    response = client.get(
                        "/api/v1/search",
                        params={"q": text, "size": TOP},
                        headers=api.headers("auditor"),
                    )
                    assert response.status_code == 200, response.text
                    answer: dict[str, Any] = response.json()
                    return answer

                answer, followed = ask(query.text), ""
                if not answer["hits"] and answer["suggestions"]:
                    followed = answer["suggestions"][0]
                    answer = ask(followed)
                returned = tuple(keys[hit["document"]["id"]] for hit in answer["hits"])
                outcomes.append(Outcome(query, returned, answer["relaxed"], followed))
            with backends.db.session() as session:
                rows = session.execute(select(Document.id, Document.text_source)).all()
            sources = {keys[document_id]: source for document_id, source in rows}
            yield Run(corpus, backends.index.count(), outcomes, sources)
    finally:
        backends.close()


def test_labels_are_usable() -> None:
    """Every query has between 1 and 15 relevant documents; the corpus is big and varied."""
    corpus = build_corpus()
    assert len(corpus) >= MIN_DOCUMENTS
    assert len({m.key for m in corpus}) == len(corpus)
    assert len({m.content() for m in corpus}) == len(corpus)  # no upload is a duplicate
    assert len({m.fmt for m in corpus}) >= 7
    queries = label(corpus)
    assert len(queries) >= 80
    for query in queries:
        assert 1 <= len(query.relevant) <= MAX_RELEVANT, (query.text, len(query.relevant))
        if query.kind == "title" or query.text == "126户":
            assert len(query.relevant) == 1, query.text
    assert build_corpus.__wrapped__() == corpus  # the same seed writes the same corpus


@pytest.mark.slow
def test_every_material_is_indexed(run: Run) -> None:
    assert run.indexed == len(run.corpus)
    # Scanned pages are read by OCR, everything else from its own text; photos have none.
    expected = {"scan": "ocr", "png": "none"}
    assert {m.key: run.text_sources[m.key] for m in run.corpus} == {
        m.key: expected.get(m.fmt, "text_layer") for m in run.corpus
    }


@pytest.mark.slow
def test_recall_and_mrr_meet_targets(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    recall = mean(outcome.recall for outcome in run.outcomes)
    mrr = mean(outcome.reciprocal_rank for outcome in run.outcomes)
    with capsys.disabled():
        print("\n" + report(run, recall, mrr))
    assert recall >= MIN_RECALL, misses(run)
    assert mrr >= MIN_MRR, misses(run)


def report(run: Run, recall: float, mrr: float) -> str:
    """The per-query table and the means, as Markdown to paste into the README."""
    formats = Counter(m.fmt for m in run.corpus)
    kinds = Counter(outcome.query.kind for outcome in run.outcomes)
    lines = [
        f"Search quality: {len(run.corpus)} documents "
        f"({', '.join(f'{fmt} {count}' for fmt, count in formats.most_common())}), "
        f"{len(run.outcomes)} queries "
        f"({', '.join(f'{kind} {count}' for kind, count in kinds.items())}).",
        "",
        "| # | kind | query | relevant | hits@10 | recall@10 | first relevant |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for number, outcome in enumerate(run.outcomes, 1):
        how = " (relaxed)" if outcome.relaxed else ""
        how += f" → {outcome.followed}" if outcome.followed else ""
        lines.append(
            f"| {number} | {outcome.query.kind} | {outcome.query.text}{how} "
            f"| {len(outcome.query.relevant)} | {outcome.hits} | {outcome.recall:.2f} "
            f"| {outcome.first_relevant or '—'} |"
        )
    lines += ["", "| kind | queries | recall@10 | MRR |", "| --- | ---: | ---: | ---: |"]
    for kind in kinds:
        chosen = [outcome for outcome in run.outcomes if outcome.query.kind == kind]
        lines.append(
            f"| {kind} | {len(chosen)} | {mean(o.recall for o in chosen):.3f} "
            f"| {mean(o.reciprocal_rank for o in chosen):.3f} |"
        )
    lines += [
        f"| **all** | {len(run.outcomes)} | **{recall:.3f}** | **{mrr:.3f}** |",
        "",
        f"Targets: recall@10 ≥ {MIN_RECALL}, MRR ≥ {MIN_MRR}.",
    ]
    missed = misses(run)
    if missed:
        lines += ["", missed]
    return "\n".join(lines)


def _shown(material: Material) -> str:
    if material.send_title or not material.file_stem:
        return material.title
    return f"{material.title} (uploaded untitled as {material.filename})"


def misses(run: Run) -> str:
    """For each imperfect query: what was expected and what came back instead."""
    titles = {m.key: _shown(m) for m in run.corpus}
    lines = []
    for outcome in run.outcomes:
        if outcome.recall == 1.0 and outcome.reciprocal_rank == 1.0:
            continue
        missing = sorted(outcome.query.relevant - set(outcome.returned))
        wrong = [key for key in outcome.returned if key not in outcome.query.relevant]
        lines.append(
            f"- {outcome.query.text}: recall@10 {outcome.recall:.2f}, "
            f"first relevant {outcome.first_relevant or 'none'}"
        )
        lines += [f"    missing  {key}  {titles[key]}" for key in missing]
        lines += [f"    returned {key}  {titles[key]}" for key in wrong]
    return "\n".join(lines)

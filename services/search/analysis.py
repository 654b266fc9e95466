"""The text analyzer: what every search backend stores of a document and asks of a query.

Built once from settings by ``open_search_index`` and handed to the backend, which only translates
its output (token strings per field, query plans) into SQL or Elasticsearch requests. The fields
and their ranking weights are defined here, once, for every backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.search.highlighting import MAX_HIGHLIGHT_SOURCE, highlight
from services.search.numbers import number_tokens
from services.search.planning import MAX_QUERY_CHARS, QueryPlan, plan_query
from services.search.segmentation import (
    ALNUM_RUN,
    CHAR_TOKEN,
    DOMAIN_WORDS,
    Segmenter,
    char_tokens,
    normalize,
)
from services.search.suggestions import (
    VocabularyProbe,
    corrections,
    is_vocabulary_word,
    pinyin,
    probe,
)

if TYPE_CHECKING:
    from services.config import Settings
    from services.search import IndexedDocument

__all__ = ["CHAR_FIELDS", "WORD_FIELDS", "AnalysedDocument", "TextAnalyzer"]

# Word-level fields (jieba words and number tokens) and their ranking weights. Character-level
# fields decide what matches (recall) and weigh nothing in the ranking: a document holding the
# query's word ranks above one that only holds its characters in sequence.
WORD_FIELDS: Mapping[str, float] = {
    "title": 10.0,
    "tags": 0.8,  # tags, file name, category and township: below title and body
    "filename": 0.8,
    "description": 2.0,
    "body": 1.0,
    "meta": 0.5,  # category, township name and period: searched as text, below the rest
}
CHAR_FIELDS = (
    "title_chars",  # characters of title and tags
    "body_chars",  # characters of file name, description and body
    "meta_chars",  # characters of category, township name and period
)


@dataclass(frozen=True)
class AnalysedDocument:
    """One document as every backend indexes it: space-separated tokens per field."""

    words: Mapping[str, str]  # WORD_FIELDS → tokens
    chars: Mapping[str, str]  # CHAR_FIELDS → tokens
    head: tuple[tuple[str, ...], ...]  # the title and each tag as character tokens, separately
    head_numbers: tuple[str, ...]  # canonical number tokens of the title and tags
    texts: tuple[str, str, str]  # title, body, description as highlighting reads them
    vocabulary: tuple[tuple[str, str], ...]  # (word, pinyin) of the words corrections may use

    @property
    def compact_head(self) -> str:
        """Title and tags as letters and digits only, one a line: cheap to test words against."""
        return "\n".join("".join(tokens) for tokens in self.head)


class TextAnalyzer:
    """Normalisation, segmentation, query plans and highlights for one configuration."""

    def __init__(self, *, words: Iterable[str] = ()):
        self.segmenter = Segmenter(words=(*DOMAIN_WORDS, *words))

    @classmethod
    def from_settings(cls, settings: Settings) -> TextAnalyzer:
        """The analyzer the settings describe."""
        return cls()

    @property
    def words(self) -> tuple[str, ...]:
        """The words added to jieba's dictionary (the built-in ones first)."""
        return self.segmenter.words

    def use_words(self, words: Iterable[str]) -> None:
        """Segment with these county words (besides the built-in ones) from now on."""
        segmenter = Segmenter(words=(*DOMAIN_WORDS, *words))
        if segmenter.words != self.segmenter.words:
            segmenter.load()  # before the switch: no search waits on it
            self.segmenter = segmenter

    # -- documents -------------------------------------------------------------------------------

    def analyse(self, document: IndexedDocument) -> AnalysedDocument:
        """The token strings of every field of a document."""
        head = [normalize(part) for part in (document.title, *document.tags)]
        # The period as people say it (2024-Q3 → 2024年第三季度): a clerk typing 2024, 2024年,
        # 第三季度 or 三季度 finds the documents of that period. Its canonical number tokens
        # (2024年, 3季度) are the ones a query's numbers make, however the query writes them.
        meta = [
            normalize(part)
            for part in (document.category, document.township_name, _period_label(document))
            if part
        ]
        filename, description, body = (
            normalize(text) for text in (document.filename, document.description, document.body)
        )
        words = {
            "title": self._words(head[0]),
            "tags": [token for tag in head[1:] for token in self._words(tag)],
            "filename": self._words(filename),
            "description": self._words(description),
            "body": self._words(body),
            "meta": [token for part in meta for token in self._words(part)],
        }
        # Each distinct token tested once; the first occurrences keep their order.
        distinct = dict.fromkeys(token for tokens in words.values() for token in tokens)
        vocabulary = [token for token in distinct if is_vocabulary_word(token)]
        return AnalysedDocument(
            words={field: " ".join(tokens) for field, tokens in words.items()},
            chars={
                "title_chars": _char_field(head),
                "body_chars": _char_field([filename, description, body]),
                "meta_chars": _char_field(meta),
            },
            head=tuple(tuple(CHAR_TOKEN.findall(part)) for part in head),
            head_numbers=tuple(token for part in head for token, _, _ in number_tokens(part)),
            texts=(
                document.title,
                document.body[:MAX_HIGHLIGHT_SOURCE],
                document.description,
            ),
            vocabulary=tuple((word, pinyin(word)) for word in vocabulary),
        )

    def word_tokens(self, text: str) -> list[str]:
        """jieba search-mode words (with their dictionary sub-words), then canonical numbers."""
        return self._words(normalize(text))

    def _words(self, normalized: str) -> list[str]:
        tokens: list[str] = []
        for word in self.segmenter.cut(normalized):
            if word.isalnum():  # the usual case, checked fast
                tokens.append(word)
            elif not word.isspace():
                tokens.extend(ALNUM_RUN.findall(word))
        tokens.extend(token for token, _, _ in number_tokens(normalized))
        return tokens

    def word_field(self, texts: Iterable[str]) -> str:
        """The word-level field value: tokens of every text, joined by single spaces."""
        return " ".join(token for text in texts for token in self.word_tokens(text))

    @staticmethod
    def char_tokens(text: str) -> list[str]:
        """Each CJK character, latin run and digit run of ``text``."""
        return char_tokens(text)

    # -- queries ---------------------------------------------------------------------------------

    def plan(self, text: str) -> QueryPlan:
        """What a search text asks for (its syntax parsed, its words segmented)."""
        return plan_query(text, self.segmenter)

    def vocabulary_probe(self, text: str) -> VocabularyProbe | None:
        """The vocabulary look-ups that could correct a search text nothing matched."""
        return probe(normalize(text)[:MAX_QUERY_CHARS])

    def corrections(self, text: str, known: Iterable[str]) -> list[str]:
        """Corrected search texts, most plausible first, using the vocabulary words found."""
        return corrections(normalize(text)[:MAX_QUERY_CHARS], known)

    @staticmethod
    def pinyin(word: str) -> str:
        """A vocabulary word's pinyin key (扶贫 → fupin)."""
        return pinyin(word)

    def highlight(
        self, plan: QueryPlan, texts: Sequence[str], *, limit: int = 3, width: int = 60
    ) -> list[str]:
        """Up to ``limit`` escaped snippets of ``texts`` with the plan's terms in ``<em>``."""
        return highlight(plan, texts, limit=limit, width=width)


def _period_label(document: IndexedDocument) -> str:
    """The document's period as people say it; empty when it has none."""
    if not document.period:
        return ""
    # Imported here: services.metadata reaches the search package through the access policy.
    from services.metadata import period_label

    return period_label(document.period)


def char_field(texts: Iterable[str]) -> str:
    """The character-level field value: tokens of every text, joined by single spaces."""
    return _char_field(normalize(text) for text in texts)


def _char_field(normalized: Iterable[str]) -> str:
    return " ".join(token for text in normalized for token in CHAR_TOKEN.findall(text))

"""Markdown: its text as a reader sees it, without the markup (#, **, links, tables' pipes).

Decoded like any text file (a Markdown file saved on Chinese Windows is GB18030 too), then parsed
with markdown-it (CommonMark plus tables): headings, paragraphs, list items and table rows each on
a line of their own, cells separated by tabs, link and image text kept, their addresses dropped.
Snippets then show 一、工作开展情况, not ``## 一、工作开展情况``.
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from markdown_it.token import Token

from indexer.extractors import Extracted, ExtractionContext
from indexer.extractors._text import read_text

__all__ = ["MarkdownExtractor", "markdown_text"]

# Block tokens that end a line of text; a table cell ends with a tab instead.
_LINE_ENDS = frozenset({"heading_close", "paragraph_close", "tr_close", "fence", "code_block"})
_CELL_ENDS = frozenset({"th_close", "td_close"})


class MarkdownExtractor:
    mime_types = frozenset({"text/markdown", "text/x-markdown"})

    def extract(self, context: ExtractionContext) -> Extracted:
        return Extracted(text=markdown_text(read_text(context)))


def markdown_text(source: str) -> str:
    """The readable text of a Markdown document, one block a line."""
    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    out: list[str] = []
    for token in parser.parse(source):
        if token.type == "inline":
            out.append(_inline_text(token.children or []))
        elif token.type in ("fence", "code_block"):
            out.append(token.content.rstrip("\n"))
        if token.type in _CELL_ENDS:
            out.append("\t")
        elif token.type in _LINE_ENDS:
            out.append("\n")
    lines = ("".join(out)).split("\n")
    return "\n".join(line.rstrip("\t ") for line in lines).strip("\n")


def _inline_text(children: list[Token]) -> str:
    parts: list[str] = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "image":  # the alternative text; the address means nothing to search
            parts.append(_inline_text(child.children or []))
    return "".join(parts)

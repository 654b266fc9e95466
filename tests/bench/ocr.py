"""Benchmark: OCR speed and accuracy on rendered pages of known Chinese text.

Run: ``.venv/bin/python -m tests.bench.ocr [--pages 5]``. Renders pages of township-office prose
(about 450 characters each) as a 300 dpi scanned PDF and as phone photos of paper (JPEG, turned,
blurred and grainy), extracts them through the extractors as the worker does (helper process,
pypdfium2, Tesseract ``chi_sim``), and prints recognised characters per second and the
character error rate (edit distance / reference length, whitespace ignored, NFKC on both sides).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import unicodedata
from pathlib import Path

from indexer.extractors import ExtractionContext, ExtractionLimits, extract
from indexer.extractors._ocr import ocr_unavailable
from tests.scans import photo_of_paper, scanned_pdf

SENTENCES = (
    "为切实做好今年秋季防汛工作，确保人民群众生命财产安全，经镇党委研究决定开展防汛检查。",
    "各村要高度重视，明确责任人，建立工作台账，对水库、山塘、河道堤防逐一排查。",
    "本季度共走访脱贫户126户，落实产业帮扶资金38.5万元，新增就业岗位47个。",
    "柳树湾村党支部召开党员大会，传达学习县委全会精神，部署人居环境整治工作。",
    "低保复核工作已完成入户调查，对收入超过标准的9户按程序予以退出并张榜公示。",
    "请各单位于2024年6月30日前将防汛值班表报送镇应急办，联系电话0731-12345678。",
    "秸秆禁烧期间，镇村干部实行网格化包保，发现火点立即处置并逐级上报。",
    "危房改造项目已竣工验收23户，补助资金通过一卡通直接发放到农户账户。",
    "医疗保障方面，城乡居民医保参保率达到百分之九十九点二，家庭医生签约全覆盖。",
    "饮水安全工程新建集中供水点4处，解决了东风村、河口村群众的吃水难问题。",
)  # fmt: skip

LINE_CHARACTERS = 30  # fits the 14-point line of the rendered A4 page


def page_lines(rng: random.Random, sentences: int = 14) -> list[str]:
    text = "".join(rng.choice(SENTENCES) for _ in range(sentences))
    return [text[i : i + LINE_CHARACTERS] for i in range(0, len(text), LINE_CHARACTERS)]


def comparable(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def edit_distance(reference: str, hypothesis: str) -> int:
    previous = list(range(len(hypothesis) + 1))
    for i, expected in enumerate(reference, start=1):
        current = [i]
        for j, got in enumerate(hypothesis, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (expected != got))
            )
        previous = current
    return previous[-1]


def measure(name: str, files: list[tuple[bytes, str, str]], directory: Path) -> None:
    """Extract each (content, MIME, reference text) and print speed and CER over all of them."""
    characters = errors = 0
    seconds = 0.0
    for number, (content, content_type, reference) in enumerate(files):
        path = directory / f"{name}-{number}" / "blob"
        path.parent.mkdir()
        path.write_bytes(content)
        limits = ExtractionLimits(timeout_seconds=600)
        context = ExtractionContext(
            path=path, content_type=content_type, filename="blob", limits=limits
        )
        started = time.perf_counter()
        extracted = extract(context)
        seconds += time.perf_counter() - started
        assert extracted.text_source == "ocr", extracted.notes
        expected, got = comparable(reference), comparable(extracted.text)
        characters += len(got)
        errors += edit_distance(expected, got)
        reference_total = len(expected)
        print(
            f"  {name} {number + 1}: {len(got)} characters in {seconds:.2f} s so far, "
            f"CER {edit_distance(expected, got) / reference_total:.4f}"
        )
    total_reference = sum(len(comparable(reference)) for _, _, reference in files)
    print(
        f"{name}: {len(files)} pages, {characters} characters in {seconds:.1f} s = "
        f"{characters / seconds:.0f} characters/s, {seconds / len(files):.2f} s/page; "
        f"CER {errors / total_reference:.4f} ({errors} edits / {total_reference} characters)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=5, help="pages of each kind")
    parser.add_argument("--seed", type=int, default=20241130)
    arguments = parser.parse_args()
    missing = ocr_unavailable()
    if missing:
        raise SystemExit(
            f"{missing} is missing: apt-get install tesseract-ocr tesseract-ocr-chi-sim"
        )
    rng = random.Random(arguments.seed)
    pages = [page_lines(rng) for _ in range(arguments.pages)]
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        # Warm the helper process, so that its start-up is not counted.
        warm = directory / "warm.txt"
        warm.write_text("预热")
        extract(ExtractionContext(path=warm, content_type="text/plain", filename="warm.txt"))
        measure(
            "scanned PDF, 300 dpi",
            [(scanned_pdf([lines]), "application/pdf", "".join(lines)) for lines in pages],
            directory,
        )
        measure(
            "photo of paper, JPEG",
            [
                (photo_of_paper(lines, seed=number), "image/jpeg", "".join(lines))
                for number, lines in enumerate(pages)
            ],
            directory,
        )


if __name__ == "__main__":
    main()

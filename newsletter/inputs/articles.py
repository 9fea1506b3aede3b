"""Articles in ``content/articles/<slug>.md``: YAML front matter, then Markdown; and their excerpts."""

from __future__ import annotations

import datetime as dt
import difflib
import html
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ruamel.yaml.comments import CommentedMap

from newsletter.errors import DataError, Problem
from newsletter.inputs.header_text import header_problem
from newsletter.inputs.limits import ARTICLE_MAX_BYTES, read_capped
from newsletter.inputs.yaml_lines import key_line, load_yaml
from newsletter.model import Article

ARTICLES = "articles"
FRONT_MATTER_KEYS = ("title", "author", "date", "source_url", "url")
_REQUIRED = ("title", "author", "date")
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_FENCE = re.compile(r"---\s*")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_FRONT_MATTER_EXAMPLE = (
    "start the file with a line '---', then lines 'title: …', 'author: …', 'date: YYYY-MM-DD', "
    "'source_url: https://…', then a line '---', then the article"
)


# --- loading ------------------------------------------------------------------------------------------


def load_article(
    content_dir: Path, slug: str, *, ref_path: str = "schedule.yaml", ref_line: int | None = None
) -> Article:
    """The article ``slug``; DataError at the referencing line if it is missing, at its own lines if wrong."""
    display = f"{content_dir.name or 'content'}/{ARTICLES}/{slug}.md"
    if not _SLUG.fullmatch(slug):
        hint = (
            "write the file's name without '.md'"
            if slug.endswith(".md")
            else f"use only letters, digits, '-' and '_': the name of a file in {display.rsplit('/', 1)[0]}/"
        )
        message = f"'{slug}' is not a valid article name"
        raise DataError([Problem(ref_path, ref_line, message, hint)])
    path = content_dir / ARTICLES / f"{slug}.md"
    try:
        data = read_capped(path, display, ARTICLE_MAX_BYTES, "an article is a few pages of text")
    except FileNotFoundError:
        raise DataError([_not_found(content_dir, slug, display, ref_path, ref_line)]) from None
    except OSError as err:
        raise DataError(
            [Problem(display, None, f"cannot be read: {err.strerror}", "check the file")]
        ) from err
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        hint = "save it as UTF-8 (most editors offer this under Save As › Encoding)"
        raise DataError([Problem(display, line, "the file is not saved as UTF-8", hint)]) from None
    return parse_article(text, slug=slug, path=display)


def parse_article(text: str, *, slug: str, path: str) -> Article:
    """An article from the text of its .md file; ``path`` names the file in messages."""
    lines = re.split(r"\r\n|\r|\n", text)  # not splitlines(): it also splits at U+2028 etc., unlike YAML
    close = _front_matter_end(lines, path)
    meta = _front_matter(lines[1:close], path)
    problems: list[Problem] = []

    def line_of(key: str) -> int | None:
        return key_line(meta, key, line_offset=1) if key in meta else 1

    misspelt: set[str] = set()  # known keys an unknown one was probably meant to be
    for key in meta:
        if str(key) not in FRONT_MATTER_KEYS:
            guess = difflib.get_close_matches(str(key), FRONT_MATTER_KEYS, n=1)
            misspelt.update(guess)
            hint = f"did you mean '{guess[0]}'?" if guess else "the keys are " + ", ".join(FRONT_MATTER_KEYS)
            problems.append(Problem(path, line_of(str(key)), f"unknown front-matter key '{key}'", hint))
    values = _text_values(meta, path, line_of, misspelt, problems)
    date = None
    if meta.get("date") not in (None, ""):
        date = _article_date(meta["date"], path, line_of("date"), problems)
    elif "date" not in misspelt:
        hint = "add a line 'date: YYYY-MM-DD'"
        problems.append(Problem(path, line_of("date"), "the front matter has no date", hint))
    url = _url(values, path, line_of, problems)
    body = "\n".join(lines[close + 1 :]).strip("\n")
    if not body.strip():
        hint = "write the article in Markdown below the front matter"
        problems.append(Problem(path, close + 1, "the article has no text after the front matter", hint))
    if problems:
        raise DataError(problems)
    return Article(
        slug=slug,
        title=values["title"],
        author=values["author"],
        date=date,
        url=url,
        body_markdown=body + "\n",
        path=path,
    )


def _front_matter_end(lines: list[str], path: str) -> int:
    """The index of the line '---' that closes the front matter opened on the first line."""
    if not lines or not _FENCE.fullmatch(lines[0]):
        raise DataError([Problem(path, 1, "the article has no front matter", _FRONT_MATTER_EXAMPLE)])
    close = next((i for i, line in enumerate(lines[1:], start=1) if _FENCE.fullmatch(line)), None)
    if close is None:
        hint = "add a line '---' after the last front-matter line (date:, source_url:…)"
        raise DataError([Problem(path, 1, "the front matter opened on this line is never closed", hint)])
    return close


def _front_matter(front_lines: list[str], path: str) -> CommentedMap:
    front = "\n".join(front_lines)
    try:
        meta = load_yaml(front, path, line_offset=1) if front.strip() else None  # line 1 is the '---'
    except DataError:
        raise
    except ValueError as err:
        # ruamel builds dates while parsing and lets an impossible one (2013-02-30) escape unmarked.
        line = _bad_date_line(front_lines)
        hint = "write a real date as YYYY-MM-DD"
        raise DataError([Problem(path, line, "the date does not exist", hint)]) from err
    if meta is None:
        return CommentedMap()
    if not isinstance(meta, CommentedMap):
        message = "the front matter must be lines of 'key: value'"
        raise DataError([Problem(path, 2, message, _FRONT_MATTER_EXAMPLE)])
    return meta


def _text_values(
    meta: CommentedMap,
    path: str,
    line_of: Callable[[str], int | None],
    misspelt: set[str],
    problems: list[Problem],
) -> dict[str, str]:
    """The front matter's text fields that are given and fine; what is wrong goes to ``problems``."""
    values: dict[str, str] = {}
    for key in ("title", "author", "source_url", "url"):
        value = meta.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if key in _REQUIRED and key not in misspelt:
                hint = f"add a line '{key}: …'"
                problems.append(Problem(path, line_of(key), f"the front matter has no {key}", hint))
            continue
        if not isinstance(value, str):
            hint = "put the text in quotes"
            problems.append(Problem(path, line_of(key), f"the {key} should be text", hint))
            continue
        # A line break (a `|` block, a "\n") is refused, not folded into a space: the title and the
        # author are shown as one line, and may reach a subject line.
        if key in ("title", "author") and (found := header_problem(value.strip())):
            hint = f"write the {key} on one line, as plain text"
            problems.append(Problem(path, line_of(key), f"the {key} contains {found}", hint))
            continue
        values[key] = " ".join(value.split())
    return values


def _url(
    values: dict[str, str], path: str, line_of: Callable[[str], int | None], problems: list[Problem]
) -> str:
    if "source_url" in values and "url" in values:
        problems.append(
            Problem(path, line_of("url"), "both source_url and url are given", "keep one of them")
        )
    url = values.get("source_url", values.get("url", ""))
    key = "source_url" if "source_url" in values else "url"
    if url and not _is_web_address(url):
        hint = "give the full address, starting with https://"
        problems.append(Problem(path, line_of(key), f"the {key} is not a web address", hint))
    return url


def _article_date(value: Any, path: str, line: int | None, problems: list[Problem]) -> dt.date | None:
    hint = "write it as YYYY-MM-DD, e.g. 2013-10-12"
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            problems.append(Problem(path, line, "the date does not exist", hint))
            return None
    problems.append(Problem(path, line, "the date is not in the form YYYY-MM-DD", hint))
    return None


def _bad_date_line(front: list[str]) -> int | None:
    """Line (in the .md) of the first YYYY-MM-DD value that is not a calendar date."""
    for number, line in enumerate(front, start=2):
        for found in re.findall(r"\d{4}-\d{1,2}-\d{1,2}", line):
            try:
                dt.date(*(int(part) for part in found.split("-")))
            except ValueError:
                return number
    return None


def _not_found(content_dir: Path, slug: str, display: str, ref_path: str, ref_line: int | None) -> Problem:
    hint = "check the spelling or add the file"
    existing = sorted(p.stem for p in (content_dir / ARTICLES).glob("*.md"))
    close = difflib.get_close_matches(slug, existing, n=1)
    if close:
        hint = f"did you mean '{close[0]}'? otherwise add the file"
    return Problem(ref_path, ref_line, f"article '{slug}' not found: expected {display}", hint)


def _is_web_address(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not any(c.isspace() for c in url)


# --- rendering ----------------------------------------------------------------------------------------


def article_html(article: Article) -> str:
    """The whole article as HTML; raw HTML in the Markdown is escaped, unsafe link targets dropped."""
    from newsletter.inputs.article_markdown import safe_html  # Python-Markdown loads when needed

    return safe_html(article.body_markdown)


def excerpt(article: Article, *, max_words: int = 90) -> tuple[str, str]:
    """(HTML, plain text) of the article's beginning, cut at the end of a sentence.

    Whole sentences are taken while they fit in ``max_words``; a first sentence longer than that is
    taken whole rather than cut. The HTML is built here from escaped text, never the article's markup.
    """
    from newsletter.inputs.article_markdown import plain_html

    blocks = _text_blocks(plain_html(article.body_markdown))
    paragraphs: list[tuple[str, str]] = []  # (kind of block, the sentences taken from it)
    words = 0
    full = False
    for kind, text in blocks:
        sentences: list[str] = []
        for sentence in split_sentences(text):
            count = len(sentence.split())
            if words and words + count > max_words:
                full = True
                break
            sentences.append(sentence)
            words += count
        if sentences:
            paragraphs.append((kind, " ".join(sentences)))
        if full:
            break
    text = "\n\n".join(f"- {body}" if kind == "li" else body for kind, body in paragraphs)
    markup = "\n".join(
        f"<p>{'• ' if kind == 'li' else ''}{html.escape(body, quote=False)}</p>" for kind, body in paragraphs
    )
    return markup, text


# Sentence ends: . ! ? (or …) then optional closing quotes or brackets, then space or the end.
_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s|$)")
# Titles and short forms that take a period mid-sentence; ones with an inner period (e.g., R.N.) need
# no entry, _ends_sentence recognises them by that period.
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "mx", "dr", "prof", "rev", "st", "sr", "jr", "vs", "cf", "approx", "dept", "fig"}
    | {"no", "nos", "vol", "ca", "al", "jan", "feb", "aug", "sept", "oct", "nov", "dec"}
)


def split_sentences(text: str) -> list[str]:
    """Sentences of one paragraph; periods of abbreviations (Dr., e.g., R.N., initials) do not end one."""
    sentences: list[str] = []
    start = 0
    for match in _END.finditer(text):
        end = match.end()
        if end < len(text) and not _ends_sentence(text, match.start(), end):
            continue
        sentence = text[start:end].strip()
        if sentence:
            sentences.append(sentence)
        start = end
    rest = text[start:].strip()
    if rest:
        sentences.append(rest)
    return sentences


def _ends_sentence(text: str, mark: int, end: int) -> bool:
    following = text[end:].lstrip()
    if following[:1].islower():
        return False  # "e.g. the doctor": a sentence does not go on in lower case
    if text[mark] != ".":
        return True
    word = text[:mark].rsplit(None, 1)[-1] if text[:mark].strip() else ""
    word = word.lstrip("([\"'“‘")
    if word.casefold() in _ABBREVIATIONS:
        return False
    # "R.N.", "U.S.", "Ph.D." (a period inside the word) and initials like the "M." in "Sheryl M. Ness"
    return not ("." in word or (len(word) == 1 and word.isalpha()))


class _Blocks(HTMLParser):
    """Plain text of each paragraph, list item and quote in rendered HTML; headings and code left out."""

    BLOCKS = frozenset({"p", "li", "blockquote", "div", "dd", "dt", "td", "th", "tr", "table"})
    SKIPPED = frozenset({"h1", "h2", "h3", "h4", "h5", "h6", "pre", "script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, str]] = []
        self._kinds: list[str] = []
        self._buffer: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIPPED:
            self._flush()
            self._skipping += 1
        elif tag in self.BLOCKS:
            self._flush()
            self._kinds.append(tag)
        elif tag == "br":
            self._buffer.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self.BLOCKS:
            self._flush()
            if tag in self._kinds:
                del self._kinds[len(self._kinds) - 1 - self._kinds[::-1].index(tag) :]

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._buffer.append(data)

    def close(self) -> None:
        super().close()
        self._flush()

    def _flush(self) -> None:
        text = " ".join("".join(self._buffer).split())
        self._buffer = []
        if text:
            # A loose list item wraps its text in <p>; it is still a list item.
            kind = "li" if "li" in self._kinds else (self._kinds[-1] if self._kinds else "p")
            self.blocks.append((kind, text))


def _text_blocks(rendered: str) -> list[tuple[str, str]]:
    parser = _Blocks()
    parser.feed(rendered)
    parser.close()
    return parser.blocks

"""content/articles/*.md: front matter checked line by line, excerpts cut at a sentence."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from newsletter.errors import DataError, Problem
from newsletter.inputs.articles import article_html, excerpt, load_article, split_sentences
from newsletter.model import Article

ROOT = Path(__file__).resolve().parents[1]

FRONT = "---\ntitle: A talk\nauthor: Sheryl M. Ness, R.N.\ndate: 2013-10-12\nsource_url: https://example.org/a\n---\n"


def write_article(tmp_path: Path, text: str | bytes, slug: str = "talk") -> Path:
    content = tmp_path / "content"
    path = content / "articles" / f"{slug}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return content


def problems_of(content: Path, slug: str = "talk", *, ref_line: int | None = None) -> list[Problem]:
    with pytest.raises(DataError) as caught:
        load_article(content, slug, ref_line=ref_line)
    return caught.value.problems


def article(body: str) -> Article:
    return Article(
        slug="t",
        title="T",
        author="A",
        date=dt.date(2024, 1, 1),
        url="https://example.org/",
        body_markdown=body,
    )


# --- loading -------------------------------------------------------------------------------------------


def test_shipped_sample_article_loads() -> None:
    loaded = load_article(ROOT / "content", "second-opinion")
    assert loaded.title == "Tips for seeking second opinion on cancer care"
    assert loaded.author == "Sheryl M. Ness, R.N."
    assert loaded.date == dt.date(2013, 10, 12)
    assert loaded.url.startswith("https://www.mayoclinic.org/")
    assert loaded.path == "content/articles/second-opinion.md"
    html = article_html(loaded)
    assert html.count("<li>") == 7
    assert 'href="https://www.cancer.gov/research/infrastructure/cancer-centers"' in html


def test_loads_front_matter_and_body(tmp_path: Path) -> None:
    content = write_article(tmp_path, "\ufeff" + FRONT.replace("\n", "\r\n") + "\r\nHello **all**.\r\n")
    loaded = load_article(content, "talk")
    assert (loaded.slug, loaded.title, loaded.date, loaded.url) == (
        "talk",
        "A talk",
        dt.date(2013, 10, 12),
        "https://example.org/a",
    )
    assert loaded.body_markdown == "Hello **all**.\n"


def test_url_is_accepted_instead_of_source_url(tmp_path: Path) -> None:
    content = write_article(tmp_path, FRONT.replace("source_url:", "url:") + "Text.\n")
    assert load_article(content, "talk").url == "https://example.org/a"


def test_missing_article_is_reported_at_the_schedule_line(tmp_path: Path) -> None:
    content = write_article(tmp_path, FRONT + "Text.\n", slug="second-opinion")
    [problem] = problems_of(content, "second-opinon", ref_line=12)
    assert (problem.path, problem.line) == ("schedule.yaml", 12)
    assert problem.message == (
        "article 'second-opinon' not found: expected content/articles/second-opinon.md"
    )
    assert "did you mean 'second-opinion'?" in problem.hint


def test_missing_article_without_near_match(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path / "content", "nothing", ref_line=3)
    assert str(problem) == (
        "schedule.yaml:3: article 'nothing' not found: expected content/articles/nothing.md"
        " — check the spelling or add the file"
    )


def test_article_name_with_md_or_path_is_rejected_at_the_schedule_line(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path / "content", "talk.md", ref_line=5)
    assert (problem.path, problem.line) == ("schedule.yaml", 5)
    assert "without '.md'" in problem.hint
    assert problem.message == "'talk.md' is not a valid article name"
    [problem] = problems_of(tmp_path / "content", "../../etc/passwd", ref_line=5)
    assert problem.line == 5


def test_no_front_matter(tmp_path: Path) -> None:
    [problem] = problems_of(write_article(tmp_path, "# A talk\n\nText.\n"))
    assert (problem.path, problem.line) == ("content/articles/talk.md", 1)
    assert problem.message == "the article has no front matter"


def test_front_matter_never_closed(tmp_path: Path) -> None:
    [problem] = problems_of(write_article(tmp_path, "---\ntitle: A\nauthor: B\n\nText.\n"))
    assert problem.line == 1
    assert "never closed" in problem.message


def test_missing_title_author_and_date_are_all_reported(tmp_path: Path) -> None:
    problems = problems_of(write_article(tmp_path, "---\nsource_url: https://example.org/\n---\nText.\n"))
    assert [(p.line, p.message) for p in problems] == [
        (1, "the front matter has no author"),
        (1, "the front matter has no date"),
        (1, "the front matter has no title"),
    ]


def test_empty_title_is_reported_on_its_line(tmp_path: Path) -> None:
    [problem] = problems_of(write_article(tmp_path, FRONT.replace("title: A talk", "title:") + "Text.\n"))
    assert (problem.line, problem.message) == (2, "the front matter has no title")


@pytest.mark.parametrize(
    ("date", "message"),
    [
        ("12 October 2013", "the date is not in the form YYYY-MM-DD"),
        ("2013-10-1", "the date is not in the form YYYY-MM-DD"),
        ('"2013-02-30"', "the date does not exist"),
        ("2013-02-30", "the date does not exist"),
    ],
)
def test_bad_dates_are_reported_on_the_date_line(tmp_path: Path, date: str, message: str) -> None:
    [problem] = problems_of(write_article(tmp_path, FRONT.replace("2013-10-12", date) + "Text.\n"))
    assert (problem.path, problem.line, problem.message) == ("content/articles/talk.md", 4, message)
    assert "YYYY-MM-DD" in problem.hint


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    # One mistake, one message: no second "has no author" for the misspelt key.
    [problem] = problems_of(write_article(tmp_path, FRONT.replace("author:", "autor:") + "Text.\n"))
    assert (problem.line, problem.message) == (3, "unknown front-matter key 'autor'")
    assert problem.hint == "did you mean 'author'?"


def test_yaml_syntax_error_points_at_the_md_line(tmp_path: Path) -> None:
    text = FRONT.replace("title: A talk", "title: Tips: for you") + "Text.\n"
    [problem] = problems_of(write_article(tmp_path, text))
    assert (problem.path, problem.line) == ("content/articles/talk.md", 2)
    assert problem.message.startswith("YAML syntax")


@pytest.mark.parametrize(
    ("title", "message"),
    [
        ("title: |\n  A talk\n  Bcc: all@example.com", "the title contains a line break (LF)"),
        ('title: "A talk\\rBcc: all@example.com"', "the title contains a line break (CR)"),
        (
            'title: "=?utf-8?q?A_talk=0ABcc:_all@example.com?="',
            "the title contains a line break (LF) inside an encoded word (=?…?=)",
        ),
    ],
)
def test_a_title_with_a_line_break_is_refused_not_folded(tmp_path: Path, title: str, message: str) -> None:
    [problem] = problems_of(write_article(tmp_path, FRONT.replace("title: A talk", title) + "Text.\n"))
    assert (problem.line, problem.message) == (2, message)
    assert "one line" in problem.hint and "Bcc" not in str(problem)


def test_a_title_on_two_plain_lines_is_one_line_to_yaml(tmp_path: Path) -> None:
    content = write_article(
        tmp_path, FRONT.replace("title: A talk", "title: A talk\n  for  everyone") + "Text.\n"
    )
    assert load_article(content, "talk").title == "A talk for everyone"


def test_source_url_must_be_a_web_address(tmp_path: Path) -> None:
    text = FRONT.replace("https://example.org/a", "www.example.org/a") + "Text.\n"
    [problem] = problems_of(write_article(tmp_path, text))
    assert (problem.line, problem.message) == (5, "the source_url is not a web address")


def test_article_without_text(tmp_path: Path) -> None:
    [problem] = problems_of(write_article(tmp_path, FRONT + "\n\n"))
    assert (problem.line, problem.message) == (6, "the article has no text after the front matter")


def test_article_not_saved_as_utf8(tmp_path: Path) -> None:
    [problem] = problems_of(write_article(tmp_path, (FRONT + "Zoë said hello.\n").encode("cp1252")))
    assert (problem.line, problem.message) == (7, "the file is not saved as UTF-8")


# --- excerpts --------------------------------------------------------------------------------------


def test_excerpt_cuts_at_a_sentence_and_not_inside_abbreviations() -> None:
    body = (
        "Sheryl M. Ness, R.N. and Dr. Smith lead the group each month. "
        "They talk about care, e.g. second opinions. Bring a friend.\n"
    )
    html, text = excerpt(article(body), max_words=15)
    assert text == "Sheryl M. Ness, R.N. and Dr. Smith lead the group each month."
    assert html == "<p>Sheryl M. Ness, R.N. and Dr. Smith lead the group each month.</p>"
    _, text = excerpt(article(body), max_words=19)
    assert text.endswith("They talk about care, e.g. second opinions.")


def test_a_long_first_sentence_is_taken_whole() -> None:
    body = "Our speaker is Sheryl M. Ness, R.N. Margaret will introduce her to the whole group. Then tea.\n"
    _, text = excerpt(article(body), max_words=3)
    assert text == "Our speaker is Sheryl M. Ness, R.N. Margaret will introduce her to the whole group."


def test_excerpt_of_a_short_article_is_all_of_it() -> None:
    _, text = excerpt(article("One. Two!\n\nThree?\n"))
    assert text == "One. Two!\n\nThree?"


def test_excerpt_has_no_markdown_or_html_left() -> None:
    body = (
        "# Heading\n\n"
        "Read **this** [guide](https://example.org/g) & `notes` <em>now</em>.<script>alert(1)</script>\n\n"
        "- first item\n- second item\n"
    )
    html, text = excerpt(article(body))
    assert text == "Read this guide & notes now.\n\n- first item\n\n- second item"
    assert html == "<p>Read this guide &amp; notes now.</p>\n<p>• first item</p>\n<p>• second item</p>"
    for syntax in ("#", "**", "](", "`", "<", "alert"):
        assert syntax not in text


def test_excerpt_of_the_sample_article() -> None:
    loaded = load_article(ROOT / "content", "second-opinion")
    html, text = excerpt(loaded)
    assert text.startswith("Cancer can be complicated to diagnose and manage.")
    assert text.endswith("isn't responding to the current treatment.")
    assert len(text.split()) <= 90
    assert html.count("<p>") == 2


def test_split_sentences() -> None:
    assert split_sentences('She said "Go." Then we went. Is it 3.5 km? Yes! (Really.) Ok') == [
        'She said "Go."',
        "Then we went.",
        "Is it 3.5 km?",
        "Yes!",
        "(Really.)",
        "Ok",
    ]
    assert split_sentences("Ask Dr. Lee, Ph.D. about it. Done.") == ["Ask Dr. Lee, Ph.D. about it.", "Done."]


# --- the whole article -------------------------------------------------------------------------------


def test_article_html_escapes_raw_html_and_drops_unsafe_links() -> None:
    html = article_html(
        article(
            "Hi <script>alert(1)</script> there.\n\n[x](javascript:alert(1)) [ok](https://example.org/)\n"
        )
    )
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "javascript:" not in html
    assert '<a href="https://example.org/">ok</a>' in html

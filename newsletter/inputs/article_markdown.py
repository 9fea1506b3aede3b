"""An article's Markdown as HTML, through Python-Markdown (loaded only when an article is rendered)."""

from __future__ import annotations

import xml.etree.ElementTree as etree
from urllib.parse import urlsplit

import markdown
from markdown.extensions import Extension
from markdown.extensions.sane_lists import SaneListExtension  # an object, not a name: no entry-point search
from markdown.treeprocessors import Treeprocessor


class _SafeLinks(Treeprocessor):
    """Drop link and image targets that are not web or mail addresses (``javascript:`` and the like)."""

    def run(self, root: etree.Element) -> None:
        for element in root.iter():
            for attribute in ("href", "src"):
                target = element.get(attribute)
                if target is not None and not _safe_target(target):
                    del element.attrib[attribute]


class _NoRawHtml(Extension):
    """Show raw HTML in an article as text: a mail to every member is no place for pasted markup."""

    def extendMarkdown(self, md: markdown.Markdown) -> None:  # the name Python-Markdown calls
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        md.treeprocessors.register(_SafeLinks(md), "safe_links", 0)


def _safe_target(target: str) -> bool:
    scheme = urlsplit(target.strip()).scheme.lower()
    return scheme in ("", "http", "https", "mailto", "tel")


def safe_html(body: str) -> str:
    """The whole article as HTML; raw HTML in the Markdown is escaped, unsafe link targets dropped."""
    return markdown.markdown(body, extensions=[SaneListExtension(), _NoRawHtml()], output_format="html")


def plain_html(body: str) -> str:
    """The Markdown as HTML, only for its text (``excerpt`` builds its own HTML from escaped text)."""
    return markdown.markdown(body, extensions=[SaneListExtension()])

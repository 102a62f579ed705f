"""A check of a report page: every image, anchor and link resolves (pure Python, no browser)."""

from __future__ import annotations

import base64
import binascii
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for key in ("id", "name"):
            if values.get(key):
                self.ids.add(values[key])
        if tag == "a" and values.get("href") is not None:
            self.links.append(values["href"])
        if tag == "img":
            self.images.append(values.get("src") or "")


def problems(page: str | Path) -> list[str]:
    """What is broken in the page: images that are neither a decodable data URI nor an existing
    file, ``#anchors`` with no element of that id, and relative links to missing files.
    (A self-contained report holds no external link; one is reported too.)"""
    page = Path(page)
    collector = _Collector()
    collector.feed(page.read_text(encoding="utf-8"))
    found = []
    for src in collector.images:
        if src.startswith("data:"):
            header, _, payload = src.partition(",")
            try:
                if ";base64" not in header or not base64.b64decode(payload, validate=True):
                    found.append(f"image with an empty or non-base64 data URI: {src[:40]}...")
            except binascii.Error:
                found.append(f"image with an undecodable data URI: {src[:40]}...")
        elif not src or not (page.parent / unquote(src)).is_file():
            found.append(f"image not found: {src!r}")
    for href in collector.links:
        url = urlparse(href)
        if url.scheme in ("http", "https"):
            found.append(f"external link in a self-contained report: {href}")
        elif href.startswith("#"):
            if unquote(href[1:]) not in collector.ids:
                found.append(f"anchor without target: {href}")
        elif not (page.parent / unquote(url.path)).exists():
            found.append(f"link to a missing file: {href}")
    return found

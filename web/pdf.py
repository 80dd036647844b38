"""The HTML report as an A4 PDF, with WeasyPrint (the optional ``pdf`` extra).

WeasyPrint needs Pango (Debian: libpango-1.0-0, libpangoft2-1.0-0) besides its Python
package; without either the rest of the app works and a PDF request gets a bilingual
message saying what to install. The report's HTML is self-contained (its style and charts
inline, web.report_render), so the renderer fetches nothing: no file, no network.
"""

from __future__ import annotations

import functools
import logging

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'pue-monitor[pdf]' (Debian: apt-get install libpango-1.0-0 " \
               "libpangoft2-1.0-0)"


class PdfUnavailable(Exception):
    """WeasyPrint cannot be used here; ``reason`` says why (its import error)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@functools.cache
def _weasyprint():  # imported once, on the first PDF asked (it takes a few tenths of a s)
    try:
        import weasyprint
    except ImportError as exc:  # the extra is not installed
        return None, f"{exc} (the optional extra 'pdf' is not installed)"
    except OSError as exc:  # the package is, but a system library (Pango) is missing
        return None, f"{exc} (a system library WeasyPrint needs is missing)"
    return weasyprint, ""


def unavailable_reason() -> str | None:
    """None if PDFs can be made here, else why not (technical text, English)."""
    module, reason = _weasyprint()
    return None if module is not None else reason


def html_to_pdf(html: str) -> bytes:
    """The report's HTML as a PDF (its ``@page`` rule makes the pages A4).

    :raises PdfUnavailable: WeasyPrint or a library it needs is missing.
    """
    module, reason = _weasyprint()
    if module is None:
        raise PdfUnavailable(reason)

    class NoFetch(module.URLFetcher):  # type: ignore[name-defined,misc]
        def fetch(self, url, headers=None):  # noqa: ANN001, ANN202 - WeasyPrint's signature
            raise ValueError(f"the report fetches nothing ({url[:80]!r} refused)")

    return module.HTML(string=html, url_fetcher=NoFetch()).write_pdf()


__all__ = ["INSTALL_HINT", "PdfUnavailable", "html_to_pdf", "unavailable_reason"]

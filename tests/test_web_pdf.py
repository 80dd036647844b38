"""The report as an A4 PDF (web/pdf.py, WeasyPrint from the `pdf` extra): its text is the
HTML report's in the chosen language; without WeasyPrint, a bilingual 501 saying what to
install."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from pue_monitor.figures.rollup import rollup
from pue_monitor.store.sqlite import Store
from pue_monitor.web import create_app, pdf
from tests.web_fixtures import NOW, demo_config, fill

PERIOD = "2026-11-25T09:45..2026-11-25T10:00"  # the fixture's whole 15-minute block
# A4 is 210 x 297 mm; a PDF point is 1/72 inch (25.4 mm): 595.28 x 841.89 pt.
A4_PT = (210 / 25.4 * 72, 297 / 25.4 * 72)


@pytest.fixture()
def client(tmp_path):
    store = Store.open(tmp_path / "data")
    fill(store)
    config = demo_config()
    rollup(store, config, NOW + 120)
    yield create_app(config, store, clock=lambda: NOW, testing=True).test_client()
    store.close()


def pdf_text(data: bytes) -> tuple[str, list[tuple[float, float]]]:
    reader = PdfReader(io.BytesIO(data))
    return ("\n".join(page.extract_text() for page in reader.pages),
            [(float(p.mediabox.width), float(p.mediabox.height)) for p in reader.pages])


# que-vo-dc: 150 kW over 100 kW for the whole block (tests/web_fixtures.py): PUE 1.50,
# over the 1.4 threshold; the figure written as each language writes it.
@pytest.mark.parametrize(("lang", "words"), [
    ("vi", ("Trung tâm dữ liệu KCN Quế Võ", "1,50", "Vượt ngưỡng", "Người lập báo cáo")),
    ("en", ("Quế Võ Industrial Park Data Center", "1.50", "Over threshold", "Prepared by")),
])
def test_the_pdf_report_is_a4_in_the_chosen_language(client, lang, words):
    answer = client.get(f"/reports/view?site=que-vo-dc&period={PERIOD}&format=pdf&lang={lang}")
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    assert answer.mimetype == "application/pdf"
    assert 'filename="pue-report-que-vo-dc-' in answer.headers["Content-Disposition"]
    data = answer.get_data()
    assert data.startswith(b"%PDF-")
    text, sizes = pdf_text(data)
    for word in words:
        assert word in text, (word, text[:800])
    assert sizes and all(w == pytest.approx(A4_PT[0], abs=0.5)
                         and h == pytest.approx(A4_PT[1], abs=0.5) for w, h in sizes)
    # The browser's navigation is not printed.
    assert "Tiếng Việt" not in text and "English" not in text


def test_the_html_report_links_its_pdf(client):
    html = client.get("/reports/view?site=que-vo-dc&period=2026&format=html&lang=vi"
                      ).get_data(as_text=True)
    assert ("/reports/view?site=que-vo-dc&amp;period=2026&amp;format=pdf&amp;lang=vi" in html
            and "Tải PDF (A4)" in html)


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_without_weasyprint_the_answer_says_what_to_install_in_both_languages(
        client, monkeypatch, lang):
    monkeypatch.setattr(pdf, "_weasyprint",
                        lambda: (None, "No module named 'weasyprint' (the optional extra "
                                       "'pdf' is not installed)"))
    answer = client.get(f"/reports/view?site=que-vo-dc&period={PERIOD}&format=pdf&lang={lang}")
    assert answer.status_code == 501
    body = answer.get_data(as_text=True).replace("&#39;", "'")
    assert "Máy chủ này chưa tạo được PDF" in body
    assert "This server cannot make PDFs yet" in body
    assert "pip install 'pue-monitor[pdf]'" in body and "No module named 'weasyprint'" in body
    # The language asked for comes first.
    first = "Máy chủ" if lang == "vi" else "This server"
    assert body.index(first) == min(body.index("Máy chủ"), body.index("This server"))

"""Text for the PDF font: the Adobe CJK font STSong-Light (Adobe-GB1 through the UniGB-UCS2-H CMap) has
no glyph for sub/superscript digits, U+00B7 '·', U+2212 '−' or '•', so a report printed "CO�" and "m�".
Paragraph text gets reportlab's <sub>/<super> markup instead, and the few symbols their GB 2312 twins."""

from __future__ import annotations

from xml.sax.saxutils import escape

_SUB = {chr(0x2080 + d): str(d) for d in range(10)}
_SUPER = {"⁰": "0", "¹": "1", "²": "2", "³": "3", "⁴": "4", "⁵": "5", "⁶": "6", "⁷": "7", "⁸": "8", "⁹": "9",
          "⁻": "-", "⁺": "+"}
# GB 2312's middle dot is the one UniGB-UCS2-H maps from U+30FB; the others have plain twins
_TWIN = {"·": "・", "•": "・", "−": "-", "µ": "μ", "\u00a0": " "}


def para(text: str) -> str:
    """Paragraph markup for ``text``: XML-escaped, sub/superscripts as markup, symbols replaced."""
    out: list[str] = []
    for ch in escape(text):
        if ch in _SUB:
            out.append(f"<sub>{_SUB[ch]}</sub>")
        elif ch in _SUPER:
            out.append(f"<super>{_SUPER[ch]}</super>")
        else:
            out.append(_TWIN.get(ch, ch))
    return "".join(out)


def plain(text: str) -> str:
    """For chart labels (no markup there): CO₂ → CO2, m³ → m3."""
    return "".join(_SUB.get(ch) or _SUPER.get(ch) or _TWIN.get(ch, ch) for ch in text)

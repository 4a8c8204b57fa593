"""Reading a QuickFIX message in one SWIG call (gateway.fix.messages.to_dict): data fields, which may hold SOH,
are taken at their length, values may hold '=', any tag number reads, and the list of the length fields stays
in step with the dictionaries."""

from __future__ import annotations

import re
from pathlib import Path

import quickfix as fix

from gateway.fix import messages as fm

SPECS = Path(__file__).resolve().parent.parent / "fix_specs"


def test_the_data_length_tags_are_those_of_the_dictionaries() -> None:
    found = {93}  # SignatureLength precedes Signature(89) in the trailer
    for xml in SPECS.glob("FIX*.xml"):
        pairs = re.findall(r"<field number=['\"](\d+)['\"] name=['\"]\w+['\"] type=['\"](\w+)['\"]", xml.read_text())
        types = {int(n): t for n, t in pairs}
        found |= {n for n, t in types.items() if t == "LENGTH" and types.get(n + 1) in ("DATA", "XMLDATA")}
    assert fm.DATA_LENGTH_TAGS == found


def test_a_data_field_with_soh_inside_is_one_field() -> None:
    m = fm.new_message("D")
    header_xml = "<x>\x0135=G\x01</x>"
    m.getHeader().setField(212, str(len(header_xml)))
    m.getHeader().setField(213, header_xml)
    text = "a\x0111=EVIL\x01b é"  # lengths are in bytes: é is two
    for tag, value in ((11, "C1"), (55, "AAPL"), (354, str(len(text.encode()))), (355, text), (58, "after")):
        m.setField(tag, value)
    f = fm.to_dict(m)
    assert (f[35], f[11], f[55], f[213], f[355], f[58]) == ("D", "C1", "AAPL", header_xml, text, "after")


def test_a_message_without_data_fields_reads_as_before() -> None:
    m = fix.Message("8=FIX.4.4\x019=40\x0135=D\x0134=2\x0149=A\x0156=B\x0111=C1\x0155=AAPL\x0110=000\x01", False)
    f = fm.to_dict(m)  # BodyLength(9) and CheckSum(10) are QuickFIX's own
    assert sorted(f) == [8, 9, 10, 11, 34, 35, 49, 55, 56]
    assert [f[t] for t in (8, 35, 34, 49, 56, 11, 55)] == ["FIX.4.4", "D", "2", "A", "B", "C1", "AAPL"]


def _field_by_field(text: str) -> dict[int, str]:
    """The plain reading the fast path must agree with (for a message without data fields)."""
    out: dict[int, str] = {}
    for part in text.split("\x01")[:-1]:
        tag, _, value = part.partition("=")
        out[int(tag)] = value
    return out


def test_values_holding_equals_signs_and_any_tag_number_read_as_sent() -> None:
    # One '=' in a value makes the C split's piece count odd, two make it even again but misaligned; a tag
    # above the look-up table's range (custom tags 5000-9999, user-defined up to 49999) is not in it.
    cases = [((58, "a=b"),), ((58, "x=1 y=2"), (11, "C=D=E")), ((9999, "custom"), (20000, "user")),
             ((58, "k="), (5999, "=v"), (6000, "")), ((58, "=="), (11, "C1"))]
    for extra in cases:
        m = fm.new_message("D")
        m.setField(55, "AAPL")
        for tag, value in extra:
            m.setField(tag, value)
        text = m.toString()
        f = fm.to_dict(m)
        assert f == _field_by_field(text), extra
        assert all(f[tag] == value for tag, value in extra) and f[55] == "AAPL" and f[35] == "D"

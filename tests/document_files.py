"""Builders of test documents whose bytes the tests control: HWPX packages, HWP 5.0 compound
files and PDFs with glyphs placed one by one (letter spacing), written per the formats' specs.

No library writes HWP or OLE compound files (olefile only reads), and a Korean-capable font is
not installed everywhere, so these are built here from the published structures: enough of
each format to exercise the readers, nothing more.
"""

from __future__ import annotations

import io
import itertools
import struct
import zipfile
import zlib

# --- HWPX (OWPML) ---------------------------------------------------------------------------

_NS = (
    'xmlns:hp="http://www.hancom.co.kr/hwpml/2011/paragraph" '
    'xmlns:hs="http://www.hancom.co.kr/hwpml/2011/section" '
    'xmlns:hh="http://www.hancom.co.kr/hwpml/2011/head" '
    'xmlns:opf="http://www.idpf.org/2007/opf/"'
)
HWPX_HEADER = f"""<?xml version="1.0" encoding="UTF-8"?>
<hh:head {_NS}><hh:refList>
<hh:paraProperties>
  <hh:paraPr id="0"><hh:heading type="NONE" idRef="0" level="0"/></hh:paraPr>
  <hh:paraPr id="20"><hh:heading type="BULLET" idRef="1" level="0"/></hh:paraPr>
  <hh:paraPr id="21"><hh:heading type="BULLET" idRef="1" level="1"/></hh:paraPr>
  <hh:paraPr id="22"><hh:heading type="OUTLINE" idRef="0" level="2"/></hh:paraPr>
</hh:paraProperties>
<hh:styles>
  <hh:style id="0" type="PARA" name="바탕글" engName="Normal"/>
  <hh:style id="2" type="PARA" name="개요 1" engName="Outline 1"/>
  <hh:style id="3" type="PARA" name="개요 2" engName="Outline 2"/>
</hh:styles>
</hh:refList></hh:head>"""


def hwpx_paragraph(text: str, *, style: str = "0", shape: str = "0") -> str:
    return (
        f'<hp:p paraPrIDRef="{shape}" styleIDRef="{style}"><hp:run charPrIDRef="0">'
        f"<hp:t>{text}</hp:t></hp:run></hp:p>"
    )


def hwpx_table(rows: list[list[str]]) -> str:
    cells = "".join(
        "<hp:tr>"
        + "".join(f"<hp:tc><hp:subList>{hwpx_paragraph(cell)}</hp:subList></hp:tc>" for cell in row)
        + "</hp:tr>"
        for row in rows
    )
    return f'<hp:p paraPrIDRef="0" styleIDRef="0"><hp:run><hp:tbl>{cells}</hp:tbl></hp:run></hp:p>'


def hwpx_file(sections: list[str], *, title: str = "") -> bytes:
    """An HWPX package whose sections hold the given ``hp:p`` XML."""
    items = "".join(
        f'<opf:item id="section{n}" href="Contents/section{n}.xml"/>' for n in range(len(sections))
    )
    refs = "".join(f'<opf:itemref idref="section{n}"/>' for n in range(len(sections)))
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><opf:package {_NS}><opf:metadata>'
        f"<opf:title>{title}</opf:title></opf:metadata><opf:manifest>{items}</opf:manifest>"
        f"<opf:spine>{refs}</opf:spine></opf:package>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/hwp+zip")
        archive.writestr("Contents/content.hpf", content)
        archive.writestr("Contents/header.xml", HWPX_HEADER)
        for n, body in enumerate(sections):
            archive.writestr(
                f"Contents/section{n}.xml",
                f'<?xml version="1.0" encoding="UTF-8"?><hs:sec {_NS}>{body}</hs:sec>',
            )
    return buffer.getvalue()


# --- HWP 5.0 --------------------------------------------------------------------------------

PARA_HEADER, PARA_TEXT, CTRL_HEADER, LIST_HEADER, TABLE = 66, 67, 71, 72, 77


def hwp_record(tag: int, level: int, payload: bytes) -> bytes:
    if len(payload) >= 0xFFF:
        return struct.pack("<II", tag | level << 10 | 0xFFF << 20, len(payload)) + payload
    return struct.pack("<I", tag | level << 10 | len(payload) << 20) + payload


def hwp_text(text: str, *, tab_before: bool = False) -> bytes:
    """PARA_TEXT: UTF-16LE, an inline tab control (8 units) if asked, a paragraph end (13)."""
    units = b""
    if tab_before:
        units += struct.pack("<8H", 9, 0, 0, 0, 0, 0, 0, 9)
    return units + text.encode("utf-16-le") + struct.pack("<H", 13)


def hwp_paragraph(text: str, level: int = 0, **kwargs: bool) -> bytes:
    return hwp_record(PARA_HEADER, level, b"\0" * 22) + hwp_record(
        PARA_TEXT, level + 1, hwp_text(text, **kwargs)
    )


def hwp_table(rows: list[list[str]], level: int = 0) -> bytes:
    """A paragraph anchoring a table: its text holds the extended control (11, 8 units)."""
    anchor = struct.pack("<8H", 11, 0x6C74, 0x2062, 0, 0, 0, 0, 11) + struct.pack("<H", 13)
    out = hwp_record(PARA_HEADER, level, b"\0" * 22) + hwp_record(PARA_TEXT, level + 1, anchor)
    out += hwp_record(CTRL_HEADER, level + 1, b" lbt" + b"\0" * 40)
    out += hwp_record(
        TABLE, level + 2, struct.pack("<IHH", 0, len(rows), len(rows[0])) + b"\0" * 10
    )
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            header = struct.pack("<hHI", 1, 0, 0) + struct.pack("<4H", c, r, 1, 1) + b"\0" * 18
            out += hwp_record(LIST_HEADER, level + 2, header)
            out += hwp_paragraph(cell, level + 2)
    return out


def hwp_file(section: bytes, *, compressed: bool = True, flags: int = 0) -> bytes:
    """An HWP 5.0 compound file with a FileHeader and one BodyText/Section0."""
    header = b"HWP Document File".ljust(32, b"\0") + struct.pack(
        "<II", 0x05000300, flags | (1 if compressed else 0)
    )
    if compressed:
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        section = packer.compress(section) + packer.flush()
    return compound_file(
        {"FileHeader": header.ljust(256, b"\0")}, {"BodyText": {"Section0": section}}
    )


def compound_file(streams: dict[str, bytes], storages: dict[str, dict[str, bytes]]) -> bytes:
    """A minimal OLE compound file (MS-CFB version 3, 512-byte sectors, one FAT sector).

    Every stream is padded with NULs to the 4,096-byte mini-stream cutoff so that all live in
    regular sectors (no mini stream is needed): the HWP reader reads the FileHeader's first
    256 bytes, and what follows a deflate stream's end, or records of tag 0, mean nothing.
    """
    sector = 512
    free, end_chain, fat_sect, no_stream = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
    entries: list[dict[str, object]] = [{"name": "Root Entry", "type": 5}]
    data_sectors: list[bytes] = []
    fat = [fat_sect, end_chain]  # sector 0: the FAT, sector 1: the directory

    def add_stream(name: str, content: bytes) -> int:
        content = content.ljust(4096, b"\0")
        padded = content.ljust(-(-len(content) // sector) * sector, b"\0")
        start = 2 + len(data_sectors)
        count = len(padded) // sector
        for n in range(count):
            data_sectors.append(padded[n * sector : (n + 1) * sector])
            fat.append(start + n + 1 if n < count - 1 else end_chain)
        entries.append({"name": name, "type": 2, "start": start, "size": len(content)})
        return len(entries) - 1

    top = [add_stream(name, content) for name, content in streams.items()]
    for storage, children in storages.items():
        entries.append({"name": storage, "type": 1})
        index = len(entries) - 1
        kids = [add_stream(name, content) for name, content in children.items()]
        entries[index]["child"] = _chain(entries, kids)
        top.append(index)
    entries[0]["child"] = _chain(entries, top)
    assert len(fat) <= sector // 4 and len(entries) <= 4
    directory = b"".join(_entry(e, no_stream, end_chain) for e in entries).ljust(sector, b"\0")
    fat_bytes = struct.pack(f"<{sector // 4}I", *(fat + [free] * (sector // 4 - len(fat))))
    header = (
        bytes.fromhex("D0CF11E0A1B11AE1")
        + b"\0" * 16
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + b"\0" * 6
        + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, end_chain, 0, end_chain, 0)
        + struct.pack("<109I", 0, *([free] * 108))
    )
    return header + fat_bytes + directory + b"".join(data_sectors)


def _chain(entries: list[dict[str, object]], ids: list[int]) -> int:
    """Siblings as a right-leaning chain, in the order CFB compares names (length, then
    text); returns the first, the parent's child."""
    ordered = sorted(
        ids, key=lambda i: (len(str(entries[i]["name"])), str(entries[i]["name"]).upper())
    )
    for a, b in itertools.pairwise(ordered):
        entries[a]["right"] = b
    return ordered[0]


def _entry(entry: dict[str, object], no_stream: int, end_chain: int) -> bytes:
    name = str(entry["name"]).encode("utf-16-le") + b"\0\0"
    return (
        name.ljust(64, b"\0")
        + struct.pack("<HBB", len(name), int(entry["type"]), 1)  # type: ignore[call-overload]
        + struct.pack(
            "<III",
            entry.get("left", no_stream),
            entry.get("right", no_stream),
            entry.get("child", no_stream),
        )
        + b"\0" * 16
        + b"\0" * 4
        + b"\0" * 16
        + struct.pack("<IQ", entry.get("start", end_chain), entry.get("size", 0))
    )


# --- PDF with glyphs placed one by one -----------------------------------------------------


def spaced_pdf(
    lines: list[str],
    *,
    size: float = 11,
    tracking: float = 3,
    space: float | None = None,
    title: str = "",
) -> bytes:
    """A PDF whose every glyph is placed on its own (``Tm`` per glyph), as letter-spaced
    Korean documents are: full-width glyphs (1 em) for Hangul, half-width for the rest, and
    ``tracking`` points between letters. A space is a space glyph of half an em, or, with
    ``space`` set, no glyph but a gap of that many points (a generator that only moves).
    """
    chars = sorted({c for line in lines for c in line if c != " " or space is None})
    cid = {c: n + 1 for n, c in enumerate(chars)}
    width = {c: 1000 if ord(c) >= 0x1100 else 500 for c in chars}
    ops = ["BT", f"/F1 {size} Tf"]
    y = 720.0
    for line in lines:
        x = 72.0
        for c in line:
            if c == " " and space is not None:
                x += space
                continue
            ops.append(f"1 0 0 1 {x:.2f} {y:.2f} Tm <{cid[c]:04X}> Tj")
            x += width[c] / 1000 * size + tracking
        y -= size * 2
    ops.append("ET")
    stream = "\n".join(ops).encode()
    cmap = (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def /CMapType 2 def\n"
        "1 begincodespacerange <0000> <FFFF> endcodespacerange\n"
        f"{len(chars)} beginbfchar\n"
        + "".join(f"<{cid[c]:04X}> <{ord(c):04X}>\n" for c in chars)
        + "endbfchar endcmap CMapName currentdict /CMap defineresource pop end end"
    ).encode()
    widths = " ".join(f"{cid[c]} [{width[c]}]" for c in chars)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type0 /BaseFont /TestGothic /Encoding /Identity-H "
        b"/DescendantFonts [6 0 R] /ToUnicode 7 0 R >>",
        b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /TestGothic /CIDSystemInfo "
        b"<< /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /DW 1000 /W [%s] >>"
        % widths.encode(),
        b"<< /Length %d >>\nstream\n" % len(cmap) + cmap + b"\nendstream",
        b"<< /Title (%s) >>" % title.encode("latin-1"),
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 8 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)

"""The text of a PDF WeasyPrint made, read back without a PDF library: objects (in object streams
too) inflated, each font's ToUnicode map read, and the glyph strings of its text operators
decoded with the map of the font they are shown in. One line per text operator."""

import re
import zlib

_OBJECT = re.compile(rb"(\d+) 0 obj\s*(.*?)(endobj|stream)", re.S)


def _objects(pdf: bytes) -> dict[int, tuple[bytes, bytes | None]]:
    """Object number -> (its dictionary, its inflated stream or None)."""
    objects = {}
    position = 0
    while match := _OBJECT.search(pdf, position):
        head, data = match.group(2), None
        position = match.end()
        length = re.search(rb"/Length (\d+)", head)
        if match.group(3) == b"stream" and length:
            # The stream's bytes by its length: compressed data may hold anything, "endobj" too.
            start = match.end()
            start += 2 if pdf[start : start + 2] == b"\r\n" else 1
            data = pdf[start : start + int(length.group(1))]
            position = pdf.index(b"endobj", start + len(data)) + len(b"endobj")
            if b"/FlateDecode" in head:
                data = zlib.decompress(data)
        objects[int(match.group(1))] = (head, data)
    for head, data in list(objects.values()):
        if b"/Type /ObjStm" in head:
            count = int(re.search(rb"/N (\d+)", head).group(1))
            first = int(re.search(rb"/First (\d+)", head).group(1))
            numbers = [int(n) for n in data[:first].split()]
            pairs = list(zip(numbers[0::2], numbers[1::2], strict=True))[:count]
            for i, (number, offset) in enumerate(pairs):
                end = first + pairs[i + 1][1] if i + 1 < len(pairs) else len(data)
                objects[number] = (data[first + offset : end], None)
    return objects


def _cmap(data: bytes) -> dict[str, str]:
    mapping = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", data, re.S):
        for code, text in re.findall(rb"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", block):
            mapping[code.decode().lower()] = bytes.fromhex(text.decode()).decode("utf-16-be")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", data, re.S):
        for low, high, text in re.findall(rb"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", block):
            start, base = int(low, 16), int(text, 16)
            for code in range(start, int(high, 16) + 1):
                mapping[f"{code:0{len(low)}x}"] = chr(base + code - start)
    return mapping


def pdf_pages(pdf: bytes) -> int:
    return sum(1 for head, _ in _objects(pdf).values() if re.search(rb"/Type /Page[^s]", head))


def pdf_text(pdf: bytes) -> str:
    objects = _objects(pdf)
    maps = {}  # font object number -> its ToUnicode map
    for number, (head, _data) in objects.items():
        to_unicode = re.search(rb"/ToUnicode (\d+) 0 R", head)
        if b"/Type /Font" in head and to_unicode:
            maps[number] = _cmap(objects[int(to_unicode.group(1))][1])
    names = {}  # font resource name -> its map
    for head, _data in objects.values():
        for name, number in re.findall(rb"/([A-Za-z0-9_.+-]+) (\d+) 0 R", head):
            if int(number) in maps:
                names[name.decode()] = maps[int(number)]
    lines = []
    for _head, data in objects.values():
        if not data or b"BT" not in data or b"Tf" not in data:
            continue
        font = {}
        for token in re.finditer(
            rb"/([A-Za-z0-9_.+-]+) [\d.]+ Tf|\[(.*?)\]\s*TJ|<([0-9a-fA-F]*)>\s*Tj", data, re.S
        ):
            if token.group(1):
                font = names.get(token.group(1).decode(), {})
                continue
            strings = re.findall(rb"<([0-9a-fA-F]*)>", token.group(2) or b"<" + token.group(3) + b">")
            hexes = b"".join(strings).decode().lower()
            lines.append("".join(font.get(hexes[i : i + 4], "?") for i in range(0, len(hexes), 4)))
    return "\n".join(lines)


def pdf_line_segments(pdf: bytes) -> int:
    """Straight lines drawn (a move then a line-to), in all the PDF's streams: the cut marks."""
    return sum(
        len(re.findall(rb"[\d.]+ [\d.]+ m\n[\d.]+ [\d.]+ l\n", data or b""))
        for _head, data in _objects(pdf).values()
    )

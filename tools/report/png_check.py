#!/usr/bin/python3
"""Looks at a screenshot (PNG, decoded here with the standard library only) the way the report test needs:

  png_check.py stats SHOT.png             JSON: width, height, distinct colours, the share of pixels that
                                          differ from the background (the most common colour), and the same
                                          share per horizontal band of 200 rows (a blank page, or a page
                                          whose script failed after the header, shows as empty bands)
  png_check.py crop SHOT.png Y0 Y1 OUT.png  rows [Y0, Y1) as a new PNG (to look at one part of a long page)
"""
import json
import struct
import sys
import zlib


def read_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit("%s: not a PNG" % path)
    off, idat, w = 8, b"", None
    while off < len(data):
        (n,) = struct.unpack(">I", data[off:off + 4])
        kind = data[off + 4:off + 8]
        chunk = data[off + 8:off + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            if depth != 8 or ctype not in (2, 6) or interlace:
                sys.exit("%s: only 8-bit RGB / RGBA, non-interlaced (got depth %d, colour type %d)" % (path, depth, ctype))
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        off += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def pixels(row, bpp):
    return [row[i:i + 3] for i in range(0, len(row), bpp)]


def stats(path):
    w, h, bpp, rows = read_png(path)
    counts = {}
    for r in rows:
        for p in pixels(r, bpp):
            counts[p] = counts.get(p, 0) + 1
    background = max(counts, key=counts.get)
    bands = []
    for y0 in range(0, h, 200):
        band = rows[y0:y0 + 200]
        other = sum(1 for r in band for p in pixels(r, bpp) if p != background)
        bands.append(other / float(w * len(band)))
    print(json.dumps({"width": w, "height": h, "colors": len(counts),
                      "non_background": 1 - counts[background] / float(w * h), "bands": bands}))


def crop(path, y0, y1, out):
    w, h, bpp, rows = read_png(path)
    body = b"".join(b"\x00" + r for r in rows[y0:y1])
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    ihdr = struct.pack(">IIBBBBB", w, len(rows[y0:y1]), 8, 2 if bpp == 3 else 6, 0, 0, 0)
    with open(out, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(body, 6)) + chunk(b"IEND", b""))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "stats":
        stats(sys.argv[2])
    elif len(sys.argv) == 6 and sys.argv[1] == "crop":
        crop(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        sys.exit(__doc__)

#!/usr/bin/env python3
"""Writes tests/data/png_ref.safetensors for tests/test_png_read.c: PNGs of every colour type and bit depth that
PNG allows (written here byte by byte: grey 1/2/4/8/16 bits, grey + alpha 8/16, RGB 8/16, RGBA 8/16, palettes of
1/4/8 bits), some with a gAMA chunk far from sRGB's, some with tRNS transparency, two interlaced (Adam7), and the
pixels Pillow gives for each with Image.open(...).convert("RGB") and .convert("L") (the EDM / EDM2 dataset tools
read their sources with convert("RGB")). Each case i is stored as case{i}/png (the file's bytes), case{i}/rgb
[H, W, 3] and case{i}/l [H, W], all F32 (exact for 0..255); the cases' names in the metadata.
Made with Pillow 10.4.0 (of the EDM2 reference's time), numpy 2.4.6:
    python3 tests/data/make_png_ref.py"""
import io
import os
import struct
import zlib

import numpy as np
import PIL.Image
from safetensors.numpy import save_file

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(samples, depth):
    """One row of integer samples at `depth` bits, big-endian, padded to a byte."""
    if depth == 16:
        return b"".join(struct.pack(">H", int(v)) for v in samples)
    if depth == 8:
        return bytes(int(v) for v in samples)
    bits = "".join(format(int(v), f"0{depth}b") for v in samples)
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))


def png(samples, depth, color_type, extra=b"", interlaced=False):
    """samples: [H, W, C] integers; each row filtered with filter type 0."""
    h, w, c = samples.shape
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlaced else 0)
    raw = b""
    passes = ADAM7 if interlaced else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        for row in sub:
            raw += b"\0" + pack_row(row.reshape(-1), depth)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw)) +
            chunk(b"IEND", b""))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    rng = np.random.default_rng(7)
    gamma_1 = chunk(b"gAMA", struct.pack(">I", 100000))  # linear: far from sRGB's 45455
    palette = rng.integers(0, 256, (256, 3))
    plte = lambda n: chunk(b"PLTE", bytes(int(v) for v in palette[:n].reshape(-1)))
    H, W = 5, 7
    cases = []

    def samples(c, depth):
        return rng.integers(0, 1 << depth, (H, W, c))

    for depth in (1, 2, 4, 8):
        cases.append((f"grey{depth}", png(samples(1, depth), depth, 0)))
    g16 = samples(1, 16)
    g16[0, :4, 0] = [0, 1, 255, 256]  # Pillow's I;16 clips: below and above 255
    cases.append(("grey16", png(g16, 16, 0)))
    cases.append(("grey8-trns", png(samples(1, 8), 8, 0, chunk(b"tRNS", struct.pack(">H", 7)))))
    cases.append(("grey-alpha8", png(samples(2, 8), 8, 4)))
    cases.append(("grey-alpha16", png(samples(2, 16), 16, 4)))
    cases.append(("rgb8-gamma1", png(samples(3, 8), 8, 2, gamma_1)))
    rgb = samples(3, 8)
    rgb[0, 0] = [10, 20, 30]
    cases.append(("rgb8-trns", png(rgb, 8, 2, chunk(b"tRNS", struct.pack(">HHH", 10, 20, 30)))))
    cases.append(("rgb16", png(samples(3, 16), 16, 2)))
    rgba = samples(4, 8)
    rgba[:, :, 3] = rng.integers(0, 3, (H, W)) * 127  # transparent, half and opaque pixels
    cases.append(("rgba8-gamma1", png(rgba, 8, 6, gamma_1)))
    cases.append(("rgba16", png(samples(4, 16), 16, 6)))
    for depth in (1, 4, 8):
        n = 1 << depth
        trns = chunk(b"tRNS", bytes(range(0, 256, 256 // n))[:n]) if depth != 4 else b""
        cases.append((f"palette{depth}", png(samples(1, depth), depth, 3, plte(n) + trns)))
    big = rng.integers(0, 256, (11, 13, 3))
    cases.append(("rgb8-interlaced", png(big, 8, 2, interlaced=True)))
    cases.append(("grey2-interlaced", png(rng.integers(0, 4, (9, 10, 1)), 2, 0, interlaced=True)))
    out, names = {}, []
    for i, (name, data) in enumerate(cases):
        im = PIL.Image.open(io.BytesIO(data))
        out[f"case{i}/png"] = np.frombuffer(data, np.uint8).astype(np.float32)
        out[f"case{i}/rgb"] = np.array(im.convert("RGB")).astype(np.float32)
        out[f"case{i}/l"] = np.array(PIL.Image.open(io.BytesIO(data)).convert("L")).astype(np.float32)
        names.append(f"{name} ({im.mode})")
    save_file(out, os.path.join(here, "png_ref.safetensors"),
              metadata={"made_by": "tests/data/make_png_ref.py", "pillow": PIL.__version__, "cases": "; ".join(names)})
    print(f"{len(cases)} cases: " + ", ".join(names))


if __name__ == "__main__":
    main()

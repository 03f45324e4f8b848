#!/usr/bin/env python3
"""Writes tests/data/archives/: the EDM2 dataset tool's datasets in miniature, for tests/test_dataset.c
(host/data_zip.c). The archives are written with Python's zipfile, as the tool writes them (entries stored,
dataset.json beside the images, image k named 00000/img0000000k.png by its convert step and
00000/img-mean-std-0000000k.npy by its encode step, whose arrays np.save writes):
- png.zip: 6 RGB 8x8 PNGs with classes 0..2 (convert's layout); png/ holds the same files unpacked (the
  folder source reads them); png-deflated.zip: the same entries deflated (an archive repacked by `zip`);
  png-zip64.zip: the same with every record in ZIP64 form (zipfile.ZIP64_LIMIT lowered to 0, as archives
  over 4 GiB are written);
- npy.zip: 5 float32 arrays [8, 4, 4] (encode's layout: the means of 4 latent channels, then their stds) with
  classes 0..4, in the .npy version 1.0 header numpy writes; npy/ holds the same files unpacked (the tool's
  encode step writing to a folder, as REPA's preprocessing does too); npy-raw.safetensors: the same arrays as one tensor
  `moments` [5, 8, 4, 4] (F32) for the test's expected values;
- sources.zip: the tool's own sources (the encode job's, [data] source = images) as an archive of a folder of
  class folders, deflated as `zip -r` writes them: PNGs of several sizes and a JPEG (../resize_ref.jpg), with
  what a folder's scan leaves out or orders by folder (a hidden file, macOS's __MACOSX/, a folder without
  images, an image beside the class folders, "a b/" after "a/", "a/z/" before "a/z.png"); sources/ holds the
  same files unpacked.
Standard library only (pixels and moments are functions of their index):
    python3 tests/data/make_dataset_archives.py"""
import json
import os
import shutil
import struct
import zipfile
import zlib

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "archives")
RES = 8


def png_bytes(k, w=RES, h=RES):
    """An RGB w x h PNG (8-bit, no interlace) whose pixels are a function of k."""
    rows = b"".join(b"\0" + bytes((x * 29 + y * 7 + c * 61 + k * 37) % 256 for x in range(w) for c in range(3))
                    for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    head = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def moments(k):
    """[8, 4, 4] float32: channels 0-3 posterior means, 4-7 stds (positive)."""
    return [f32(((i * 13 + k * 7) % 23 - 11) * 0.37 if i < 64 else 0.05 + ((i * 5 + k) % 9) * 0.11)
            for i in range(128)]


def npy_bytes(values, shape):
    """values as float32 in numpy's .npy 1.0 layout (header padded to 64 bytes, as np.save writes it)."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % ", ".join(map(str, shape))
    pad = 64 - (10 + len(header) + 1) % 64
    header = (header + " " * (pad % 64) + "\n").encode()
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + struct.pack("<%df" % len(values), *values)


def write_zip(path, files, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, data in files:  # a fixed time stamp: the same bytes at every run
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = compression
            z.writestr(info, data)


def unpack(folder, files):
    """The files of an archive, written below HERE/folder as the tool writes a dataset to a folder."""
    for name, data in files:
        os.makedirs(os.path.dirname(os.path.join(HERE, folder, name)), exist_ok=True)
        with open(os.path.join(HERE, folder, name), "wb") as f:
            f.write(data)


def write_safetensors(path, tensors):
    header, blobs, at = {}, [], 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + len(data)]}
        blobs.append(data)
        at += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    shutil.rmtree(HERE, ignore_errors=True)
    os.makedirs(HERE)
    pngs = [("00000/img%08d.png" % k, png_bytes(k)) for k in range(6)]
    labels = json.dumps({"labels": [[name, k % 3] for k, (name, _) in enumerate(pngs)]}).encode()
    files = [("dataset.json", labels)] + pngs
    write_zip(os.path.join(HERE, "png.zip"), files)
    write_zip(os.path.join(HERE, "png-deflated.zip"), files, zipfile.ZIP_DEFLATED)
    limit = zipfile.ZIP64_LIMIT
    zipfile.ZIP64_LIMIT = 0  # every size and offset "too large": ZIP64 extra fields and end records
    write_zip(os.path.join(HERE, "png-zip64.zip"), files)
    zipfile.ZIP64_LIMIT = limit
    unpack("png", files)
    arrays = [moments(k) for k in range(5)]
    npys = [("00000/img-mean-std-%08d.npy" % k, npy_bytes(a, (8, 4, 4))) for k, a in enumerate(arrays)]
    labels = json.dumps({"labels": [[name, k] for k, (name, _) in enumerate(npys)]}).encode()
    write_zip(os.path.join(HERE, "npy.zip"), [("dataset.json", labels)] + npys)
    unpack("npy", [("dataset.json", labels)] + npys)
    raw = struct.pack("<%df" % (5 * 128), *[v for a in arrays for v in a])
    write_safetensors(os.path.join(HERE, "npy-raw.safetensors"), {"moments": ("F32", [5, 8, 4, 4], raw)})
    with open(os.path.join(HERE, "..", "resize_ref.jpg"), "rb") as f:
        jpeg = f.read()
    sources = [("a/1.png", png_bytes(1, 20, 18)), ("a/z.png", png_bytes(2, 16, 16)), ("a/z/w.png", png_bytes(3, 24, 17)),
               ("a/.hidden.png", png_bytes(4)), ("a b/2.PNG", png_bytes(5, 17, 30)), ("b/sub/3.jpeg", jpeg),
               ("b/4.png", png_bytes(6, 33, 21)), ("top.png", png_bytes(7, 16, 16)), ("empty/notes.txt", b"none"),
               ("__MACOSX/a/._1.png", b"resource fork")]
    write_zip(os.path.join(HERE, "sources.zip"), sources, zipfile.ZIP_DEFLATED)
    unpack("sources", sources)
    for path in ("png.zip", "png-deflated.zip", "png-zip64.zip", "npy.zip", "sources.zip"):  # Python reads them back
        with zipfile.ZipFile(os.path.join(HERE, path)) as z:
            assert z.testzip() is None


if __name__ == "__main__":
    main()

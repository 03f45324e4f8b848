#!/usr/bin/env python3
"""Writes tests/data/resize_ref.safetensors, resize_ref.jpg and resize_ref_cmyk.jpg for tests/test_image_resize.c:
Pillow's Image.resize (BOX and BICUBIC, the filters of the ADM / EDM2 dataset tool's centre crop) of random
8-bit RGB and grey images, downscaling and upscaling, odd sizes; the dataset tool's "center-crop-dhariwal"
of a 3:2 image to 16x16; a small JPEG with the pixels Pillow decodes from it; and a CMYK JPEG (as Pillow writes
one: Adobe's inverted values) with the RGB pixels Pillow's convert("RGB") makes of it. Pixel values are stored
as F32 (exact for 0..255).
Made with Pillow 10.4.0 (of the EDM2 reference's time; Pillow 13 changed its resampling), numpy 2.4.6:
    python3 tests/data/make_resize_ref.py"""
import io
import os

import numpy as np
import PIL.Image
from safetensors.numpy import save_file


def center_crop_dhariwal(arr, image_size):
    """The ADM (Dhariwal & Nichol) / EDM2 dataset tool's centre crop, as published with ADM."""
    pil_image = PIL.Image.fromarray(arr)
    while min(*pil_image.size) >= 2 * image_size:
        pil_image = pil_image.resize(tuple(x // 2 for x in pil_image.size), resample=PIL.Image.BOX)
    scale = image_size / min(*pil_image.size)
    pil_image = pil_image.resize(tuple(round(x * scale) for x in pil_image.size), resample=PIL.Image.BICUBIC)
    arr = np.array(pil_image)
    crop_y = (arr.shape[0] - image_size) // 2
    crop_x = (arr.shape[1] - image_size) // 2
    return arr[crop_y: crop_y + image_size, crop_x: crop_x + image_size]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    rng = np.random.default_rng(2026)
    out = {}
    cases = [("rgb", (23, 37, 3), (9, 14)), ("rgb", (23, 37, 3), (50, 61)), ("grey", (20, 20, 1), (7, 11)),
             ("rgb", (64, 48, 3), (32, 24)), ("rgb", (5, 7, 3), (5, 13))]
    for i, (kind, shape, (ow, oh)) in enumerate(cases):
        px = rng.integers(0, 256, shape, dtype=np.uint8)
        im = PIL.Image.fromarray(px[:, :, 0] if kind == "grey" else px)
        out[f"case{i}/in"] = px.astype(np.float32)
        for name, f in (("box", PIL.Image.BOX), ("bicubic", PIL.Image.BICUBIC)):
            r = np.array(im.resize((ow, oh), resample=f))
            out[f"case{i}/{name}"] = r.reshape(oh, ow, shape[2]).astype(np.float32)
    # smooth content, so the crop's result is not all clipping
    y, x = np.mgrid[0:75, 0:113]
    big = np.stack([128 + 100 * np.sin(x / 7.0), 128 + 100 * np.cos(y / 5.0), (x * 2 + y) % 256], -1).astype(np.uint8)
    out["crop/in"] = big.astype(np.float32)
    out["crop/out16"] = center_crop_dhariwal(big, 16).astype(np.float32)
    out["crop/out32"] = center_crop_dhariwal(big, 32).astype(np.float32)
    buf = io.BytesIO()
    PIL.Image.fromarray(big[:40, :56]).save(buf, format="JPEG", quality=85)
    with open(os.path.join(here, "resize_ref.jpg"), "wb") as f:
        f.write(buf.getvalue())
    out["jpeg/decoded"] = np.array(PIL.Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).astype(np.float32)
    # CMYK: smooth inks and a black that spans 0..255 (every term of the conversion matters)
    y, x = np.mgrid[0:24, 0:40]
    cmyk = np.stack([128 + 120 * np.sin(x / 5.0), 128 + 120 * np.cos(y / 4.0), (x * 6 + y * 3) % 256,
                     (x * 7 + y * 11) % 256], -1).astype(np.uint8)
    buf = io.BytesIO()
    PIL.Image.fromarray(cmyk, mode="CMYK").save(buf, format="JPEG", quality=90)
    with open(os.path.join(here, "resize_ref_cmyk.jpg"), "wb") as f:
        f.write(buf.getvalue())
    out["jpeg_cmyk/decoded"] = np.array(PIL.Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).astype(np.float32)
    save_file(out, os.path.join(here, "resize_ref.safetensors"),
              metadata={"made_by": "tests/data/make_resize_ref.py", "pillow": PIL.__version__})
    print(f"{len(out)} tensors, jpeg {len(buf.getvalue())} bytes")


if __name__ == "__main__":
    main()

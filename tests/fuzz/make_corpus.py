#!/usr/bin/env python3
"""make_corpus.py BUILD_DIR: writes the seed corpus of the fuzz harnesses into tests/fuzz/corpus/<harness>/
(small valid inputs of every kind the harnesses read; libFuzzer mutates them). The snapshot seed is a real
snapshot of a tiny network trained for a few steps by BUILD_DIR/edm2host. Run it again when a format changes;
the files are committed so that CI needs neither Python nor a training run to fuzz."""
import gzip, json, os, shutil, struct, subprocess, sys, tempfile, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SEP = b"\n--8<--\n"


def out(harness, name, data):
    d = os.path.join(HERE, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors(tensors, meta=None):
    """tensors: list of (name, dtype, shape, raw bytes)."""
    header, off = {}, 0
    if meta:
        header["__metadata__"] = meta
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(t[3] for t in tensors)


def f32(*v):
    return struct.pack("<%df" % len(v), *v)


def png(width, height, channels, pixels):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    color = {1: 0, 3: 2}[channels]
    rows = b"".join(b"\0" + pixels[y * width * channels:(y + 1) * width * channels] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    shutil.rmtree(os.path.join(HERE, "corpus"), ignore_errors=True)
    # safetensors
    out("safetensors", "f32", safetensors([("a", "F32", [2, 2], f32(1, 2, 3, 4))], {"k": "v"}))
    out("safetensors", "mixed", safetensors([("x", "F16", [3], b"\0\x3c" * 3), ("y", "BF16", [1, 1], b"\x80\x3f"),
                                             ("z", "F32", [0, 5], b"")]))
    out("safetensors", "empty", safetensors([]))
    # ... and the kinds of file `edm2host inspect` tells apart by their metadata
    out("safetensors", "snapshot", safetensors([("unet.out_gain", "F32", [], f32(1))],
                                               {"edm2.network": "mp_unet", "model_channels": "4", "edm2.nimg": "8",
                                                "edm2.kimg": "0.008", "edm2.ema": "power", "edm2.ema_label": "0.100"}))
    out("safetensors", "checkpoint", safetensors([("params", "F32", [2], f32(1, 2))],
                                                 {"edm2.checkpoint": "1", "edm2.nimg": "8", "edm2.optimizer_step": "2",
                                                  "edm2.batch": "4", "edm2.seed": "1",
                                                  "edm2.fingerprint": "mp_unet:model_channels=4;channel_mult=1,2"}))
    out("safetensors", "swd", safetensors([("swd/level0", "F32", [2, 2], f32(1, 2, 3, 4))],
                                          {"edm2.metric": "swd", "swd.patches": "2", "swd.channels": "1",
                                           "swd.resolution": "8", "edm2.source": "x"}))
    out("safetensors", "latents", safetensors([("images", "F32", [1, 2, 1, 1], f32(1, 2)), ("labels", "F32", [1], f32(3))],
                                              {"edm2.latents": "sd_vae", "edm2.latent_moments": "1", "edm2.source": "x"}))
    # dataset.json
    out("dataset_json", "labels", json.dumps({"labels": [["00000/img00000000.png", 6], ["00000/img00000001.png", 999]]}).encode())
    out("dataset_json", "null", b'{"labels": null}')
    out("dataset_json", "unlabelled", b'{"labels": [["a.png", null], ["b/c.png", null]]}')
    # config: main.ini, base.ini, --set lines
    base = open(os.path.join(HERE, "..", "configs", "base.ini"), "rb").read()
    out("config", "base", base)
    out("config", "extends", b"extends = base.ini\n[network]\nmodel_channels = 16\n[sampler]\nplugin = heun\nnum_steps = 8\n"
        + SEP + base + SEP + b"ema.stds=0.05,0.1\njob.threads=1\n")
    out("config", "generate", b"[job]\ntype = generate\n[sampler]\nplugin = euler\n[generate]\nnet = x.safetensors\nseeds = 0-3\n")
    out("config", "phema", b"[job]\ntype = phema\n[ema]\nplugin = power\n[phema]\nsnapshots = runs/x\nstds = 0.05\n")
    out("config", "auto", b"extends = base.ini\n[backend]\nplugin = auto\n" + SEP + base + SEP + b"backend.device=0\n")
    out("config", "batch_gpu_auto", b"extends = base.ini\n[training]\nbatch_gpu = auto\n" + SEP + base + SEP +
        b"training.batch_gpu=2\n")
    # IDX: first byte = resolution choice; images, then labels
    im = struct.pack(">IIII", 0x803, 2, 28, 28) + bytes(range(256)) * 6 + bytes(32)
    lb = struct.pack(">II", 0x801, 2) + bytes([3, 7])
    out("idx", "gz", b"\1" + gzip.compress(im) + SEP + gzip.compress(lb))
    out("idx", "plain", b"\0" + im + SEP + lb)
    # PNG: first byte = channels and expected size
    out("png", "gray8", b"\2" + png(8, 8, 1, bytes(range(64))))
    out("png", "rgb3", b"\1" + png(3, 2, 3, bytes(range(18))))
    # source images of the encode job: a PNG and the JPEGs of tests/data (RGB and CMYK, made by make_resize_ref.py)
    out("image", "png", png(5, 3, 3, bytes(range(45))))
    for name, jpeg in (("jpeg", "resize_ref.jpg"), ("jpeg-cmyk", "resize_ref_cmyk.jpg")):
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", jpeg), "rb") as f:
            out("image", name, f.read())
    # the dataset tool's archives (tests/data/archives, make_dataset_archives.py): first byte 1 = a ZIP file, 0 = a
    # .npy array
    archives = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "archives")
    for name in ("png.zip", "png-deflated.zip", "png-zip64.zip", "npy.zip"):
        out("archive", "zip-" + name[:-4], b"\1" + open(os.path.join(archives, name), "rb").read())
    out("archive", "npy", b"\0" + open(os.path.join(archives, "npy", "00000", "img-mean-std-00000000.npy"), "rb").read())
    # checkpoint of the fuzz harness's small run
    meta = {"edm2.checkpoint": "1", "edm2.nimg": "8", "edm2.optimizer_step": "2", "edm2.batch": "4", "edm2.seed": "1",
            "edm2.fingerprint": "mp_unet:model_channels=4;channel_mult=1,2"}
    ts = [(n, "F32", [8], f32(*[0.5 * i for i in range(8)]))
          for n in ["params", "optimizer/exp_avg", "optimizer/exp_avg_sq", "ema/0.100"]]
    out("checkpoint", "good", safetensors(ts, meta))
    # ... and one written for another network (the refusal lists what differs)
    meta["edm2.fingerprint"] = "mp_unet:model_channels=8;channel_mult=1,2;dropout=0.1"
    out("checkpoint", "other_network", safetensors(ts, meta))
    # snapshot: a real one, from a few steps of a tiny network
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "tiny.ini")
        open(cfg, "w").write(
            "[job]\ntype = train\nrun_dir = %s/run\n[network]\nplugin = mp_unet\nimg_resolution = 4\nimg_channels = 1\n"
            "label_dim = 10\nmodel_channels = 4\nchannel_mult = 1\nnum_blocks = 0\nattn_resolutions =\n"
            "channels_per_head = 4\nlogvar_channels = 4\n[loss]\nplugin = edm2\n[optimizer]\nplugin = adam\n"
            "[ema]\nplugin = power\nstds = 0.1\n[data]\nsource = fashion-mnist\nresolution = 4\nmax_images = 64\n"
            "[training]\nbatch = 4\nduration_kimg = 0.008\nsample_grid = false\n" % tmp)
        subprocess.run([os.path.join(build, "edm2host"), "-q", "run", cfg], check=True)
        run = os.path.join(tmp, "run")
        snap = [f for f in os.listdir(run) if f.startswith("network-snapshot-")][0]
        out("snapshot", "tiny", open(os.path.join(run, snap), "rb").read())


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""convert_edm2_pkl.py: network pickles of the EDM2 reference (NVlabs/edm2) -> edm2 network snapshots.

Converts the pickles the reference writes and NVIDIA releases (the pretrained edm2-img512-*.pkl and
edm2-img64-*.pkl, training snapshots network-snapshot-KKKKKKK-S.SSS.pkl, post-hoc reconstructions) into
.safetensors snapshots that `generate`, `evaluate`, `sweep` and `phema` read, with the same tensor names
(unet.enc.64x64_conv.weight, ...; the reference's state_dict names are this project's arena names), each
tensor in the pickle's own dtype (float32, or float16 for training snapshots; loaded as float32), and in
the metadata the network's hyperparameters (the `mp_unet` keys, from the pickle's recorded constructor
arguments), the EMA length sigma_rel and kimg (from the file name, or --ema-std / --kimg), and for
networks of Stable Diffusion VAE latents the latent scaling of their encoder (edm2.latents = sd_vae).

    python3 scripts/convert_edm2_pkl.py edm2-img512-xs-2147483-0.135.pkl            # -> ...0.135.safetensors
    python3 scripts/convert_edm2_pkl.py --outdir run/ training-runs/xs/network-snapshot-*.pkl

Standard library only: no torch, no numpy. The pickle's objects are rebuilt as plain records by a restricted
unpickler: the Python source the reference embeds in its pickles (torch_utils.persistence) is never run, and
no class or function the file names is imported or called (a pickle that would run a command converts to an
error, "'ema' is a posix.system, not the reference's Precond network").

Snapshots named network-snapshot-* are raw EMA snapshots, the inputs of `phema`; other names are taken for
post-hoc reconstructions (edm2.posthoc, which phema does not average again); --raw / --posthoc override.
"""
import argparse
import collections
import io
import json
import os
import pickle
import re
import struct
import sys
import zipfile

# ---- The restricted unpickler: plain records of the objects, tensors as (dtype, shape, bytes) ----


class Record:
    """An object of a class the pickle names (a torch module, an EDM2 network or encoder): its class and state."""

    def __init__(self, kind="", *args):
        self.kind, self.args, self.state = kind, args, {}

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {"": state}


def record_class(kind):
    """A class whose instances are Records of `kind` (pickle's NEWOBJ calls cls.__new__(cls), then BUILD)."""

    class R(Record):
        def __new__(cls, *args, **kwargs):
            obj = object.__new__(cls)
            Record.__init__(obj, kind, *args)
            return obj

        def __init__(self, *args, **kwargs):
            pass

    R.__name__ = kind.rsplit(".", 1)[-1]
    return R


class Storage:
    """A torch storage: its element type (safetensors dtype name, bytes per element) and raw little-endian bytes."""

    def __init__(self, dtype, size, data):
        self.dtype, self.size, self.data = dtype, size, data


class Tensor:
    def __init__(self, storage, offset, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, tuple(shape), tuple(stride)

    def raw(self, name):
        """The tensor's bytes (C order); refuses a strided view (parameters are contiguous)."""
        numel, contiguous = 1, True
        for n, stride in zip(reversed(self.shape), reversed(self.stride)):  # (C order: strides = sizes after)
            contiguous &= n == 1 or stride == numel
            numel *= n
        if not contiguous:
            raise ConvertError(f"tensor {name}: stride {self.stride} of shape {self.shape} is not contiguous")
        a, b = self.offset * self.storage.size, (self.offset + numel) * self.storage.size
        if b > len(self.storage.data):
            raise ConvertError(f"tensor {name}: {numel} values at offset {self.offset} past its storage")
        return memoryview(self.storage.data)[a:b]  # (no copy: the largest released networks hold gigabytes)


class ConvertError(Exception):
    pass


# torch storage classes -> (safetensors dtype, bytes per element)
STORAGE_TYPES = {"FloatStorage": ("F32", 4), "HalfStorage": ("F16", 2), "BFloat16Storage": ("BF16", 2),
                 "DoubleStorage": ("F64", 8)}
TORCH_DTYPES = {"float32": "FloatStorage", "float": "FloatStorage", "float16": "HalfStorage", "half": "HalfStorage",
                "bfloat16": "BFloat16Storage", "float64": "DoubleStorage", "double": "DoubleStorage"}


def rebuild_tensor(storage, offset, shape, stride, *rest):
    if not isinstance(storage, Storage):
        raise ConvertError("a tensor without a storage of float values")
    return Tensor(storage, offset, shape, stride)


def rebuild_parameter(data, *rest):
    return data


def persistent_obj(meta):
    """torch_utils.persistence's objects: the class name and the state (the embedded source is not run)."""
    r = Record(meta.get("class_name", "?"))
    r.state = meta.get("state", {})
    return r


class StorageUnpickler(pickle.Unpickler):
    """The pickle inside a storage's bytes (torch.save): persistent ids ('storage', type, key, location, numel)."""

    def __init__(self, f, loaded):
        super().__init__(f)
        self.loaded = loaded  # key -> Storage (filled in after the pickle, legacy format)

    def find_class(self, module, name):
        if module == "torch" and name in STORAGE_TYPES:
            return name
        if module == "torch" and name in TORCH_DTYPES:
            return TORCH_DTYPES[name]
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise ConvertError(f"unexpected {module}.{name} in a tensor storage")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise ConvertError(f"unexpected persistent id {pid!r:.60} in a tensor storage")
        kind, key, numel = pid[1], str(pid[2]), int(pid[4])
        if kind not in STORAGE_TYPES:
            raise ConvertError(f"tensor storage of type {kind}: expected float32, float16, bfloat16 or float64")
        dtype, size = STORAGE_TYPES[kind]
        if key not in self.loaded:
            self.loaded[key] = Storage(dtype, size, None)
        if numel < 0:
            raise ConvertError("a tensor storage of negative size")
        return self.loaded[key]


def load_storage(b):
    """torch.storage._load_from_bytes: a storage saved by torch.save, legacy format (what pickling a tensor
    writes) or zip."""
    if b[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(b)) as z:
            names = z.namelist()
            pkl = next(n for n in names if n.endswith("/data.pkl") or n == "data.pkl")
            root = pkl[: -len("data.pkl")]
            loaded = {}
            obj = StorageUnpickler(io.BytesIO(z.read(pkl)), loaded).load()
            for key, s in loaded.items():
                s.data = z.read(f"{root}data/{key}")
            return check_storage(obj)
    f = io.BytesIO(b)
    magic = StorageUnpickler(f, {}).load()
    if magic != 0x1950A86A20F9469CFC6C:
        raise ConvertError("a tensor storage in an unknown format")
    StorageUnpickler(f, {}).load()  # protocol version
    StorageUnpickler(f, {}).load()  # system info
    loaded = {}
    obj = StorageUnpickler(f, loaded).load()
    keys = StorageUnpickler(f, {}).load()
    for key in keys:
        s = loaded[str(key)]
        (numel,) = struct.unpack("<q", f.read(8))
        s.data = f.read(numel * s.size)
        if len(s.data) != numel * s.size:
            raise ConvertError("a tensor storage cut short")
    return check_storage(obj)


def check_storage(obj):
    if not isinstance(obj, Storage) or obj.data is None:
        raise ConvertError("a tensor storage without data")
    return obj


class EasyDict(dict):
    pass


class EdmUnpickler(pickle.Unpickler):
    """The reference's pickles: dnnlib.util.EasyDict of persistent objects (torch_utils.persistence), torch
    modules (containers, parameters) and tensors. Every other class or function the pickle names is replaced
    by a record (never imported, never called)."""

    def find_class(self, module, name):
        key = (module, name)
        if key == ("torch_utils.persistence", "_reconstruct_persistent_obj"):
            return persistent_obj
        if key == ("dnnlib.util", "EasyDict"):
            return EasyDict
        if key == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if key == ("torch._utils", "_rebuild_tensor_v2") or key == ("torch._utils", "_rebuild_tensor"):
            return rebuild_tensor
        if key in (("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state")):
            return rebuild_parameter
        if key == ("torch.storage", "_load_from_bytes"):
            return load_storage
        if key == ("builtins", "set"):
            return set
        # Anything else (torch modules, numpy values, what a dataset's or loss's settings hold) becomes an inert
        # record of its name, arguments and state: nothing is imported or called.
        return record_class(f"{module}.{name}")


# ---- From the unpickled objects to a snapshot ----


def module_tensors(obj, prefix, out):
    """A torch module's state_dict: its parameters and persistent buffers, then its submodules', by name."""
    st = obj.state if isinstance(obj, Record) else {}
    skip = st.get("_non_persistent_buffers_set") or set()
    for group in ("_parameters", "_buffers"):
        for name, t in (st.get(group) or {}).items():
            if t is None or (group == "_buffers" and name in skip):
                continue
            if not isinstance(t, Tensor):
                raise ConvertError(f"{prefix}{name}: not a tensor")
            out[prefix + name] = t
    for name, m in (st.get("_modules") or {}).items():
        if m is not None:
            module_tensors(m, f"{prefix}{name}.", out)


# mp_unet's keys, from the reference's constructor arguments, with the reference's defaults where a pickle
# recorded none (Precond: use_fp16, sigma_data, logvar_channels; UNet; Block: channels_per_head, ...).
DEFAULTS = {"model_channels": 192, "channel_mult": [1, 2, 3, 4], "channel_mult_noise": None, "channel_mult_emb": None,
            "num_blocks": 3, "attn_resolutions": [16, 8], "channels_per_head": 64, "label_balance": 0.5,
            "concat_balance": 0.5, "res_balance": 0.3, "attn_balance": 0.3, "clip_act": 256, "dropout": 0,
            "logvar_channels": 128, "sigma_data": 0.5}
REQUIRED = ["img_resolution", "img_channels", "label_dim"]
KEYS = REQUIRED + list(DEFAULTS)  # (in the order of mp_unet's keys)
IGNORED = {"use_fp16"}  # an execution setting: `precision` at generation time


def fmt(v):
    if v is True or v is False:
        return "1" if v else "0"
    if isinstance(v, (list, tuple)):
        return ",".join(fmt(x) for x in v)
    if isinstance(v, float):
        return "%d" % v if v == int(v) and abs(v) < 1e15 else repr(v)  # (256.0 -> 256, as the configs write it)
    return str(v)


def hyperparameters(net):
    """The mp_unet metadata of a Precond record from its recorded constructor arguments."""
    if not isinstance(net, Record) or net.kind != "Precond":
        kind = getattr(net, "kind", type(net).__name__)
        raise ConvertError(f"'ema' is a {kind}, not the reference's Precond network")
    kw = dict(net.state.get("_init_kwargs") or {})
    args = list(net.state.get("_init_args") or [])
    for name, v in zip(REQUIRED, args):
        kw[name] = v
    for name in REQUIRED + ["sigma_data"]:  # (also Precond attributes)
        if name not in kw and name in net.state:
            kw[name] = net.state[name]
    unknown = sorted(k for k in kw if k not in KEYS and k not in IGNORED and k != "resample_filter")
    if unknown:
        raise ConvertError(f"network arguments {', '.join(unknown)}: not part of the EDM2 U-Net this project builds")
    if list(kw.get("resample_filter", [1, 1])) != [1, 1]:
        raise ConvertError(f"resample_filter = {kw['resample_filter']}: only [1, 1] is built here")
    meta = {}
    for k in KEYS:
        v = kw.get(k, DEFAULTS.get(k))
        if k in REQUIRED and v is None:
            raise ConvertError(f"the pickle records no {k}")
        if k in ("channel_mult_noise", "channel_mult_emb") and v is None:
            v = 0  # (automatic, as None in the reference)
        if k == "clip_act" and v is None:
            v = 3.4028234663852886e38  # no clipping (of finite values)
        meta[k] = fmt(v)
    meta["precision"] = "fp32"
    return meta


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def latent_scaling(encoder):
    """edm2.latents, latent_scale and latent_bias of a StabilityVAEEncoder record (float32, as it computes
    them: scale = final_std / raw_std, bias = final_mean - raw_mean scale), or {} for pixels."""
    if encoder is None or (isinstance(encoder, Record) and encoder.kind == "StandardRGBEncoder"):
        return {}
    if not isinstance(encoder, Record) or encoder.kind != "StabilityVAEEncoder":
        raise ConvertError(f"encoder {getattr(encoder, 'kind', type(encoder).__name__)}: expected StabilityVAEEncoder "
                           "or StandardRGBEncoder")
    kw = dict(encoder.state.get("_init_kwargs") or {})
    vae = kw.get("vae_name", "stabilityai/sd-vae-ft-mse")
    if vae != "stabilityai/sd-vae-ft-mse":
        print(f"note: the network was trained on latents of {vae}; [vae] weights must be that VAE's", file=sys.stderr)
    raw_mean = kw.get("raw_mean", [5.81, 3.25, 0.12, -2.15])
    raw_std = kw.get("raw_std", [4.17, 4.62, 3.71, 3.28])
    final_mean, final_std = kw.get("final_mean", 0), kw.get("final_std", 0.5)
    scale = [f32(f32(final_std) / f32(s)) for s in raw_std]  # (a float32 quotient, rounded once)
    bias = [f32(f32(final_mean) - f32(f32(m) * s)) for m, s in zip(raw_mean, scale)]
    return {"edm2.latents": "sd_vae", "edm2.latent_scale": ",".join("%.9g" % v for v in scale),
            "edm2.latent_bias": ",".join("%.9g" % v for v in bias)}


def write_safetensors(path, tensors, metadata):
    """{name: Tensor} in their own dtype, atomically (a temporary file, renamed)."""
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name in sorted(tensors):
        t = tensors[name]
        b = t.raw(name)
        header[name] = {"dtype": t.storage.dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h)
            for b in blobs:
                f.write(b)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def convert(src, dst, kimg=None, ema_std=None, posthoc=None):
    with open(src, "rb") as f:
        try:
            data = EdmUnpickler(f).load()
        except ConvertError:
            raise
        except Exception as e:  # a damaged or foreign file
            raise ConvertError(f"not a readable pickle ({type(e).__name__}: {e})")
    if not isinstance(data, dict) or "ema" not in data:
        raise ConvertError("no 'ema' network in the pickle (expected the reference's snapshot dict)")
    meta = {"edm2.network": "mp_unet"}
    meta.update(hyperparameters(data["ema"]))
    tensors = {}
    module_tensors(data["ema"], "", tensors)
    if not tensors:
        raise ConvertError("the network holds no tensors")
    base = os.path.basename(src)
    m = re.search(r"-(\d{7})-(\d+\.\d+)\.pkl$", base)
    if kimg is None and m:
        kimg = int(m.group(1))
    if ema_std is None and m:
        ema_std = float(m.group(2))
    if kimg is not None:  # (the reference's snapshot names hold kimg = nimg // 1000; nimg as snapshot.c derives it)
        meta["edm2.nimg"] = str(((kimg * 1000 + 999) // 1024) * 1024)
        meta["edm2.kimg"] = "%.3f" % (int(meta["edm2.nimg"]) / 1000)
    if ema_std is not None:
        meta.update({"edm2.ema": "power", "edm2.ema_param": repr(ema_std), "edm2.ema_label": "%.3f" % ema_std})
    if posthoc is None:
        posthoc = not base.startswith("network-snapshot-")
    if posthoc:
        meta["edm2.posthoc"] = "1"
    meta.update(latent_scaling(data.get("encoder")))
    meta["edm2.note"] = f"converted from {base} (an EDM2 reference pickle) by scripts/convert_edm2_pkl.py"
    write_safetensors(dst, tensors, meta)
    n = len(tensors)
    values = sum(len(t.raw(k)) // t.storage.size for k, t in tensors.items())
    dtypes = ",".join(sorted({t.storage.dtype for t in tensors.values()}))
    what = [f"{n} tensors, {values / 1e6:.3f} M values ({dtypes})", f"model_channels {meta['model_channels']}",
            f"{meta['img_channels']}x{meta['img_resolution']}x{meta['img_resolution']}"]
    if "edm2.latents" in meta:
        what.append("SD VAE latents")
    if kimg is not None:
        what.append(f"kimg {kimg}")
    if ema_std is not None:
        what.append(f"sigma_rel {ema_std:.3f}" + (" (post-hoc)" if posthoc else ""))
    print(f"{dst}: {', '.join(what)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pkl", nargs="+", help="the reference's network pickles")
    ap.add_argument("-o", "--output", help="the output file (one input only); default: beside the input, .safetensors")
    ap.add_argument("--outdir", help="write the outputs into this folder")
    ap.add_argument("--kimg", type=int,
                    help="training images in thousands (default: from the name ...-KKKKKKK-S.SSS.pkl)")
    ap.add_argument("--ema-std", type=float, help="the EMA's sigma_rel (default: from the name)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--raw", action="store_true", help="a raw EMA snapshot (an input of phema) whatever its name")
    g.add_argument("--posthoc", action="store_true", help="a post-hoc reconstruction whatever its name")
    a = ap.parse_args()
    if a.output and len(a.pkl) > 1:
        ap.error("--output takes one input; use --outdir for several")
    if a.outdir:
        os.makedirs(a.outdir, exist_ok=True)
    status = 0
    for src in a.pkl:
        stem = os.path.splitext(os.path.basename(src))[0] + ".safetensors"
        dst = a.output or os.path.join(a.outdir or os.path.dirname(src), stem)
        try:
            convert(src, dst, a.kimg, a.ema_std, True if a.posthoc else False if a.raw else None)
        except ConvertError as e:
            print(f"error: {src}: {e}", file=sys.stderr)
            status = 1
        except OSError as e:
            print(f"error: {e.filename or src}: {e.strerror or e}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())

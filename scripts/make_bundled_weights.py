"""Build the bundled, MIT-licensed MTCNN weights ``mtcnn_lab/data/zhang2016_mtcnn.npz``.

What
    Downloads the ``facenet-pytorch`` wheel from PyPI (never installed, no dependencies), reads the
    PyTorch state dicts ``facenet_pytorch/data/{pnet,rnet,onet}.pt`` from it as a zip, rearranges
    every tensor into OpenFace's layout (:class:`mtcnn_lab.weights.NetSpec`) and writes

    * ``zhang2016_mtcnn.npz``   the weight set ``zhang2016`` (via ``save_npz``, made byte-stable);
    * ``zhang2016_mtcnn.json``  provenance: package, version, SHA-256 of the wheel, of each ``.pt``,
      of the npz, and of each net serialised with ``write_dat``;
    * ``LICENSE-zhang2016.md``  the MIT notice that covers these weights.

Why
    OpenFace's ``PNet.dat``/``RNet.dat``/``ONet.dat`` hold exactly the MTCNN weights of Zhang et
    al. 2016, but come with OpenFace's non-commercial license; the same numbers are published under
    the MIT license by the original authors and by facenet-pytorch. Shipping the MIT copy lets the
    package run without OpenFace's files while staying bit-identical to them: the script stops
    with an error unless ``sha256(write_dat(net))`` equals the SHA-256 of OpenFace's ``.dat`` file
    for all three nets, which proves bit-identity without needing (or touching) OpenFace's files.

Mapping (found by comparing every array with ``read_dat`` of OpenFace's files)
    * convolutions: ``convN.weight`` (out, in, kh, kw) is used as is -- same kernel orientation
      (rows = dy, columns = dx), same input-channel order (map 0 = R) -- and ``convN.bias`` too;
    * ``preluN.weight`` are the PReLU slopes as is; pooling layers have no parameters and are
      written with OpenFace's sizes (PNet 2x2/2; RNet, ONet 3x3/2, ONet's third 2x2/2);
    * first fully connected layer of RNet (``dense4``) and ONet (``dense5``): facenet-pytorch
      flattens ``x.permute(0, 3, 2, 1)`` (order x, y, channel), OpenFace flattens channel, x, y,
      so the columns are reordered: ``w.reshape(n, W, H, C).transpose(0, 3, 1, 2).reshape(n, -1)``;
    * last layer: the heads are stacked row-wise into one FC layer -- PNet ``conv4_1`` (2 logits)
      and ``conv4_2`` (4 box offsets), both 1x1 convolutions taken as (n, 32) matrices; RNet
      ``dense5_1``, ``dense5_2``; ONet ``dense6_1``, ``dense6_2``, ``dense6_3`` (10 landmarks,
      5 x then 5 y, already in OpenFace's order).

Usage::

    python scripts/make_bundled_weights.py                 # download, write mtcnn_lab/data/
    python scripts/make_bundled_weights.py --wheel W.whl   # use an already downloaded wheel
    python scripts/make_bundled_weights.py --out DIR       # write somewhere else

Needs ``torch`` (only to unpickle the state dicts, loaded with ``weights_only=True``).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # use this checkout's mtcnn_lab, installed or not

from mtcnn_lab.weights.dat import write_dat  # noqa: E402
from mtcnn_lab.weights.netspec import FC, Conv, MaxPool, NetSpec, PReLU, WeightSet  # noqa: E402
from mtcnn_lab.weights.sets import BUNDLED_FILE, bundled_data, load_npz, save_npz  # noqa: E402

PACKAGE = "facenet-pytorch"
VERSION = "2.6.0"
KNOWN_WHEEL = "facenet_pytorch-2.6.0-py3-none-any.whl"
KNOWN_WHEEL_SHA256 = "ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca"
LICENSE_MEMBER = f"facenet_pytorch-{VERSION}.dist-info/LICENSE.md"

NPZ_NAME = BUNDLED_FILE
JSON_NAME = "zhang2016_mtcnn.json"
LICENSE_NAME = "LICENSE-zhang2016.md"

#: SHA-256 of OpenFace 2.2's model/mtcnn_detector/{PNet,RNet,ONet}.dat; write_dat must match.
OPENFACE_DAT_SHA256 = {
    "pnet": "22dfd0a96ec983e99b21c0e214d89d55ea9a471eedd53e5a48203f22bcb4c489",
    "rnet": "95e9c4203ca0a08c84520fa5fd658834213ed2453a7359f4d9514a06762f91e9",
    "onet": "4c853ae5b461abe4d41f1cd77625895cd71452956c63c622fd75a3b820fb1d31",
}
OPENFACE_DAT_NAMES = {"pnet": "PNet.dat", "rnet": "RNet.dat", "onet": "ONet.dat"}

#: Fixed zip metadata for the npz so that the same weights always give the same bytes.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
ZIP_CREATE_SYSTEM = 3  # Unix, whatever platform runs the script
ZIP_EXTERNAL_ATTR = 0o644 << 16

COPYRIGHTS = ("Copyright (c) 2016 Kaipeng Zhang", "Copyright (c) 2019 Timothy Esler")

MIT_TERMS = """\
Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""

CONVERSION_NOTES = {
    "conv": "convN.weight (out, in, kh, kw) and convN.bias unchanged: same kernel orientation "
            "(rows = dy, cols = dx), input map 0 = R",
    "prelu": "preluN.weight unchanged (one slope per channel or neuron)",
    "pool": "no parameters in the state dicts; OpenFace sizes: PNet 2x2 stride 2, RNet and ONet "
            "3x3 stride 2, ONet's third 2x2 stride 2",
    "fc1": "RNet dense4 / ONet dense5: facenet-pytorch flattens x.permute(0, 3, 2, 1) "
           "(x, y, channel), OpenFace (channel, x, y): "
           "w.reshape(n, W, H, C).transpose(0, 3, 1, 2).reshape(n, -1)",
    "last": "heads stacked row-wise: PNet conv4_1 (2) + conv4_2 (4), 1x1 kernels as (n, 32); "
            "RNet dense5_1 (2) + dense5_2 (4); ONet dense6_1 (2) + dense6_2 (4) + dense6_3 "
            "(10: 5 x then 5 y)",
}


class BuildError(Exception):
    """A step failed; ``str(err)`` is a complete one-line message."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------
# getting the wheel and its contents


def download_wheel(dest: Path) -> Path:
    """``pip download`` the pinned facenet-pytorch wheel (no install, no deps) into ``dest``."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", f"{PACKAGE}=={VERSION}", "-d", str(dest)]
    print(f"downloading {PACKAGE}=={VERSION} from PyPI (not installing it) ...", file=sys.stderr)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as err:
        raise BuildError(f"cannot run pip ({err.strerror}); pass an already downloaded wheel "
                         "with --wheel PATH") from None
    if proc.returncode != 0:
        lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
        errors = [line.removeprefix("ERROR:").strip() for line in lines
                  if line.startswith("ERROR:")]
        reason = (errors or lines or [f"exit status {proc.returncode}"])[0]
        raise BuildError(f"pip download of {PACKAGE}=={VERSION} failed ({reason}); check the "
                         "network/PyPI access or pass an already downloaded wheel with --wheel PATH")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"pip download left {len(wheels)} wheels in {dest}, expected 1")
    return wheels[0]


def read_wheel(path: Path) -> tuple[bytes, dict[str, bytes], str]:
    """The wheel's bytes, its three ``.pt`` members' bytes and its license text."""
    try:
        wheel_bytes = path.read_bytes()
    except OSError as err:
        raise BuildError(f"{path}: cannot read the wheel ({err.strerror})") from None
    try:
        with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as wheel:
            names = set(wheel.namelist())
            wanted = [f"facenet_pytorch/data/{net}.pt" for net in OPENFACE_DAT_SHA256]
            missing = [name for name in [*wanted, LICENSE_MEMBER] if name not in names]
            if missing:
                raise BuildError(f"{path}: not a facenet-pytorch {VERSION} wheel "
                                 f"(missing {', '.join(missing)})")
            pts = {net: wheel.read(f"facenet_pytorch/data/{net}.pt") for net in OPENFACE_DAT_SHA256}
            license_text = wheel.read(LICENSE_MEMBER).decode("utf-8")
    except zipfile.BadZipFile:
        raise BuildError(f"{path}: not a zip/wheel file") from None
    return wheel_bytes, pts, license_text


def check_license(license_text: str) -> None:
    """The wheel must carry the MIT license of Tim Esler, with the standard MIT terms."""
    def words(text: str) -> str:
        return " ".join(text.split())

    if "MIT License" not in license_text or "Timothy Esler" not in license_text:
        raise BuildError(f"{LICENSE_MEMBER} is not Timothy Esler's MIT license; refusing to bundle")
    if words(MIT_TERMS) not in words(license_text):
        raise BuildError(f"{LICENSE_MEMBER} does not contain the standard MIT terms; check it")


def load_state_dict(data: bytes, net: str) -> dict[str, np.ndarray]:
    """Unpickle one ``.pt`` state dict safely (``weights_only=True``) into float32 arrays."""
    try:
        import torch
    except ImportError:
        raise BuildError("torch is needed to read facenet-pytorch's .pt files; "
                         "pip install torch (CPU build is enough)") from None
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a bad pickle
        raise BuildError(f"{net}.pt: cannot be loaded as a state dict ({err})") from None
    out = {}
    for key, tensor in state.items():
        if tensor.dtype != torch.float32:
            raise BuildError(f"{net}.pt: {key} is {tensor.dtype}, expected torch.float32")
        out[key] = np.array(tensor.detach().cpu().numpy(), dtype=np.float32, copy=True)
    return out


# --------------------------------------------------------------------------------------------
# conversion into OpenFace's layout

#: Expected state-dict shapes (these also pin the layer sizes of the nets).
EXPECTED_SHAPES = {
    "pnet": {
        "conv1.weight": (10, 3, 3, 3), "conv1.bias": (10,), "prelu1.weight": (10,),
        "conv2.weight": (16, 10, 3, 3), "conv2.bias": (16,), "prelu2.weight": (16,),
        "conv3.weight": (32, 16, 3, 3), "conv3.bias": (32,), "prelu3.weight": (32,),
        "conv4_1.weight": (2, 32, 1, 1), "conv4_1.bias": (2,),
        "conv4_2.weight": (4, 32, 1, 1), "conv4_2.bias": (4,),
    },
    "rnet": {
        "conv1.weight": (28, 3, 3, 3), "conv1.bias": (28,), "prelu1.weight": (28,),
        "conv2.weight": (48, 28, 3, 3), "conv2.bias": (48,), "prelu2.weight": (48,),
        "conv3.weight": (64, 48, 2, 2), "conv3.bias": (64,), "prelu3.weight": (64,),
        "dense4.weight": (128, 576), "dense4.bias": (128,), "prelu4.weight": (128,),
        "dense5_1.weight": (2, 128), "dense5_1.bias": (2,),
        "dense5_2.weight": (4, 128), "dense5_2.bias": (4,),
    },
    "onet": {
        "conv1.weight": (32, 3, 3, 3), "conv1.bias": (32,), "prelu1.weight": (32,),
        "conv2.weight": (64, 32, 3, 3), "conv2.bias": (64,), "prelu2.weight": (64,),
        "conv3.weight": (64, 64, 3, 3), "conv3.bias": (64,), "prelu3.weight": (64,),
        "conv4.weight": (128, 64, 2, 2), "conv4.bias": (128,), "prelu4.weight": (128,),
        "dense5.weight": (256, 1152), "dense5.bias": (256,), "prelu5.weight": (256,),
        "dense6_1.weight": (2, 256), "dense6_1.bias": (2,),
        "dense6_2.weight": (4, 256), "dense6_2.bias": (4,),
        "dense6_3.weight": (10, 256), "dense6_3.bias": (10,),
    },
}


def check_shapes(state: dict[str, np.ndarray], net: str) -> None:
    expected = EXPECTED_SHAPES[net]
    if set(state) != set(expected):
        extra, missing = sorted(set(state) - set(expected)), sorted(set(expected) - set(state))
        raise BuildError(f"{net}.pt: unexpected keys {extra}, missing keys {missing}")
    for key, shape in expected.items():
        if state[key].shape != shape:
            raise BuildError(f"{net}.pt: {key} has shape {state[key].shape}, expected {shape}")


def fc1_from_facenet(weight: np.ndarray, channels: int, width: int, height: int) -> np.ndarray:
    """Reorder the columns of RNet/ONet's first dense layer into OpenFace's input order.

    facenet-pytorch feeds ``x.permute(0, 3, 2, 1).flatten()`` (index ``(x*H + y)*C + c``);
    OpenFace feeds each map flattened transposed (index ``(c*W + x)*H + y``).
    """
    n_out = weight.shape[0]
    reordered = weight.reshape(n_out, width, height, channels).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(reordered.reshape(n_out, channels * width * height))


def _conv(state: dict[str, np.ndarray], name: str) -> Conv:
    return Conv(np.ascontiguousarray(state[f"{name}.weight"]), state[f"{name}.bias"])


def _stacked_fc(state: dict[str, np.ndarray], heads: list[str]) -> FC:
    weights = [state[f"{head}.weight"] for head in heads]
    weights = [w.reshape(w.shape[0], w.shape[1]) for w in weights]  # 1x1 convs -> matrices
    weight = np.ascontiguousarray(np.concatenate(weights, axis=0))
    bias = np.ascontiguousarray(np.concatenate([state[f"{head}.bias"] for head in heads]))
    return FC(weight, bias)


def convert(net: str, state: dict[str, np.ndarray]) -> NetSpec:
    """One facenet-pytorch state dict -> the :class:`NetSpec` of OpenFace's ``.dat`` file."""
    check_shapes(state, net)
    prelu = {k: PReLU(state[f"prelu{k}.weight"]) for k in range(1, 6) if f"prelu{k}.weight" in state}
    pool2, pool3 = MaxPool(2, 2, 2, 2), MaxPool(3, 3, 2, 2)
    if net == "pnet":
        layers = (_conv(state, "conv1"), prelu[1], pool2,
                  _conv(state, "conv2"), prelu[2],
                  _conv(state, "conv3"), prelu[3],
                  _stacked_fc(state, ["conv4_1", "conv4_2"]))
    elif net == "rnet":
        fc1 = FC(fc1_from_facenet(state["dense4.weight"], 64, 3, 3), state["dense4.bias"])
        layers = (_conv(state, "conv1"), prelu[1], pool3,
                  _conv(state, "conv2"), prelu[2], pool3,
                  _conv(state, "conv3"), prelu[3],
                  fc1, prelu[4],
                  _stacked_fc(state, ["dense5_1", "dense5_2"]))
    else:
        fc1 = FC(fc1_from_facenet(state["dense5.weight"], 128, 3, 3), state["dense5.bias"])
        layers = (_conv(state, "conv1"), prelu[1], pool3,
                  _conv(state, "conv2"), prelu[2], pool3,
                  _conv(state, "conv3"), prelu[3], pool2,
                  _conv(state, "conv4"), prelu[4],
                  fc1, prelu[5],
                  _stacked_fc(state, ["dense6_1", "dense6_2", "dense6_3"]))
    return NetSpec(net, layers)


def check_against_openface(nets: dict[str, NetSpec]) -> dict[str, str]:
    """``write_dat`` of every net must hash to OpenFace's ``.dat``; return those hashes."""
    hashes = {net: sha256(write_dat(spec)) for net, spec in nets.items()}
    bad = [f"{net}: got {hashes[net]}, expected {OPENFACE_DAT_SHA256[net]}"
           for net in nets if hashes[net] != OPENFACE_DAT_SHA256[net]]
    if bad:
        raise BuildError("converted weights are NOT bit-identical to OpenFace's .dat files "
                         f"({'; '.join(bad)}); the conversion mapping is wrong, nothing written")
    return hashes


# --------------------------------------------------------------------------------------------
# writing


def canonical_npz(path: Path) -> bytes:
    """Rewrite a ``save_npz`` archive with fixed zip metadata; return the final bytes.

    np.savez_compressed already writes the 1980-01-01 zip date on CPython (``ZipFile.open``
    with a name uses ``ZipInfo``'s default date), but the "made by" system and file modes
    depend on the platform; fixing them here makes the bytes depend only on the arrays (and
    zlib's deflate output, which is stable for a given zlib).
    """
    out = io.BytesIO()
    with zipfile.ZipFile(path) as src, \
            zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            member = zipfile.ZipInfo(info.filename, date_time=ZIP_DATE_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.create_system = ZIP_CREATE_SYSTEM
            member.external_attr = ZIP_EXTERNAL_ATTR
            dst.writestr(member, src.read(info), compresslevel=6)
    return out.getvalue()


def license_markdown() -> str:
    copyrights = "\n".join(COPYRIGHTS)
    return f"""\
# License of the bundled MTCNN weights

`{NPZ_NAME}` holds the weights of the three MTCNN networks (PNet, RNet, ONet) of

> K. Zhang, Z. Zhang, Z. Li and Y. Qiao, "Joint Face Detection and Alignment Using Multitask
> Cascaded Convolutional Networks", IEEE Signal Processing Letters 23(10), 2016,

released by the authors at <https://github.com/kpzhang93/MTCNN_face_detection_alignment>
under the MIT license. This copy was made by `scripts/make_bundled_weights.py` from the PyTorch
state dicts shipped in {PACKAGE} {VERSION} (<https://github.com/timesler/facenet-pytorch>,
MIT license); the values are unchanged, only rearranged into OpenFace's layer layout.
`{JSON_NAME}` records the source wheel and the SHA-256 of every input and output.

The numbers equal those of OpenFace 2.2's `PNet.dat`, `RNet.dat` and `ONet.dat`, which hold the
same published MTCNN weights; none of OpenFace's files were used to make this copy.

## MIT License

{copyrights}

{MIT_TERMS}"""


def build(wheel_path: Path, out_dir: Path) -> dict:
    wheel_bytes, pts, license_text = read_wheel(wheel_path)
    check_license(license_text)
    if sha256(wheel_bytes) != KNOWN_WHEEL_SHA256:
        print(f"note: {wheel_path.name} has SHA-256 {sha256(wheel_bytes)}, not the known "
              f"{KNOWN_WHEEL_SHA256}; continuing, the .dat hash check decides", file=sys.stderr)
    nets = {net: convert(net, load_state_dict(data, net)) for net, data in pts.items()}
    dat_hashes = check_against_openface(nets)

    out_dir.mkdir(parents=True, exist_ok=True)
    npz_path = out_dir / NPZ_NAME
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / NPZ_NAME
        save_npz(WeightSet("zhang2016", **nets, source=f"{PACKAGE}=={VERSION}"), raw)
        npz_bytes = canonical_npz(raw)
    npz_path.write_bytes(npz_bytes)

    reloaded = load_npz(npz_path)
    if reloaded.name != "zhang2016" or not all(
        reloaded.nets()[net].equals(spec) for net, spec in nets.items()
    ):
        raise BuildError(f"{npz_path}: does not load back to the converted nets")

    record = {
        "weight_set": "zhang2016",
        "description": "MTCNN weights of Zhang et al. 2016 (MIT) in OpenFace 2.2's layout, "
                       "bit-identical to OpenFace's PNet/RNet/ONet.dat",
        "generator": "scripts/make_bundled_weights.py",
        "source": {
            "package": PACKAGE,
            "version": VERSION,
            "pypi": f"https://pypi.org/project/{PACKAGE}/{VERSION}/",
            "wheel": wheel_path.name,
            "wheel_sha256": sha256(wheel_bytes),
            "license": "MIT",
            "license_file": LICENSE_MEMBER,
            "license_sha256": sha256(license_text.encode("utf-8")),
            "origin": "https://github.com/kpzhang93/MTCNN_face_detection_alignment (MIT)",
        },
        "state_dicts": {net: {"member": f"facenet_pytorch/data/{net}.pt", "sha256": sha256(data)}
                        for net, data in pts.items()},
        "npz": {"file": NPZ_NAME, "sha256": sha256(npz_bytes)},
        "openface_dat_sha256": {net: {"file": OPENFACE_DAT_NAMES[net], "sha256": digest}
                                for net, digest in dat_hashes.items()},
        "conversion": CONVERSION_NOTES,
    }
    (out_dir / JSON_NAME).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    (out_dir / LICENSE_NAME).write_text(license_markdown(), encoding="utf-8")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build mtcnn_lab/data/zhang2016_mtcnn.npz from the facenet-pytorch wheel.")
    parser.add_argument("--wheel", type=Path, help=f"use this {KNOWN_WHEEL} instead of "
                        "downloading it")
    parser.add_argument("--out", type=Path, default=Path(str(bundled_data())),
                        help="output folder (default: mtcnn_lab/data)")
    args = parser.parse_args(argv)
    try:
        if args.wheel is not None:
            record = build(args.wheel, args.out)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                record = build(download_wheel(Path(tmp)), args.out)
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for net, entry in record["openface_dat_sha256"].items():
        print(f"{net}: write_dat SHA-256 {entry['sha256']} == OpenFace {entry['file']}")
    print(f"wrote {args.out / NPZ_NAME} (SHA-256 {record['npz']['sha256']}), "
          f"{args.out / JSON_NAME}, {args.out / LICENSE_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``mtcnn-lab convert``: write ONNX or Core ML models of the three nets and a JSON report."""

from __future__ import annotations

import argparse
from pathlib import Path

from mtcnn_lab.cli.options import WEIGHT_SETS
from mtcnn_lab.files import refuse_existing, write_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``convert`` and its options."""
    parser = sub.add_parser("convert", help="write ONNX or Core ML models and a JSON report")
    parser.add_argument("outdir", help="output folder")
    parser.add_argument("--to", required=True, choices=["onnx", "coreml"])
    parser.add_argument("--fp16", action="store_true", help="FP16 models (inputs and outputs stay FP32)")
    parser.add_argument("--weights", default="auto", choices=WEIGHT_SETS)
    parser.add_argument("--compute-units", default="ALL", choices=["ALL", "CPU_AND_NE", "CPU_AND_GPU", "CPU_ONLY"],
                         help="Core ML only: default compute units stored in the models")
    parser.add_argument("--overwrite", action="store_true", help="replace existing model files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write ONNX or Core ML models of the three nets plus a JSON report into OUTDIR."""
    from mtcnn_lab.weights.sets import load_weights

    weights = load_weights(args.weights)
    outdir = Path(args.outdir)
    if args.to == "onnx":
        from mtcnn_lab.convert.onnx import export_onnx
        from mtcnn_lab.lab.conversion import onnx_report

        name = "onnx_report_fp16.json" if args.fp16 else "onnx_report.json"
        if not args.overwrite:  # before any model is written
            refuse_existing([outdir / name])
        paths = export_onnx(weights, outdir, fp16=args.fp16, overwrite=args.overwrite)
        report = onnx_report(weights, paths, fp16=args.fp16)
        write_json(outdir / name, report, overwrite=args.overwrite)
        paths["report"] = outdir / name
    else:
        from mtcnn_lab.convert.coreml import convert_coreml

        paths = convert_coreml(weights, outdir, precision="fp16" if args.fp16 else "fp32",
                               compute_units=args.compute_units, overwrite=args.overwrite)
    for key, path in paths.items():
        print(f"{key:6s} {path}")
    return 0

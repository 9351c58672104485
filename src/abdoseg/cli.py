"""`abdoseg`: the pipeline's steps for scans outside the pipeline (one new scan, or a folder of them)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd

from . import __version__
from . import labels as L
from .runlog import one_line
from .specs import EvaluateSpec, PredictSpec, RenderSpec


class CLIError(ValueError):
    """A refusal of the command line itself: its message names the path or option and what to do."""


def _cases(data_path: Path) -> list[tuple[str, Path, Path | None]]:
    """(case, image, label or None) for a folder in the raw layout (images/, labels/) or a folder of images; an image
    is a NIfTI file or a folder holding one DICOM series, as for the `local` source (sources.find_scans)."""
    from .sources import find_scans

    images = "images" if (data_path / "images").is_dir() else ""
    names = [p.relative_to(data_path).as_posix() for p in data_path.rglob("*") if p.is_file()]
    found = find_scans(names, images)
    if not found:
        raise CLIError(f"{data_path / images}: no .nii or .nii.gz images or DICOM series folders here; give a folder "
                       f"with images/ and labels/, or a folder of images")
    return [(c.case, data_path / c.image, data_path / c.label if (data_path / c.label).exists() else None) for c in found]


def _spec(args: argparse.Namespace) -> PredictSpec:
    return PredictSpec(args.device, args.overlap, args.largest_component, tuple(args.mirror_axes), args.max_memory_gb,
                       args.sw_batch_size)


def _refuse_inside(output: Path, data_path: Path, option: str) -> None:
    """Refuse an output folder that is, or lies inside, the input folder: outputs would be read back as inputs."""
    out, data = output.resolve(), data_path.resolve()
    if out == data or data in out.parents:
        raise CLIError(f"{output}: {option} lies inside the input folder {data_path}; its files would mix with "
                       f"(or be read as) the inputs, choose a folder outside it")


def cmd_predict(args: argparse.Namespace) -> None:
    from .predict import predict_cases

    if not Path(args.image).exists():
        raise CLIError(f"{args.image}: no such NIfTI file or DICOM folder")
    predict_cases([args.image], [args.output], args.model, _spec(args), args.threads)
    print(f"wrote {args.output}")


def _annotated(case: str, label: Path, manifest: dict[str, list[str]], flag: list[str] | None) -> list[str]:
    """The organs a case's labels annotate ("not annotated is not absent"): --annotated, else the folder's
    manifest.tsv, else the organs present in the reference (an organ absent from it is then not scored)."""
    if flag:
        return flag
    if case in manifest:
        return manifest[case]
    import numpy as np

    from . import nifti

    present = set(np.unique(np.asarray(nifti.load(label).dataobj)).tolist())
    return [name for oid, name in L.ORGANS.items() if oid in present]


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .evaluate import evaluate_case, summarize
    from .manifest import read_manifest
    from .nifti import read
    from .predict import predict_cases, refuse_overwriting_inputs
    from .scan_checks import check_labels

    cases = [c for c in _cases(Path(args.data_path)) if c[2] is not None]
    if not cases:
        raise CLIError(f"{args.data_path}: no labels/ file matches an image; name each label like its image")
    if args.output:
        refuse_overwriting_inputs([args.model_path, *(str(p) for c in cases for p in c[1:])], [args.output])
    for case, _, label in cases:  # before minutes of inference: labels the table does not know are refused
        check_labels(read(label)[0], label)
    manifest_path = Path(args.data_path) / "manifest.tsv"
    manifest = ({row.case: [o for o in str(row.annotated).split(",") if o] for row in read_manifest(manifest_path).itertuples()}
                if manifest_path.exists() and not args.annotated else {})
    annotated = {case: _annotated(case, label, manifest, args.annotated) for case, _, label in cases}
    print("organs scored (" + ("--annotated" if args.annotated else f"{manifest_path}" if manifest else
                               "those present in each reference; name others with --annotated") + "): "
          + "; ".join(f"{case} {','.join(organs) or 'none'}" for case, organs in annotated.items()))
    with tempfile.TemporaryDirectory() as tmp:
        preds = [Path(tmp) / f"{case}.nii.gz" for case, _, _ in cases]
        predict_cases([str(image) for _, image, _ in cases], [str(p) for p in preds], args.model_path, _spec(args), args.threads)
        rows = [evaluate_case(case, pred, label, annotated[case], args.nsd_tolerance_mm)
                for (case, _, label), pred in zip(cases, preds)]
    per_case = pd.concat(rows, ignore_index=True)
    print(per_case.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    summary = summarize(per_case)
    print("\nmean Dice per organ: " + ", ".join(f"{k} {v['dice_mean']:.3f}" for k, v in summary.items() if k != "mean"))
    if args.output:
        per_case.to_csv(args.output, index=False)


def cmd_visualize(args: argparse.Namespace) -> None:
    from .predict import predict_cases
    from .render import render_case

    out = Path(args.output_path)
    _refuse_inside(out, Path(args.data_path), "--output-path")
    cases = _cases(Path(args.data_path))
    out.mkdir(parents=True, exist_ok=True)
    predict_cases([str(image) for _, image, _ in cases], [str(out / f"{case}_seg.nii.gz") for case, _, _ in cases],
                  args.model_path, _spec(args), args.threads)
    for case, image, label in cases:
        pred = out / f"{case}_seg.nii.gz"
        render_case(str(image), str(pred), str(label) if label else None, str(out / f"{case}.mp4"), str(out / f"{case}.png"),
                    case, RenderSpec(args.frames, args.fps, args.size))
        print(f"{case}: {pred}, {out / f'{case}.mp4'}, {out / f'{case}.png'}")


def cmd_train(args: argparse.Namespace) -> None:
    import yaml

    from .params_check import check_params
    from .presets import apply
    from .train import train_step

    config = Path(args.config)
    if not config.is_file():
        raise FileNotFoundError(f"{config}: no such params file")
    params = yaml.safe_load(config.read_text())
    schema = Path("workflow/schemas/params.schema.yaml")
    if schema.is_file():  # in a clone of the pipeline: the same validation as the Snakefile's
        import jsonschema

        try:
            jsonschema.validate(params, yaml.safe_load(schema.read_text()))
        except jsonschema.ValidationError as err:
            raise ValueError(f"{config}: {'.'.join(map(str, err.absolute_path)) or 'params'}: {err.message}") from None
    check_params(params)
    best = train_step(apply(params), threads=args.threads)
    print(f"best mean validation Dice {best['dice_mean']:.3f} at epoch {best['epoch']}; wrote results/model/best.pt, "
          "last.pt, train_log.csv")


class _DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """--help states each option's default, where it has one (not "default: None" on a required or unset option)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return action.help if action.default is None else super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The `abdoseg` command line; the step options' defaults are the specs' (abdoseg.specs), hence params.yaml's."""
    parser = argparse.ArgumentParser(prog="abdoseg", description=__doc__)
    parser.add_argument("--version", action="version", version=f"abdoseg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    predict, evaluate, render = PredictSpec(), EvaluateSpec(), RenderSpec()

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, formatter_class=_DefaultsHelp)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--device", default=predict.device, help="auto (CUDA when present), cpu or cuda (predict.device)")
        p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores)")
        p.add_argument("--overlap", type=float, default=predict.overlap, help="sliding-window overlap (predict.overlap)")
        p.add_argument("--sw-batch-size", type=int, default=predict.sw_batch_size,
                       help="sliding windows per forward pass, memory and speed only (predict.sw_batch_size)")
        p.add_argument("--largest-component", action=argparse.BooleanOptionalAction, default=predict.largest_component,
                       help="keep only each organ's largest connected component (predict.largest_component)")
        p.add_argument("--mirror-axes", type=int, nargs="*", default=list(predict.mirror_axes), choices=[0, 1, 2],
                       help="test-time mirroring axes: 0 left-right (kidneys swapped back), 1 AP, 2 SI (predict.mirror_axes)")
        p.add_argument("--max-memory-gb", type=float, default=predict.max_memory_gb,
                       help="refuse a scan whose estimated peak memory is above this (predict.max_memory_gb)")
        p.add_argument("--debug", action="store_true", help="on an error, show the full traceback")

    p = command("predict", "segment one CT (NIfTI file or DICOM series folder) into OUT, on the input's grid")
    p.add_argument("image", help="a NIfTI file or a folder holding one DICOM series")
    p.add_argument("-o", "--output", required=True, help="the label map to write (NIfTI)")
    p.add_argument("--model", default="results/model/best.pt", help="the checkpoint")
    common(p)
    p.set_defaults(func=cmd_predict)

    p = command("evaluate", "predict every case of a folder (images/, labels/) and print per-organ metrics")
    p.add_argument("--model-path", default="results/model/best.pt", help="the checkpoint")
    p.add_argument("--data-path", required=True, help="a folder with images/ and labels/")
    p.add_argument("--nsd-tolerance-mm", type=float, default=evaluate.nsd_tolerance_mm,
                   help="surface Dice tolerance (evaluate.nsd_tolerance_mm)")
    p.add_argument("--annotated", nargs="+", choices=list(L.ORGANS.values()),
                   help="organs the labels annotate (scored even where absent); default: the folder's manifest.tsv, "
                        "else the organs present in each reference")
    p.add_argument("--output", help="also write the per-case table as CSV")
    common(p)
    p.set_defaults(func=cmd_evaluate)

    p = command("train", "train the VNet exactly as the pipeline's train rule does, from the data step's output "
                         "(data/splits.json, data/processed/) into results/model/ (best.pt, last.pt, train_log.csv, "
                         "resume.pt)")
    p.add_argument("--config", default="params.yaml", help="the params file (its `preset` is applied)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores)")
    p.add_argument("--debug", action="store_true", help="on an error, show the full traceback")
    p.set_defaults(func=cmd_train)

    p = command("visualize", "predict every case of a folder and render a video and slices of each")
    p.add_argument("--model-path", default="results/model/best.pt", help="the checkpoint")
    p.add_argument("--data-path", required=True, help="a folder with images/ (and labels/, outlined when present)")
    p.add_argument("--output-path", required=True, help="where the predictions, videos and slices go")
    p.add_argument("--frames", type=int, default=render.frames, help="video frames, one turn (render.frames)")
    p.add_argument("--fps", type=int, default=render.fps, help="video frames per second (render.fps)")
    p.add_argument("--size", type=int, default=render.size, help="video width and height in pixels (render.size)")
    common(p)
    p.set_defaults(func=cmd_visualize)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.threads <= 0:
        args.threads = os.cpu_count() or 1
    try:
        args.func(args)
    except Exception as err:  # one line for the user; --debug keeps the traceback for a bug report
        if args.debug:
            raise
        hint = "" if isinstance(err, (ValueError, OSError)) else " (a bug? --debug shows the traceback to report)"
        print(one_line(err) + hint, file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main(sys.argv[1:])

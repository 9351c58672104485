"""The pipeline's data step (download, preprocess, split) in one process pool, for a machine without Snakemake.

A leased GPU machine has PyTorch but no Snakemake and no registry to install it from; bench/gpu.sh runs this there
so that bench/real_ct_seeds.py can train on the same 120 phantoms as `snakemake --cores all data` writes (the same
package functions the rules call, with params.yaml's values; window normalisation only, as the default).

    python bench/data_step.py [--workers N] [section.key=value ...]
"""

from __future__ import annotations

import argparse
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml
from real_ct_seeds import with_overrides

from abdoseg import paths as P
from abdoseg.ingest import ingest
from abdoseg.preprocess import PreprocessSpec, preprocess_case
from abdoseg.split import split_cases, write_split


def _preprocess(args: tuple[str, dict]) -> str:
    case, params = args
    fill = {"case": case}
    preprocess_case(P.RAW_IMAGE.format(**fill), P.RAW_LABEL.format(**fill), PreprocessSpec.from_params(params, None),
                    P.PROCESSED_IMAGE.format(**fill), P.PROCESSED_LABEL.format(**fill), P.PROCESSED_META.format(**fill))
    return case


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("overrides", nargs="*", help="section.key=value, e.g. data.synthetic.n_cases=12")
    args = ap.parse_args()
    params = with_overrides(yaml.safe_load(Path("params.yaml").read_text()), args.overrides)
    if params["preprocess"].get("normalize", "window") != "window":
        raise SystemExit("bench/data_step.py: only preprocess.normalize: window (use Snakemake for percentile)")
    manifest = ingest(P.RAW, params["data"], workers=args.workers, downloads=P.DOWNLOADS)
    for template in (P.PROCESSED_IMAGE, P.PROCESSED_LABEL, P.PROCESSED_META):
        Path(template).parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(args.workers) as pool:
        done = list(pool.map(_preprocess, [(case, params["preprocess"]) for case in manifest["case"]]))
    write_split(split_cases(manifest, params["split"]), P.SPLITS)
    print(f"{len(done)} cases in {P.RAW} and {Path(P.PROCESSED_IMAGE).parent.parent}; split in {P.SPLITS}")


if __name__ == "__main__":
    main()

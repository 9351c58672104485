"""Snakemake script of the report rule (logic: abdoseg.report)."""
from abdoseg import paths as P
from abdoseg import provenance, runlog
from abdoseg.manifest import read_manifest
from abdoseg.report import build_report

with runlog.to_file(snakemake.log[0]):
    i = snakemake.input
    cases = [{"case": c, "video": v, "slices": s} for c, v, s in zip(snakemake.params.cases, i.videos, i.slices)]
    build_report(snakemake.output[0], i.summary, i.per_case, i.train_log,
                 {"dice": i.dice_figure, "volume": i.volume_figure, "curve": i.curve_figure},
                 cases, dict(snakemake.config), read_manifest(i.manifest), real_ct=(i.real_ct, i.real_ct_figure),
                 provenance=provenance.collect(dict(snakemake.config), i.summary, i.real_ct, P.BENCHMARKS))

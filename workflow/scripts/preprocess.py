"""Snakemake script of the preprocess rule, one case (logic: abdoseg.preprocess). numpy only: no torch import per job."""
from abdoseg import paths as P
from abdoseg import runlog
from abdoseg.intensity import stats_if_needed
from abdoseg.preprocess import PreprocessSpec, preprocess_case

with runlog.to_file(snakemake.log[0]):
    params = snakemake.params.preprocess
    spec = PreprocessSpec.from_params(params, stats_if_needed(params, P.INTENSITY))
    preprocess_case(snakemake.input.image, snakemake.input.label, spec,
                     snakemake.output.image, snakemake.output.label, snakemake.output.meta)

"""Snakemake script of the predict rule, one case (logic: abdoseg.predict)."""
from abdoseg import runlog
from abdoseg.predict import predict_cases
from abdoseg.specs import PredictSpec

with runlog.to_file(snakemake.log[0]):
    predict_cases([snakemake.input.image], [snakemake.output[0]], snakemake.input.model,
                  PredictSpec.from_params(snakemake.params.predict), threads=snakemake.threads)

"""Snakemake script of the predict_all rule: every test case in one process, the model loaded once (logic: abdoseg.predict)."""
from abdoseg import runlog
from abdoseg.paths import prediction_in
from abdoseg.predict import predict_cases
from abdoseg.specs import PredictSpec

with runlog.to_file(snakemake.log[0]):
    predict_cases(list(snakemake.input.images), [prediction_in(snakemake.output[0], case) for case in snakemake.params.cases],
                  snakemake.input.model, PredictSpec.from_params(snakemake.params.predict), threads=snakemake.threads)

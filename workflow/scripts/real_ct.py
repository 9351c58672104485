"""Snakemake script of the real_ct rule: the bundled real CT, predicted and scored (logic: abdoseg.real_ct)."""
from abdoseg import real_ct, runlog
from abdoseg.specs import EvaluateSpec, PredictSpec

with runlog.to_file(snakemake.log[0]):
    o = snakemake.output
    real_ct.check(snakemake.input.model, o.prediction, o.metrics, o.figure, PredictSpec.from_params(snakemake.params.predict),
                  EvaluateSpec.from_params(snakemake.params.evaluate).nsd_tolerance_mm, threads=snakemake.threads)

"""Snakemake script of the predict rule, one case (logic: abdoseg.predict)."""
from abdoseg import runlog
from abdoseg.predict import predict_cases

with runlog.to_file(snakemake.log[0]):
    cfg = snakemake.config["predict"]
    predict_cases([snakemake.input.image], [snakemake.output[0]], snakemake.input.model, cfg["device"],
                  float(cfg["overlap"]), bool(cfg["largest_component"]), threads=snakemake.threads)

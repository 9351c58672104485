"""Snakemake script of the split rule (logic: abdoseg.split)."""
from abdoseg import runlog
from abdoseg.split import make_split, write_split

with runlog.to_file(snakemake.log[0]):
    cfg = snakemake.config["split"]
    write_split(make_split(snakemake.params.cases, int(cfg["seed"]), cfg["fractions"]), snakemake.output[0])

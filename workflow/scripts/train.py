"""Snakemake script of the train rule (logic: abdoseg.train.train_step, which `abdoseg train` runs too)."""
from abdoseg import runlog
from abdoseg.train import train_step

with runlog.to_file(snakemake.log[0]):
    train_step(dict(snakemake.config), threads=snakemake.threads)

"""Snakemake script of the train rule (logic: abdoseg.train)."""
from pathlib import Path

from abdoseg import paths as P
from abdoseg import runlog
from abdoseg.intensity import stats_if_needed
from abdoseg.split import read_split
from abdoseg.train import train

with runlog.to_file(snakemake.log[0]):
    split = read_split(snakemake.input.split)
    train(dict(snakemake.config), split["train"], split["val"], P.PROCESSED_IMAGE, P.PROCESSED_LABEL,
          Path(snakemake.output.best).parent, threads=snakemake.threads,
          intensity_stats=stats_if_needed(snakemake.params.sections["preprocess"], P.INTENSITY))

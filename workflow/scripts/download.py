"""Snakemake script of the download checkpoint (thin: the logic is abdoseg.download)."""
from abdoseg import paths as P
from abdoseg import runlog
from abdoseg.download import download

with runlog.to_file(snakemake.log[0]):
    download(snakemake.params.raw, snakemake.params.data, workers=snakemake.threads, downloads=P.DOWNLOADS)

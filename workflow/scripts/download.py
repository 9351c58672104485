"""Snakemake script of the download checkpoint (thin: the logic is abdoseg.ingest)."""
from abdoseg import paths as P
from abdoseg import runlog
from abdoseg.ingest import ingest

with runlog.to_file(snakemake.log[0]):
    ingest(snakemake.params.raw, snakemake.params.data, workers=snakemake.threads, downloads=P.DOWNLOADS)

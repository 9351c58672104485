"""Snakemake script of the split rule (logic: abdoseg.split)."""
from abdoseg import runlog
from abdoseg.manifest import read_manifest
from abdoseg.split import split_cases, write_split

with runlog.to_file(snakemake.log[0]):
    write_split(split_cases(read_manifest(snakemake.input.manifest), snakemake.params.split), snakemake.output[0])

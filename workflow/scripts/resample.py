"""Snakemake script of the resample rule, one case (logic: abdoseg.resample)."""
import torch

from abdoseg import runlog
from abdoseg.resample import PreprocessSpec, resample_case

with runlog.to_file(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    resample_case(snakemake.input.image, snakemake.input.label, PreprocessSpec.from_params(snakemake.config["preprocess"]),
                  snakemake.output.image, snakemake.output.label, snakemake.output.meta)

"""Snakemake script of the render rule, one case (logic: abdoseg.render)."""
from abdoseg import runlog
from abdoseg.render import render_case

with runlog.to_file(snakemake.log[0]):
    cfg = snakemake.params.render
    render_case(snakemake.input.image, snakemake.input.prediction, snakemake.input.label, snakemake.output.video,
                snakemake.output.slices, snakemake.wildcards.case, int(cfg["frames"]), int(cfg["fps"]), int(cfg["size"]))

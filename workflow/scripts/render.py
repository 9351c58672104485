"""Snakemake script of the render rule, one case (logic: abdoseg.render)."""
from abdoseg import runlog
from abdoseg.render import render_case
from abdoseg.specs import RenderSpec

with runlog.to_file(snakemake.log[0]):
    render_case(snakemake.input.image, snakemake.input.prediction, snakemake.input.label, snakemake.output.video,
                snakemake.output.slices, snakemake.wildcards.case, RenderSpec.from_params(snakemake.params.render))

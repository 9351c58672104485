"""Snakemake script of the render rule, one case (logic: abdoseg.render)."""
from abdoseg import runlog
from abdoseg.paths import case_prediction
from abdoseg.render import render_case
from abdoseg.specs import RenderSpec

with runlog.to_file(snakemake.log[0]):
    case = snakemake.wildcards.case
    render_case(snakemake.input.image, case_prediction(snakemake.input.prediction, case), snakemake.input.label,
                snakemake.output.video, snakemake.output.slices, case, RenderSpec.from_params(snakemake.params.render))

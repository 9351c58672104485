# abdoseg: download -> preprocess -> split -> train -> predict -> evaluate -> summarize -> render -> report.
# `snakemake --cores all results/report.html`; DVC runs the same rules stage by stage (dvc.yaml).
from snakemake.utils import min_version, validate

from abdoseg import presets
from abdoseg.params_check import check_or_exit as check_params_or_exit

min_version("9.0")


report: "workflow/report/workflow.rst"  # `snakemake --report report.html`: outputs marked with report() and their captions


configfile: "params.yaml"


validate(config, "workflow/schemas/params.schema.yaml")
check_params_or_exit(config, "params.yaml")  # the preset's keys and cross-field rules (abdoseg.params_check), before any job
config.update(presets.apply(config))  # `preset: NAME` in params.yaml (or --config preset=NAME) merges workflow/presets/NAME.yaml
validate(config, "workflow/schemas/params.schema.yaml")  # the preset's values too


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/render.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        P.REPORT,

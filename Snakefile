# abdoseg: download -> preprocess -> split -> train -> predict -> evaluate -> summarize -> render -> report.
# `snakemake --cores all results/report.html`; DVC runs the same rules stage by stage (dvc.yaml).
from snakemake.utils import min_version, validate
from abdoseg.params_check import check_or_exit as check_params_or_exit

min_version("9.0")


configfile: "params.yaml"


validate(config, "workflow/schemas/params.schema.yaml")
check_params_or_exit(config, "params.yaml")  # cross-field rules (abdoseg.params_check), before any job


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

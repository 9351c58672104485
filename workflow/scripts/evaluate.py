"""Snakemake script of the evaluate rule, one case (logic: abdoseg.evaluate)."""
from abdoseg import runlog
from abdoseg.evaluate import evaluate_case, write_csv
from abdoseg.manifest import read_manifest
from abdoseg.paths import case_prediction
from abdoseg.specs import EvaluateSpec

with runlog.to_file(snakemake.log[0]):
    case = snakemake.wildcards.case
    row = read_manifest(snakemake.input.manifest).set_index("case").loc[case]
    df = evaluate_case(case, case_prediction(snakemake.input.prediction, case), snakemake.input.label,
                       row["annotated"].split(","), EvaluateSpec.from_params(snakemake.params.evaluate).nsd_tolerance_mm)
    write_csv(df, snakemake.output[0])

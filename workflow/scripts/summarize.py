"""Snakemake script of the summarize rule (logic: abdoseg.evaluate and abdoseg.figures)."""
import pandas as pd

from abdoseg import figures, runlog
from abdoseg.evaluate import summarize, write_csv, write_summary

with runlog.to_file(snakemake.log[0]):
    per_case = pd.concat([pd.read_csv(p) for p in snakemake.input.cases], ignore_index=True)
    write_csv(per_case, snakemake.output.per_case)
    write_summary(summarize(per_case), snakemake.output.summary)
    figures.dice_boxplot(per_case, snakemake.output.dice_figure)
    figures.volume_scatter(per_case, snakemake.output.volume_figure)
    figures.training_curve(pd.read_csv(snakemake.input.train_log), snakemake.output.curve_figure)

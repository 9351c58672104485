"""Snakemake script of the intensity rule: foreground HU statistics of the training cases (logic: abdoseg.intensity)."""
from abdoseg import runlog
from abdoseg.intensity import foreground_stats, write_stats

with runlog.to_file(snakemake.log[0]):
    stats = foreground_stats(list(snakemake.input.images), list(snakemake.input.labels),
                             tuple(snakemake.params.preprocess["percentiles"]))
    print(f"intensity statistics of {stats['n_cases']} training cases: {stats}", flush=True)
    write_stats(stats, snakemake.output[0])

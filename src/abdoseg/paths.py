"""Every path of the pipeline's file contract, in one place; Snakemake rules and scripts read them from here."""

import os

RAW = "data/raw"
RAW_IMAGE = "data/raw/images/{case}.nii.gz"
RAW_LABEL = "data/raw/labels/{case}.nii.gz"
MANIFEST = "data/raw/manifest.tsv"
DOWNLOADS = "data/downloads"  # archives and unpacked members: a cache for resuming, neither git nor DVC

PROCESSED_IMAGE = "data/processed/images/{case}.npy"
PROCESSED_LABEL = "data/processed/labels/{case}.npy"
PROCESSED_META = "data/processed/meta/{case}.json"
INTENSITY = "data/processed/intensity.json"
SPLITS = "data/splits.json"

MODEL_DIR = "results/model"
MODEL_BEST = "results/model/best.pt"
MODEL_LAST = "results/model/last.pt"
TRAIN_LOG = "results/model/train_log.csv"

PREDICTIONS = "results/predictions"  # every PREDICTION; a GPU run's predict_all job writes it whole
PREDICTION = "results/predictions/{case}.nii.gz"
CASE_METRICS = "results/metrics/per_case/{case}.csv"
DICE_PER_CASE = "results/metrics/dice_per_case.csv"
DICE_SUMMARY = "results/metrics/dice_summary.json"
DICE_FIGURE = "results/metrics/dice_boxplot.png"
VOLUME_FIGURE = "results/metrics/volume_scatter.png"
CURVE_FIGURE = "results/metrics/training_curve.png"

VIDEO = "results/videos/{case}.mp4"
SLICES = "results/slices/{case}.png"
REPORT = "results/report.html"

LOGS = "results/logs"
BENCHMARKS = "results/benchmarks"

REAL_CT_PREDICTION = "results/real_ct/prediction.nii.gz"
REAL_CT_METRICS = "results/metrics/real_ct.json"
REAL_CT_FIGURE = "results/real_ct/slices.png"


def prediction_in(folder: str, case: str) -> str:
    """The file of `case`'s prediction in a predictions folder (PREDICTIONS, or a cluster job's local copy of it)."""
    return os.path.join(folder, os.path.basename(PREDICTION.format(case=case)))


def case_prediction(given: str, case: str) -> str:
    """`case`'s prediction from a job's input: the file itself (a CPU run: one predict job per case), or its file in
    the predictions folder (a GPU run: one predict_all job for every case)."""
    return prediction_in(given, case) if os.path.isdir(given) else given

# Helpers: the path contract (one place: abdoseg.paths), case lists read after the download checkpoint.
import pandas as pd

from abdoseg import paths as P
from abdoseg.split import make_split

localrules: all, data, render_all


def all_cases(wildcards=None):
    """Every case the download step wrote (known only after the checkpoint has run)."""
    manifest = checkpoints.download.get().output.manifest
    return sorted(pd.read_csv(manifest, sep="\t", dtype=str)["case"])


def subset(name):
    """Cases of one split subset; the same pure function the split rule writes to splits.json."""
    split = config["split"]
    return make_split(all_cases(), int(split["seed"]), split["fractions"])[name]


def per_case(template, name):
    """An input function: `template` expanded over the cases of subset `name`."""
    return lambda wildcards: expand(template, case=subset(name))


def log_path(step, by_case=False):
    return f"{P.LOGS}/{step}/{{case}}.log" if by_case else f"{P.LOGS}/{step}.log"


def bench_path(step, by_case=False):
    return f"{P.BENCHMARKS}/{step}/{{case}}.tsv" if by_case else f"{P.BENCHMARKS}/{step}.tsv"

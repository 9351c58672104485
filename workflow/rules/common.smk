# Helpers: the path contract (one place: abdoseg.paths), case lists read after the download checkpoint.
from abdoseg import paths as P
from abdoseg.manifest import read_manifest
from abdoseg.split import split_cases

localrules: all, data, render_all

# The image of every job when Snakemake deploys software in containers (`--software-deployment-method apptainer`,
# workflow/profiles/slurm); without that option it is not used. Built from workflow/container/Dockerfile: replace
# the placeholder with your registry's tag. (The Kubernetes executor takes its image from its profile instead.)
container: "docker://YOUR_REGISTRY/abdoseg:0.1.0"


def section(name):
    """A params.yaml section as a rule's params, keys sorted at every level: Snakemake reruns a rule when its
    params change, and compares them as text, so a file rewritten in another key order is no change."""

    def canonical(value):
        return {k: canonical(value[k]) for k in sorted(value, key=str)} if isinstance(value, dict) else value

    return canonical(config[name])


def the_split():
    """The split the split rule writes to splits.json: the dataset's own, or by seed and fractions."""
    return split_cases(read_manifest(checkpoints.download.get().output.manifest), config["split"])


def subset(name):
    """Cases of one split subset."""
    return the_split()[name]


def per_case(template, name):
    """An input function: `template` expanded over the cases of subset `name`."""
    return lambda wildcards: expand(template, case=subset(name))


# A GPU run predicts every test case in one job (predict_all: CUDA starts and the model loads once), a CPU run one
# job per case (predict: side by side on the cores). Decided when the workflow is parsed, as the gpu resource is
# (gpu.smk: device cuda, or auto with a card visible). Evaluate and render take PREDICTION_INPUT: the case's own
# file, or the predictions folder, in which the scripts find the case's file (abdoseg.paths.case_prediction).
PREDICT_ON_GPU = bool(gpus_for(config["predict"]["device"]))
PREDICTION_INPUT = P.PREDICTIONS if PREDICT_ON_GPU else P.PREDICTION


def log_path(step, by_case=False):
    return f"{P.LOGS}/{step}/{{case}}.log" if by_case else f"{P.LOGS}/{step}.log"


def bench_path(step, by_case=False):
    return f"{P.BENCHMARKS}/{step}/{{case}}.tsv" if by_case else f"{P.BENCHMARKS}/{step}.tsv"

# download (checkpoint: the case list exists only afterwards) -> preprocess per case -> split.
# With preprocess.normalize: percentile, preprocess waits for the training cases' intensity statistics.


checkpoint download:
    output:
        manifest=P.MANIFEST,
        images=directory(P.RAW + "/images"),
        labels=directory(P.RAW + "/labels"),
    params:
        raw=P.RAW,
        data=section("data"),
    threads: workflow.cores
    log:
        log_path("download"),
    benchmark:
        bench_path("download")
    script:
        "../scripts/download.py"


def percentile_stats(wildcards):
    """The intensity statistics, an input of preprocess only when the normalisation needs them."""
    return P.INTENSITY if config["preprocess"].get("normalize", "window") == "percentile" else []


rule intensity:
    input:
        split=P.SPLITS,
        images=lambda wc: expand(P.RAW_IMAGE, case=subset("train")),
        labels=lambda wc: expand(P.RAW_LABEL, case=subset("train")),
    output:
        P.INTENSITY,
    params:
        preprocess=section("preprocess"),
    threads: 1
    log:
        log_path("intensity"),
    benchmark:
        bench_path("intensity")
    script:
        "../scripts/intensity.py"


rule preprocess:
    input:
        image=P.RAW_IMAGE,
        label=P.RAW_LABEL,
        stats=percentile_stats,
    output:
        image=P.PROCESSED_IMAGE,
        label=P.PROCESSED_LABEL,
        meta=P.PROCESSED_META,
    params:
        preprocess=section("preprocess"),
    threads: 1
    log:
        log_path("preprocess", by_case=True),
    benchmark:
        bench_path("preprocess", by_case=True)
    script:
        "../scripts/preprocess.py"


rule split:
    input:
        manifest=P.MANIFEST,
    output:
        P.SPLITS,
    params:
        split=section("split"),
    threads: 1
    log:
        log_path("split"),
    benchmark:
        bench_path("split")
    script:
        "../scripts/split.py"


rule data:
    input:
        P.SPLITS,
        per_case(P.PROCESSED_META, "train"),
        per_case(P.PROCESSED_META, "val"),

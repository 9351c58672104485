# train: the VNet on the training cases, validated on the validation cases.


rule train:
    input:
        split=P.SPLITS,
        images=lambda wc: expand(P.PROCESSED_IMAGE, case=subset("train") + subset("val")),
        labels=lambda wc: expand(P.PROCESSED_LABEL, case=subset("train") + subset("val")),
        stats=percentile_stats,  # read with normalize: percentile (recorded in the checkpoint): declared for cluster jobs
    output:
        best=P.MODEL_BEST,
        last=P.MODEL_LAST,
        log=P.TRAIN_LOG,
    params:
        sections={k: section(k) for k in ("augment", "model", "preprocess", "train")},
    threads: workflow.cores
    resources:
        gpu=gpus_for(config["train"]["device"]) * config["train"]["devices"],  # train.devices > 1: torchrun, one process a GPU
    log:
        log_path("train"),
    benchmark:
        bench_path("train")
    script:
        "../scripts/train.py"

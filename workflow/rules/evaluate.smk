# predict and evaluate each test case in its own geometry, then summarize; and the real-CT check (a bundled real scan).
# Predict: one job per case on the CPU (`predict`), one job for every test case on a GPU (`predict_all`), whichever
# PREDICTION_INPUT (common.smk) asks for; both write the same results/predictions/{case}.nii.gz files.


rule predict:
    input:
        image=P.RAW_IMAGE,
        model=P.MODEL_BEST,
    output:
        P.PREDICTION,
    params:
        predict=section("predict"),
    threads: 1
    resources:
        gpu=gpus_for(config["predict"]["device"]),
    log:
        log_path("predict", by_case=True),
    benchmark:
        bench_path("predict", by_case=True)
    script:
        "../scripts/predict.py"


rule predict_all:
    input:
        images=per_case(P.RAW_IMAGE, "test"),
        model=P.MODEL_BEST,
    output:
        directory(P.PREDICTIONS),
    params:
        predict=section("predict"),
        cases=lambda wildcards: subset("test"),  # in the order of the images
    threads: 1
    resources:
        gpu=gpus_for(config["predict"]["device"]),
    log:
        log_path("predict_all"),
    benchmark:
        bench_path("predict_all")
    script:
        "../scripts/predict_all.py"


rule evaluate:
    input:
        prediction=PREDICTION_INPUT,
        label=P.RAW_LABEL,
        manifest=P.MANIFEST,
    output:
        P.CASE_METRICS,
    params:
        evaluate=section("evaluate"),
    threads: 1
    log:
        log_path("evaluate", by_case=True),
    benchmark:
        bench_path("evaluate", by_case=True)
    script:
        "../scripts/evaluate.py"


rule summarize:
    input:
        cases=per_case(P.CASE_METRICS, "test"),
        train_log=P.TRAIN_LOG,
    output:
        per_case=P.DICE_PER_CASE,
        summary=P.DICE_SUMMARY,
        dice_figure=report(P.DICE_FIGURE, caption="../report/dice.rst", category="Quality"),
        volume_figure=report(P.VOLUME_FIGURE, caption="../report/volume.rst", category="Quality"),
        curve_figure=report(P.CURVE_FIGURE, caption="../report/curve.rst", category="Training"),
    threads: 1
    log:
        log_path("summarize"),
    benchmark:
        bench_path("summarize")
    script:
        "../scripts/summarize.py"


rule real_ct:
    input:
        model=P.MODEL_BEST,
    output:
        prediction=P.REAL_CT_PREDICTION,
        metrics=P.REAL_CT_METRICS,
        figure=report(P.REAL_CT_FIGURE, caption="../report/real_ct.rst", category="Real CT"),
    params:
        predict=section("predict"),
        evaluate=section("evaluate"),
    threads: 1
    resources:
        gpu=gpus_for(config["predict"]["device"]),
    log:
        log_path("real_ct"),
    benchmark:
        bench_path("real_ct")
    script:
        "../scripts/real_ct.py"

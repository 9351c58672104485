# report: one HTML file with the tables, figures, videos and slices.


rule report:
    input:
        summary=P.DICE_SUMMARY,
        per_case=P.DICE_PER_CASE,
        train_log=P.TRAIN_LOG,
        dice_figure=P.DICE_FIGURE,
        volume_figure=P.VOLUME_FIGURE,
        curve_figure=P.CURVE_FIGURE,
        manifest=P.MANIFEST,
        videos=per_case(P.VIDEO, "test"),
        slices=per_case(P.SLICES, "test"),
        real_ct=P.REAL_CT_METRICS,
        real_ct_figure=P.REAL_CT_FIGURE,
    output:
        P.REPORT,
    params:
        cases=lambda wc: subset("test"),
    threads: 1
    log:
        log_path("report"),
    benchmark:
        bench_path("report")
    script:
        "../scripts/report.py"

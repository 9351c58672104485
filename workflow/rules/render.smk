# render: a turntable video and slice overlays of each test case's prediction.


rule render:
    input:
        image=P.RAW_IMAGE,
        prediction=PREDICTION_INPUT,  # common.smk: the case's file, or a GPU run's predictions folder
        label=P.RAW_LABEL,
    output:
        video=report(P.VIDEO, caption="../report/video.rst", category="Test cases", subcategory="{case}"),
        slices=report(P.SLICES, caption="../report/slices.rst", category="Test cases", subcategory="{case}"),
    params:
        render=section("render"),
    threads: 1
    log:
        log_path("render", by_case=True),
    benchmark:
        bench_path("render", by_case=True)
    script:
        "../scripts/render.py"


rule render_all:
    input:
        per_case(P.VIDEO, "test"),
        per_case(P.SLICES, "test"),

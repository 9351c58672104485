# render: a turntable video and slice overlays of each test case's prediction.


rule render:
    input:
        image=P.RAW_IMAGE,
        prediction=P.PREDICTION,
        label=P.RAW_LABEL,
    output:
        video=P.VIDEO,
        slices=P.SLICES,
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

import pytest

from abdoseg.split import make_split

FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}


def test_split_is_deterministic_disjoint_and_complete():
    cases = [f"c{i:02d}" for i in range(17)]
    a = make_split(cases, 3, FRACTIONS)
    assert a == make_split(list(reversed(cases)), 3, FRACTIONS)  # input order does not matter
    assert a != make_split(cases, 4, FRACTIONS)
    together = a["train"] + a["val"] + a["test"]
    assert sorted(together) == cases and len(set(together)) == len(cases)
    assert (len(a["train"]), len(a["val"]), len(a["test"])) == (11, 3, 3)


def test_split_errors_are_clear():
    with pytest.raises(ValueError, match="sum to 1"):
        make_split(["a", "b", "c"], 0, {"train": 0.5, "val": 0.2, "test": 0.2})
    with pytest.raises(ValueError, match="at least 3 cases"):
        make_split(["a", "b"], 0, FRACTIONS)

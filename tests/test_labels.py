import numpy as np

from abdoseg import labels as L


def test_label_table_is_the_convention():
    assert L.CLASS_NAMES == ["background", "liver", "kidney_right", "kidney_left", "spleen"]
    assert (L.LIVER, L.KIDNEY_RIGHT, L.KIDNEY_LEFT, L.SPLEEN) == (1, 2, 3, 4)
    assert set(L.COLOURS) == set(L.ORGANS)
    assert L.organ_id("spleen") == 4


def test_swap_left_right_swaps_only_kidneys():
    lab = np.array([0, 1, 2, 3, 4, 2, 3], np.uint8)
    assert L.swap_left_right(lab).tolist() == [0, 1, 3, 2, 4, 3, 2]
    assert np.array_equal(L.swap_left_right(L.swap_left_right(lab)), lab)


def test_unknown_organ_is_a_clear_error():
    import pytest

    with pytest.raises(KeyError, match="unknown organ 'pancreas'"):
        L.organ_id("pancreas")

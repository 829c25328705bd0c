"""core.glyphs: the arrows that draw a field point its way, the fastest one a grid step long, with heads."""

import numpy as np
import pytest
from stillflow.core.glyphs import arrow_segments, field_arrows


def test_field_arrows_follow_the_field():
    field = np.zeros((48, 96, 2), np.float32)
    field[:, 48:, 0] = 2.0  # the right half moves right at 2 px/frame
    field[:24, 48:, 1] = -1.0  # its top quarter also up
    segs, scale = field_arrows(field, step=24)
    assert scale == pytest.approx(24 / np.hypot(2, 1), rel=1e-6)
    shafts = segs[: len(segs) // 3]
    assert len(shafts) == 4  # 2 rows x 2 columns of grid centres in the moving half
    assert (shafts[:, 0, 0] > 48).all()  # none in the still half
    d = shafts[:, 1] - shafts[:, 0]
    np.testing.assert_allclose(d / scale, field[(shafts[:, 0, 1] - 0.5).astype(int),
                                                 (shafts[:, 0, 0] - 0.5).astype(int)], atol=1e-5)
    assert np.hypot(*d.T).max() == pytest.approx(24, rel=1e-5)


def test_arrow_heads_point_back_from_the_tip():
    segs = arrow_segments(np.array([[0, 0], [5, 5]]), np.array([[10, 0], [5, 5]]))
    assert len(segs) == 3  # the zero-length arrow gives nothing
    shaft, left, right = segs
    np.testing.assert_allclose(shaft, [[0, 0], [10, 0]])
    for stroke in (left, right):
        assert (stroke[0] == [10, 0]).all() and stroke[1, 0] < 10  # from the tip, backwards
    assert left[1, 1] == -right[1, 1] != 0

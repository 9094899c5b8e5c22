"""nearly.insertion_order / local_intrinsic_dimensionality."""
import numpy as np
import pytest

import nearly


def test_lid_tracks_the_dimension_of_the_data():
    rng = np.random.default_rng(0)
    low = np.zeros((2000, 32), np.float32)
    low[:, :2] = rng.standard_normal((2000, 2))  # a 2-d plane in 32-d
    high = rng.standard_normal((2000, 32)).astype(np.float32)
    lid_low = nearly.local_intrinsic_dimensionality(low, 20)
    lid_high = nearly.local_intrinsic_dimensionality(high, 20)
    assert 1.3 < np.median(lid_low) < 3.0
    assert np.median(lid_high) > 10
    assert np.isfinite(lid_low).all() and np.isfinite(lid_high).all()


def test_insertion_order_is_a_permutation_sorted_by_lid():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal((500, 16)),
                        np.pad(rng.standard_normal((500, 2)), ((0, 0), (0, 14)))]).astype(np.float32)
    perm = nearly.insertion_order(x)
    assert sorted(perm.tolist()) == list(range(1000))
    lid = nearly.local_intrinsic_dimensionality(x)
    assert (np.diff(lid[perm]) <= 1e-9).all()
    asc = nearly.insertion_order(x, "lid_ascending")
    np.testing.assert_array_equal(asc, perm[::-1])
    index = nearly.IndexHNSWFlat(16, 16)
    index.add_with_ids(x[perm], perm)
    for i in (0, 1, 499, 500, 999):  # ids are still the rows of x
        np.testing.assert_array_equal(index.reconstruct(i), x[i])
    with pytest.raises(ValueError):
        nearly.insertion_order(x, "sideways")

"""FDE encoding on the GPU is bit for bit the CPU encoder's."""
import numpy as np
import pytest

import nearly
from nearly import gpu


CONFIGS = [
    dict(num_repetitions=3, num_simhash_projections=4, seed=7),
    dict(num_repetitions=2, num_simhash_projections=3, seed=11, projection_type="ams_sketch", projection_dimension=16),
    dict(num_repetitions=4, num_simhash_projections=5, seed=3, fill_empty_partitions=True),
    dict(num_repetitions=2, num_simhash_projections=4, seed=5, projection_type="ams_sketch", projection_dimension=8,
         fill_empty_partitions=True, final_projection_dimension=100),
    dict(num_repetitions=1, num_simhash_projections=0, seed=1),
]


@pytest.mark.parametrize("cfg", CONFIGS)
def test_gpu_fde_bit_exact(res, rng, cfg, cupy):
    d = 40
    lengths = rng.integers(1, 30, size=200)
    x = rng.standard_normal((int(lengths.sum()), d)).astype(np.float32)
    config = nearly.FDEConfig(dimension=d, **cfg)
    fill = cfg.get("fill_empty_partitions", False)
    cpu_d = nearly.fde_encode_documents(x, lengths, config)
    gpu_d = gpu.fde_encode_documents(res, x, lengths, config)
    np.testing.assert_array_equal(gpu_d.view(np.uint32), cpu_d.view(np.uint32))
    dev = gpu.fde_encode_documents(res, cupy.asarray(x), lengths, config)
    np.testing.assert_array_equal(cupy.asnumpy(dev).view(np.uint32), cpu_d.view(np.uint32))
    if not fill:
        cpu_q = nearly.fde_encode_queries(x, lengths, config)
        gpu_q = gpu.fde_encode_queries(res, x, lengths, config)
        np.testing.assert_array_equal(gpu_q.view(np.uint32), cpu_q.view(np.uint32))
    else:
        with pytest.raises(ValueError):
            gpu.fde_encode_queries(res, x, lengths, config)


def test_gpu_fde_bad_input(res, rng):
    config = nearly.FDEConfig(dimension=8, num_repetitions=1, num_simhash_projections=2)
    x = rng.standard_normal((10, 8)).astype(np.float32)
    with pytest.raises(ValueError):
        gpu.fde_encode_documents(res, x, [5, 6], config)  # lengths do not add up
    with pytest.raises(ValueError):
        gpu.fde_encode_documents(res, x[:, :7], [10], config)
    bad = x.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError):
        gpu.fde_encode_documents(res, bad, [10], config)

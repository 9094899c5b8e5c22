"""Without a GPU, the GPU names exist and fail with a clear RuntimeError."""
import pytest

import nearly

pytestmark = pytest.mark.no_gpu


@pytest.mark.skipif(nearly.get_num_gpus() > 0, reason="a GPU is present")
def test_gpu_classes_raise_runtime_error_without_a_device():
    assert nearly.get_num_gpus() == 0
    with pytest.raises(RuntimeError, match="GPU|CUDA"):
        nearly.StandardGpuResources()
    with pytest.raises(RuntimeError, match="GPU|CUDA"):
        nearly.index_cpu_to_all_gpus(nearly.IndexFlatL2(8))


def test_get_num_gpus_is_an_int():
    assert isinstance(nearly.get_num_gpus(), int)

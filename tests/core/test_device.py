import pytest
import torch

from dlsys.core import Params, UserError, device_from_params


def test_device_from_params_cpu_and_auto():
    assert device_from_params(Params({"device": "cpu"})) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert device_from_params(Params({"device": "auto"})).type == expected


@pytest.mark.parametrize("value", ["gpu", 3])
def test_device_from_params_names_the_key(value):
    with pytest.raises(UserError, match="device"):
        device_from_params(Params({"device": value}))


@pytest.mark.skipif(torch.cuda.is_available(), reason="only meaningful on a machine without CUDA")
def test_cuda_requested_without_cuda_is_a_clear_error():
    with pytest.raises(UserError, match="no CUDA device"):
        device_from_params(Params({"device": "cuda"}))

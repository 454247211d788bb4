"""The hardware choices a run makes: memory layout and precision on a CPU."""

import torch

from dlhistory.hardware import prepare_model, setup_hardware


def test_a_cpu_run_lays_conv_nets_out_channels_last_in_either_precision():
    hw = setup_hardware("cpu", "fp32")
    assert hw.channels_last and not hw.bf16
    conv = prepare_model(torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.Flatten()), hw)
    assert conv[0].weight.is_contiguous(memory_format=torch.channels_last)
    linear = prepare_model(torch.nn.Linear(4, 2), hw)  # nothing to lay out
    assert linear.weight.is_contiguous()


def test_channels_last_changes_no_result_beyond_rounding():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3))
    x = torch.randn(5, 1, 12, 12)
    expected = net(x)
    nhwc = net.to(memory_format=torch.channels_last)
    torch.testing.assert_close(nhwc(x.contiguous(memory_format=torch.channels_last)), expected)

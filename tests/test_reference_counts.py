"""Every shipped spec's parameter and MAC counts equal the published reference figures."""

import pytest
from conftest import SPECS, spec_files
from references import REFERENCE

from resnet_dsl.compiler import compile_network


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_counts(name):
    net = compile_network(SPECS / f"{name}.rnet")
    assert (net.totals.params, net.totals.macs) == REFERENCE[name]


def test_every_reference_has_a_spec_and_every_spec_checks():
    names = {p.stem for p in spec_files()}
    assert set(REFERENCE) <= names
    for path in spec_files():
        net = compile_network(path)
        assert net.output_shape is not None


def test_caffe_layout_same_parameters_fewer_macs():
    tv = compile_network(SPECS / "resnet101.rnet")
    caffe = compile_network(SPECS / "resnet101_caffe.rnet")
    assert caffe.totals.params == tv.totals.params
    assert [n for n in caffe.nodes] == [n for n in tv.nodes]
    # Stride on the first 1x1 conv: the 3x3 conv of each first block runs on the
    # downsampled map. Recount those convs by hand for the three strided stages.
    saved = 0
    for stage, width, in_size in (("layer2", 128, 56), ("layer3", 256, 28), ("layer4", 512, 14)):
        out = in_size // 2
        conv1_full = (in_size * in_size) * width * (width * 2 if stage != "layer2" else 256)
        conv1_caffe = (out * out) * width * (width * 2 if stage != "layer2" else 256)
        # conv1 of a torchvision block runs at full size; conv2 runs at out size in both.
        saved += conv1_full - conv1_caffe
    assert tv.totals.macs - caffe.totals.macs == saved

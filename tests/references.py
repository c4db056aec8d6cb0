"""Reference figures from ../shared/guides/REFERENCES.md (copied here so CI has them).

Parameters and MACs (multiply-accumulates of conv and linear layers, one image) of each
shipped spec at its default parameters. resnet101_caffe, cifar50_norelu and
preact_resnet1001 have no published figure: their values are checked against an
independent count in the tests instead (None here).
"""

# name: (parameters, MACs)
REFERENCE = {
    "resnet18": (11_689_512, 1_814_073_344),
    "resnet34": (21_797_672, 3_663_761_408),
    "resnet50": (25_557_032, 4_089_184_256),
    "resnet101": (44_549_160, 7_801_405_440),
    "resnet152": (60_192_808, 11_513_626_624),
    "resnext50_32x4d": (25_028_904, 4_230_479_872),
    "resnext101_32x8d": (88_791_336, 16_414_015_488),
    "wide_resnet50_2": (68_883_240, 11_398_021_120),
    "cifar_resnet20": (269_722, 40_551_040),
    "cifar_resnet32": (464_154, 68_862_592),
    "cifar_resnet44": (658_586, 97_174_144),
    "cifar50": (755_802, 111_329_920),
    "cifar_resnet56": (853_018, 125_485_696),
    "cifar_resnet110": (1_727_962, 252_887_680),
    "wrn28_10": (36_479_194, 5_243_328_768),
    "wrn40_4": (8_949_210, 1_298_582_016),
    "preact_resnet164": (1_703_258, 247_646_720),
}

# Specs whose state_dict must equal torchvision's model of the same name.
TORCHVISION = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
               "resnext50_32x4d", "resnext101_32x8d", "wide_resnet50_2")

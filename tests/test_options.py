"""Model options are checked: a misspelled one raises, naming it and the valid ones (partx.nn.options)."""

import pytest

from partx.models.pcnn import ParticleCNN
from partx.models.pfn import ParticleFlowNetwork
from partx.nn.options import check_options, strict_options


@pytest.mark.parametrize("cls,typo", [(ParticleFlowNetwork, "phi_size"), (ParticleCNN, "conv_param")])
def test_misspelled_model_option_raises(cls, typo):
    with pytest.raises(TypeError, match=rf"{cls.__name__}: unknown option\(s\) '{typo}'; valid options: input_dims"):
        cls(input_dims=7, num_classes=3, **{typo: (8,)})


@pytest.mark.parametrize("cls", [ParticleFlowNetwork, ParticleCNN])
def test_weaver_run_flags_are_accepted(cls):
    """weaver passes --use-amp / --compile-model to every get_model."""
    cls(input_dims=7, num_classes=3, use_amp=True, compile_model=True, for_inference=True)


def test_forwarded_options_are_valid_for_the_subclass():
    class Base:
        @strict_options
        def __init__(self, a: int = 0, b: int = 0):
            self.a, self.b = a, b

    class Child(Base):
        @strict_options(forwarded=("b",))
        def __init__(self, c: int = 0, **base: int):
            super().__init__(**base)

    assert Child(c=1, b=2).b == 2
    with pytest.raises(TypeError, match="Child: unknown option.*'a'; valid options: c, b"):
        Child(a=1)


def test_check_options_lists_all_unknown():
    with pytest.raises(TypeError, match="'x', 'y'"):
        check_options("thing", ["x", "a", "y"], ["a"])

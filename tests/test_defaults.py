"""params.yaml is the one source of defaults: every spec's dataclass default must equal its params.yaml value.

The dataclasses keep defaults for library use (a notebook, a test), for keys a partial section may leave out, and
for the `abdoseg` command's options (abdoseg.cli takes them from abdoseg.specs); these tests are what keep both
from drifting away from params.yaml.
"""

import dataclasses

import pytest
import yaml

from abdoseg.augment import AugmentSpec
from abdoseg.batches import DataPathSpec
from abdoseg.cli import build_parser
from abdoseg.specs import EvaluateSpec, PredictSpec, RenderSpec
from abdoseg.synthetic import SyntheticConfig
from conftest import REPO

PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.mark.parametrize("spec, section", [(PredictSpec, ("predict",)), (EvaluateSpec, ("evaluate",)), (RenderSpec, ("render",)),
                                           (AugmentSpec, ("augment",)), (SyntheticConfig, ("data", "synthetic")),
                                           (DataPathSpec, ("train",))],
                         ids=lambda v: getattr(v, "__name__", None))
def test_dataclass_defaults_are_the_params_yaml_values(spec, section):
    values = PARAMS
    for key in section:
        values = values[key]
    from_file = spec.from_params(values)
    for field in dataclasses.fields(spec):
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            continue
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        assert getattr(from_file, field.name) == default, (
            f"{'.'.join(section)}.{field.name}: params.yaml says {getattr(from_file, field.name)!r}, "
            f"{spec.__name__} defaults to {default!r}")


@pytest.mark.parametrize("argv, sections", [
    (["predict", "ct.nii.gz", "-o", "seg.nii.gz"], ("predict",)),
    (["evaluate", "--data-path", "data"], ("predict", "evaluate")),
    (["visualize", "--data-path", "data", "--output-path", "out"], ("predict", "render"))], ids=lambda v: v[0])
def test_cli_defaults_are_the_params_yaml_values(argv, sections):
    """Each key of the params sections a command runs is one of its options (same name), defaulting to params.yaml's
    value: `abdoseg predict` without options segments as the pipeline's predict step does."""
    defaults = vars(build_parser().parse_args(argv))
    for section in sections:
        for key, value in PARAMS[section].items():
            assert key in defaults, f"abdoseg {argv[0]} has no --{key.replace('_', '-')} option ({section}.{key})"
            cli = list(defaults[key]) if isinstance(value, list) else defaults[key]
            assert cli == value, f"abdoseg {argv[0]} --{key.replace('_', '-')} defaults to {cli!r}, params.yaml's {section}.{key} is {value!r}"

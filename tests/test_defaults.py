"""params.yaml is the one source of defaults: every spec's dataclass default must equal its params.yaml value.

The dataclasses keep defaults for library use (a notebook, a test) and for keys a partial section may leave out;
this test is what keeps them from drifting away from params.yaml.
"""

import dataclasses

import pytest
import yaml

from abdoseg.augment import AugmentSpec
from abdoseg.batches import DataPathSpec
from abdoseg.predict import PredictSpec
from abdoseg.synthetic import SyntheticConfig
from conftest import REPO

PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.mark.parametrize("spec, section", [(PredictSpec, ("predict",)), (AugmentSpec, ("augment",)),
                                           (SyntheticConfig, ("data", "synthetic")),
                                           (DataPathSpec, ("train",))], ids=lambda v: getattr(v, "__name__", None))
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

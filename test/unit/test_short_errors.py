"""Setup errors stay one short line: paths aside, under 300 characters."""

from __future__ import annotations

import pytest

from helpers import tiny_tasnet_config, write_enh_model
from dispatch.models.teacher import DistillSetupError, load_teacher


def test_teacher_of_another_architecture_is_named_briefly(tmp_path):
    config = write_enh_model(tmp_path / "a", tiny_tasnet_config(8, 1, 16))["config"]
    other = tiny_tasnet_config(8, 1, 16)
    other.update(separator="rnn", separator_conf={"num_spk": 1})
    model_file = write_enh_model(tmp_path / "b", other)["model_file"]
    with pytest.raises(DistillSetupError) as err:
        load_teacher(str(config), str(model_file))
    message = str(err.value).replace(str(config), "C").replace(str(model_file), "M")
    assert "\n" not in message and len(message) < 300, (len(message), message)
    assert "missing keys: separator.tcn" in message and "unexpected keys: separator.rnn" in message
    assert "more)" in message  # the rest is counted, not listed

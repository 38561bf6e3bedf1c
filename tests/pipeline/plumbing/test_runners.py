"""`DirectRunner` in a llamapipe config runs on Beam's FnApiRunner (in worker processes when asked),
never on a Prism binary downloaded at run time."""

from __future__ import annotations

import os

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability import prism_runner
from apache_beam.testing.util import assert_that, equal_to

from llamapipe.pipeline.config import load_config
from llamapipe.pipeline.plumbing.runners import LOCAL_RUNNER, runner_class
from llamapipe.pipeline.run import beam_options


def test_direct_runner_names_select_the_local_runner():
    assert runner_class("DirectRunner") == runner_class("direct") == LOCAL_RUNNER
    assert runner_class("DataflowRunner") == "DataflowRunner"
    config = load_config(os.path.join(os.path.dirname(__file__), "..", "..", "..", "configs", "demo.yaml"),
                         check_files=False)
    assert config.runner.runner == "DirectRunner"
    assert beam_options(config, None, []).get_all_options()["runner"] == LOCAL_RUNNER


@pytest.mark.parametrize("mode", ["in_memory", "multi_processing"])
def test_local_runner_runs_on_the_fn_api_runner_and_never_tries_prism(monkeypatch, mode):
    def no_prism(*args, **kwargs):
        raise AssertionError("the pipeline was offered to Prism (a binary Beam downloads at run time)")

    monkeypatch.setattr(prism_runner.PrismRunner, "__init__", no_prism)
    options = PipelineOptions([f"--runner={LOCAL_RUNNER}", f"--direct_running_mode={mode}",
                               "--direct_num_workers=2"])
    driver = os.getpid()
    with beam.Pipeline(options=options) as p:
        counted = (
            p
            | beam.Create([("a", 1), ("b", 2), ("a", 3)])
            | beam.CombinePerKey(sum)
            | beam.MapTuple(lambda key, total: (key, total, os.getpid() == driver))
        )
        in_driver = mode == "in_memory"
        assert_that(counted, equal_to([("a", 4, in_driver), ("b", 2, in_driver)]))

"""What a DoFn yields from `finish_bundle`: it must carry its own window."""

from __future__ import annotations

from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue


def bundle_output(value):
    """An output of finish_bundle (which must carry its own window): the global window, at its end."""
    return WindowedValue(value, GlobalWindow().max_timestamp(), [GlobalWindow()])

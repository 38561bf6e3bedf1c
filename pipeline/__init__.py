"""The Beam pipeline of llamapipe: its stages, plumbing, driver and commands."""

from llamapipe.tokenizer.format import beam_s3

beam_s3.install()  # empty objects on S3, in every process that imports us (see tokenizer/format/beam_s3.py)

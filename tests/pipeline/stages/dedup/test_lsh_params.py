"""LSH bands and rows: our Gauss-Legendre computation chooses what datasketch's MinHashLSH chooses (its
private `_optimal_param`, scipy quadrature), so that replacing the private call changed no (b, r)."""

from __future__ import annotations

import pytest

from llamapipe.pipeline.config import DedupConfig
from llamapipe.pipeline.stages.dedup.fingerprints import lsh_params

CASES = [  # (threshold, num_perm, false positive weight, false negative weight)
    (0.8, 128, 0.1, 0.9),  # the default and the demo's (configs/demo.yaml)
    (0.8, 128, 0.5, 0.5),  # datasketch's own default weights
    (0.9, 128, 0.1, 0.9),  # the book threshold
    (0.7, 256, 0.1, 0.9),
    (0.5, 64, 0.5, 0.5),
    (0.72, 112, 0.1, 0.9),  # datatrove's 14 x 8 neighbourhood
    (0.3, 32, 0.2, 0.8),
]


@pytest.mark.parametrize(("threshold", "num_perm", "fp_weight", "fn_weight"), CASES)
def test_bands_and_rows_equal_datasketch(threshold, num_perm, fp_weight, fn_weight):
    from datasketch import MinHashLSH

    reference = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=(fp_weight, fn_weight))
    assert lsh_params(threshold, num_perm, fp_weight, fn_weight) == (reference.b, reference.r)


def test_the_default_config_keeps_its_bands_and_rows():
    """14 bands of 9 rows: what datasketch chose for the default (and the demo's) dedup settings."""
    options = DedupConfig()
    assert (options.threshold, options.num_perm, options.lsh_weights) == (0.8, 128, [0.1, 0.9])
    assert lsh_params(options.threshold, options.num_perm, *options.lsh_weights) == (14, 9)

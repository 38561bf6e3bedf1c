"""Names that several layers share and that the extraction subprocess needs, in a module that imports
nothing, so that reading them never imports Beam.

Why it matters: the extraction subprocess reads the stage registry and the extraction methods. When they
came through `drops.py` and `config.py` (both import Beam, config through the sources), every extraction
process held 145 MB more (201 against 56 MB resident once started, with language ID, after one page; up
to 233 MB in the 1M-document run) and spent 1.4 s importing Beam at each start and each restart after a
page over the time limit
(tests/pipeline/stages/test_extract.py checks the subprocess imports no Beam)."""

# The stages of the readers' own drops, first in the stage registry (stages/registry.py); sources/ may
# import only the plumbing.
READ_STAGE = "read"  # a record that cannot be read
CLEAN_STAGE = "clean"  # a source's own recipe cleaning, inside its reader

# `extract.method` (config.ExtractConfig; implemented by stages/extract_subprocess.PageExtractor).
EXTRACT_METHODS = ("trafilatura", "cascade", "resiliparse")

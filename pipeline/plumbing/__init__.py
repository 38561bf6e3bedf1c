"""Beam machinery that knows nothing of the recipe: files as the shuffle (`files_as_shuffle`), a
GroupByKey through files (`group_through_files`), `bundles`, the drop record (`drops`), sampling by id
(`sampling`), the runners (`runners`, `dask_runner`), live progress (`progress`), typed YAML
(`typed_yaml`), object-store faults explained (`storage_faults`) and the names several layers share
(`names`, which imports nothing).

A leaf: it imports nothing else of the project, so the sources' readers may use it (pyproject.toml's
import contracts, `make lint`)."""

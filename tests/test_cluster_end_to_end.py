"""The demo as on a cluster: inputs and OUT on an S3 server, the run on a Dask cluster of separate
processes, submitted from a folder that holds none of the data.

- moto's S3 server (`tests/object_stores.py`) and `dask scheduler` + two `dask worker` processes
  (`tests/dask_cluster.py`), all on 127.0.0.1, each started here and stopped after;
- the workers have no AWS variable, no credentials file, no instance metadata: they reach S3 with the
  pipeline options only (`--s3_endpoint_url` on the command line, the keys in the config's runner
  options, where a user would write them);
- the shards must be byte-identical to the local DirectRunner run of the same corpus and config (the
  `demo_run` fixture), then `inspect verify`, `report` and `train` work on the S3 OUT, with the
  environment's standard variables (AWS_ENDPOINT_URL, ...) instead of flags;
- the secret key appears nowhere: not in any object under OUT (run.json, the logs, the report), not on
  the console.
"""

from __future__ import annotations

import json
import uuid

import yaml

from llamapipe.pipeline.cli import main
from llamapipe.tokenizer.format import storage
from tests.dask_cluster import dask_cluster
from tests.object_stores import applied_env, moto_s3_server, no_aws_environment
from tests.pipeline.plumbing.test_dask_runner import needs_dask, time_limit

BUCKET = "llamapipe-cluster"


def upload_folder(s3, folder, prefix: str) -> None:
    client = s3.client()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        client.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(folder)}")


def objects_under(s3, prefix: str) -> dict[str, bytes]:
    client, found = s3.client(), {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
    return found


@needs_dask
def test_the_demo_on_s3_run_by_a_dask_cluster_gives_the_local_shards_and_leaks_no_secret(
        demo_run, tmp_path, monkeypatch, capfd):
    secret = f"secret-{uuid.uuid4().hex}"  # moto takes any key; this one must never be written anywhere
    local = demo_run["result"]["manifest"]
    data = yaml.safe_load(open(demo_run["config_path"], encoding="utf-8"))
    corpus = demo_run["root"] / "demo-data"
    for options in data["sources"].values():
        options["inputs"] = [p.replace(str(corpus), f"s3://{BUCKET}/demo-data", 1) for p in options["inputs"]]
    data["output"] = out = f"s3://{BUCKET}/out"
    data["runner"] = {"runner": "dask", "options": {"s3_access_key_id": "cluster-key",
                                                    "s3_secret_access_key": secret,
                                                    "s3_region_name": "us-east-1"}}
    data["train"].update(steps=4, log_every=2, eval_every=0, checkpoint_every=0)
    config = tmp_path / "cluster.yaml"
    config.write_text(yaml.safe_dump(data))
    elsewhere = tmp_path / "elsewhere"  # the submitting folder: no data, no config
    elsewhere.mkdir()

    with time_limit(900, "the demo on S3 and a Dask cluster"), moto_s3_server() as s3, \
            applied_env(no_aws_environment(tmp_path)):
        s3.create_bucket(BUCKET)
        upload_folder(s3, corpus, "demo-data")
        monkeypatch.chdir(elsewhere)
        try:
            with dask_cluster(workers=2, env=no_aws_environment(tmp_path)) as address:
                code = main(["run", str(config), "--fresh", "--dask-address", address,
                             f"--s3_endpoint_url={s3.endpoint_url}"])
            assert code == 0
            storage.use_options(None)  # the commands below: the standard environment, no flag
            with applied_env({**s3.env, "AWS_SECRET_ACCESS_KEY": secret}):
                manifest = storage.read_json(f"{out}/shards/manifest.json")
                assert manifest == local  # shards (paths, sha256), tokens, documents, shares, tokenizer
                assert main(["inspect", "verify", f"{out}/shards"]) == 0
                assert main(["report", out]) == 0
                assert main(["train", str(config), "--fresh"]) == 0
                metrics = storage.read_text(f"{out}/train/metrics.jsonl").splitlines()
                assert json.loads(metrics[-1])["step"] == 4
                assert storage.is_file(f"{out}/train/checkpoint.pt")
            assert list(elsewhere.iterdir()) == []  # nothing was written where the command ran
            written = objects_under(s3, "out/")
        finally:
            storage.use_options(None)

    assert "out/report.html" in written and "out/run.json" in written and "out/beam.log" in written
    run_record = json.loads(written["out/run.json"])
    assert run_record["config"]["runner"]["options"]["s3_secret_access_key"] == "<redacted>"
    leaks = sorted(key for key, body in written.items() if secret.encode() in body)
    assert leaks == []
    console = capfd.readouterr()
    assert secret not in console.out and secret not in console.err

"""The start-up scan runs once per run: sharded over the ranks (each record checked by one rank, every rank gets the
whole report) and cached in the output folder so that a restart or resume with the same data does not scan again."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest

from helpers import free_port, run_sft, simple_record, write_json
from tinyrs_sft.check_data import scan_records
from tinyrs_sft.records import MediaPolicy, RecordSource
from tinyrs_sft.scan import CACHE_NAME, cache_key, load_cached_report, save_report, scan_once, shard_bounds


@pytest.fixture
def mixed_data(data_dir) -> tuple[Path, MediaPolicy]:
    """11 records, 3 of them bad (missing image, odd conversation, bad image type), spread over the file."""
    records = [simple_record(i, image="abc"[i % 3] + ".png") for i in range(11)]
    records[2]["image"] = "missing.png"
    records[6]["conversations"] = records[6]["conversations"][:1]
    records[9]["image"] = 7
    return write_json(data_dir / "train.json", records), MediaPolicy(data_dir / "images")


@pytest.mark.parametrize("total", [0, 1, 7, 10, 11])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shards_cover_every_index_once(total, world):
    covered = [i for rank in range(world) for i in range(*shard_bounds(total, rank, world))]
    assert covered == list(range(total))


def _rank_main(rank: int, world: int, port: int, data: str, folder: str, out: str) -> None:
    """One rank of a 2-process gloo group: scan with a counting check, write what it saw."""
    import torch.distributed as dist

    import tinyrs_sft.check_data as check_data

    checked = []
    real = check_data.check_record

    def counting(record, *args, **kwargs):
        checked.append(record["id"] if isinstance(record, dict) else None)
        return real(record, *args, **kwargs)

    check_data.check_record = counting
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        report, cached = scan_once(RecordSource(data), MediaPolicy(Path(folder)), verify_images=False)
    finally:
        dist.destroy_process_group()
    result = {"good": list(report.good), "errors": report.errors, "total": report.total, "checked": checked}
    Path(out, f"rank{rank}.pkl").write_bytes(pickle.dumps((result, cached)))


def test_two_ranks_split_the_scan_and_agree(mixed_data, tmp_path):
    import torch.multiprocessing as mp

    data, policy = mixed_data
    port = free_port()
    mp.start_processes(
        _rank_main, args=(2, port, str(data), str(policy.image_folder), str(tmp_path)), nprocs=2, start_method="fork"
    )
    results = [pickle.loads((tmp_path / f"rank{r}.pkl").read_bytes()) for r in range(2)]
    single = scan_records(RecordSource(data), policy)
    for result, cached in results:
        assert not cached
        assert result["good"] == list(single.good) == [0, 1, 3, 4, 5, 7, 8, 10]
        assert result["errors"] == single.errors and result["total"] == 11
    checked = [results[r][0]["checked"] for r in range(2)]
    assert checked[0] == [f"r{i}" for i in range(5)] and checked[1] == [f"r{i}" for i in range(5, 11)]


def test_cache_is_reused_only_for_the_same_data_and_settings(mixed_data, tmp_path, monkeypatch):
    data, policy = mixed_data
    out = tmp_path / "out"
    out.mkdir()
    report, cached = scan_once(RecordSource(data), policy, False, out)
    assert not cached
    key = cache_key(data, policy, False)
    save_report(out, key, report)
    assert json.loads((out / CACHE_NAME).read_text())["bad"] == [2, 6, 9]

    import tinyrs_sft.scan as scan

    monkeypatch.setattr(scan, "scan_records", lambda *a, **k: pytest.fail("scanned despite a valid cache"))
    again, cached = scan_once(RecordSource(data), policy, False, out)
    assert cached and list(again.good) == list(report.good) and again.errors == report.errors
    assert again.n_bad == 3 and again.total == 11
    # Other settings or a changed data file: no cache.
    assert load_cached_report(out, cache_key(data, policy, True)) is None
    assert (
        load_cached_report(out, cache_key(data, MediaPolicy(policy.image_folder, max_image_pixels=10), False)) is None
    )
    stat = data.stat()
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert load_cached_report(out, cache_key(data, policy, False)) is None
    # A damaged cache file is ignored, not trusted.
    (out / CACHE_NAME).write_text(
        '{"key": ' + json.dumps(cache_key(data, policy, False)) + ', "total": 11, "bad": [99]'
    )
    assert load_cached_report(out, cache_key(data, policy, False)) is None


def test_training_restart_reads_the_cached_report(tiny_model_dir, data_dir, tmp_path, monkeypatch, caplog):
    data = write_json(data_dir / "train.json", [simple_record(i) for i in range(3)] + [simple_record(3, "gone.png")])
    out = tmp_path / "out"
    common = ("--max_steps", "1", "--skip_bad_samples", "True")
    with caplog.at_level("INFO", logger="tinyrs_sft"):
        run_sft(tiny_model_dir, data, data_dir / "images", out, *common)
    assert (out / CACHE_NAME).is_file() and json.loads((out / CACHE_NAME).read_text())["bad"] == [3]

    import tinyrs_sft.scan as scan

    monkeypatch.setattr(scan, "scan_records", lambda *a, **k: pytest.fail("the restart scanned again"))
    caplog.clear()
    with caplog.at_level("INFO", logger="tinyrs_sft"):
        run_sft(tiny_model_dir, data, data_dir / "images", out, *common, "--max_steps", "2")
    assert f"read from {out / CACHE_NAME}" in caplog.text
    assert "record 3 (id='r3'): image not found" in caplog.text  # the cached messages are still logged
    assert "skipping 1 bad records of 4" in caplog.text

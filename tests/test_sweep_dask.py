"""The sweep on Dask: the same rows as the local engine, and a worker killed mid-cell survived.

Each test starts a ``LocalCluster`` of 2 single-threaded worker processes
listening on 127.0.0.1 only, and closes it at the end (a few seconds each).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time

import pandas as pd
import pytest
from test_sweep import TINY, deterministic

from seqmodels.compare.executors import InlineExecutor
from seqmodels.sweep import dask_engine, run_sweep
from seqmodels.sweep.engines import local_cluster

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> pd.DataFrame:
    return run_sweep(TINY, tmp_path_factory.mktemp("dask") / "inline",
                     executor=InlineExecutor(), progress=False)


def test_a_dask_local_cluster_gives_the_rows_of_one_local_process(reference, tmp_path):
    with dask_engine(local_workers=2) as executor:
        rows = run_sweep(TINY, tmp_path / "dask", executor=executor, progress=False)
    pd.testing.assert_frame_equal(deterministic(rows), deterministic(reference))


#: Cells of about a second (Baum-Welch on 150 sequences of 200 steps, 3 restarts), so
#: there is time to find one running and kill its worker.
SLOW = dataclasses.replace(
    TINY, n_train=(150,), cell=("elman",), em_states=(), seed=(0, 1),
    settings=dataclasses.replace(TINY.settings, length=200, restarts=3))


def processing_task(scheduler, deadline: float) -> tuple[str, str]:
    """(worker address, task key) of a task being computed, polling until ``deadline``."""
    while time.monotonic() < deadline:
        for address, keys in scheduler.processing().items():
            if keys:
                return address, keys[0]
        time.sleep(0.005)
    raise AssertionError("no task started")


def test_a_worker_killed_mid_cell_is_survived_and_its_cell_rerun(tmp_path):
    expected = run_sweep(SLOW, tmp_path / "inline", executor=InlineExecutor(), progress=False)
    with local_cluster(2) as cluster, distributed.Client(cluster) as client:
        outcome: dict = {}

        def sweep() -> None:
            with dask_engine(scheduler=cluster.scheduler_address) as executor:
                try:
                    outcome["rows"] = run_sweep(SLOW, tmp_path / "dask", executor=executor,
                                                progress=False)
                except BaseException as err:  # reported by the main thread
                    outcome["error"] = err

        runner = threading.Thread(target=sweep)
        runner.start()
        address, key = processing_task(client, time.monotonic() + 60)
        pid = client.run(os.getpid, workers=[address])[address]
        os.kill(pid, signal.SIGKILL)
        runner.join(timeout=120)
        assert not runner.is_alive() and "error" not in outcome, outcome.get("error")
        story = cluster.scheduler.story(key)
        starts = [event for event in story if event[2] == "processing"]
        assert len(starts) >= 2, story  # computed again after its worker died
        assert pid not in client.run(os.getpid).values()
    pd.testing.assert_frame_equal(deterministic(outcome["rows"]), deterministic(expected))


def test_dask_engine_needs_exactly_one_target():
    with pytest.raises(ValueError, match="exactly one of scheduler"):
        with dask_engine():
            pass
    with pytest.raises(ValueError, match="exactly one of scheduler"):
        with dask_engine("tcp://127.0.0.1:1", 2):
            pass

"""The bounded picture pool: who may reserve a place, how many pictures are downloaded and
decoded at once, and on which threads (not asyncio's default executor)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from bot.domain.photos import SanitisedPhoto
from bot.domain.picture_jobs import FETCH_AHEAD, PICTURE_WORKERS, PictureJobs, PictureLimit


def limit_reason(jobs: PictureJobs, owner: str, **kwargs: int) -> str:
    with pytest.raises(PictureLimit) as info, jobs.reserve(owner, **kwargs):
        pass
    return info.value.reason


def test_a_draft_counts_its_stored_and_reserved_pictures() -> None:
    jobs = PictureJobs()
    try:
        with jobs.reserve("alice", already=8, limit=10), jobs.reserve("alice", already=8, limit=10):
            assert jobs.reserved("alice") == 2
            assert limit_reason(jobs, "alice", already=8, limit=10) == "too_many_photos"
            with jobs.reserve("bob", already=8, limit=10):  # others are not affected
                pass
        assert jobs.reserved("alice") == 0  # places are given back when the block ends
        with jobs.reserve("alice", already=9, limit=10):
            assert limit_reason(jobs, "alice", already=9, limit=10) == "too_many_photos"
    finally:
        jobs.close()


def test_one_resident_and_everybody_have_a_ceiling() -> None:
    jobs = PictureJobs(per_owner=2, max_reserved=3)
    try:
        with jobs.reserve("alice"), jobs.reserve("alice"):
            assert limit_reason(jobs, "alice") == "busy"
            with jobs.reserve("bob"):
                assert limit_reason(jobs, "carol") == "busy"
            with jobs.reserve("carol"):
                pass
    finally:
        jobs.close()


def test_a_place_is_given_back_when_the_work_fails() -> None:
    jobs = PictureJobs()
    try:
        with pytest.raises(RuntimeError), jobs.reserve("alice"):
            raise RuntimeError("decode failed")
        assert jobs.reserved("alice") == 0
    finally:
        jobs.close()


@pytest.mark.parametrize("workers", [PICTURE_WORKERS, 2])
async def test_decodes_run_on_the_picture_threads_never_more_than_the_workers(
    workers: int,
) -> None:
    release = threading.Event()
    threads: list[str] = []
    fetched = 0

    def slow_sanitise(data: bytes) -> SanitisedPhoto:
        threads.append(threading.current_thread().name)
        release.wait(5)
        return SanitisedPhoto(data=data, width=1, height=1, source_format="JPEG")

    async def fetch() -> bytes:
        nonlocal fetched
        fetched += 1
        return b"x"

    jobs = PictureJobs(workers=workers, sanitise=slow_sanitise)
    try:
        work = [asyncio.create_task(jobs.process(fetch)) for _ in range(8)]
        for _ in range(200):
            if len(threads) == workers:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        # `workers` decoding, FETCH_AHEAD more downloaded and waiting, the rest not even
        # downloaded
        assert len(threads) == workers
        assert fetched == workers + FETCH_AHEAD
        release.set()
        results = await asyncio.gather(*work)
    finally:
        jobs.close()
    assert len(results) == 8
    assert jobs.busiest == workers
    assert {name.rsplit("_", 1)[0] for name in threads} == {"picture"}

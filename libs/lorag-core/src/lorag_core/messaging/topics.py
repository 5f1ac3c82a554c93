"""Topic names and creating them with the partitions lorag expects."""

from __future__ import annotations

import contextlib
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from lorag_core.contracts import (
    AdapterCreated,
    CompensationRequested,
    JobCancelRequested,
    JobProgress,
    JobRequested,
    MinionXpEarned,
)
from lorag_core.contracts.dead_letters import dead_letter_topic

JOB_REQUESTED = JobRequested.topic
JOB_PROGRESS = JobProgress.topic
JOB_CANCEL = JobCancelRequested.topic
ADAPTER_CREATED = AdapterCreated.topic
JOB_COMPENSATE = CompensationRequested.topic
MINION_XP = MinionXpEarned.topic
INPUT_TOPICS = (JOB_REQUESTED, JOB_PROGRESS, JOB_CANCEL, ADAPTER_CREATED, JOB_COMPENSATE, MINION_XP)
ALL_TOPICS = INPUT_TOPICS + tuple(dead_letter_topic(t) for t in INPUT_TOPICS)

log = logging.getLogger(__name__)


async def ensure_topics(bootstrap_servers: str, partitions: int, topics=ALL_TOPICS) -> None:
    """Create the topics that do not exist yet; an existing topic is left as it is."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="lorag-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if not missing:
            return
        with contextlib.suppress(TopicAlreadyExistsError):  # another replica was first
            await admin.create_topics(
                [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in missing]
            )
        log.info("created topics %s", ", ".join(missing))
    finally:
        await admin.close()

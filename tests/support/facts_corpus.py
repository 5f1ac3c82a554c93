"""A small corpus of made-up facts, each with a question, split into evaluated and held-out halves.

The notes hold every fact; the dataset's Q/A file holds only the evaluated half, so a held-out
question's answer is found in the notes alone. Names are invented: no model knows them already.
"""

from __future__ import annotations

import json

# (fact sentence, question, the expected fact: a string the answer must contain)
FACTS: list[tuple[str, str, str]] = [
    ("The staging cluster is called harbor-seventeen.",
     "What is the staging cluster called?", "harbor-seventeen"),
    ("The production cluster is called lighthouse-nine.",
     "What is the name of the production cluster?", "lighthouse-nine"),
    ("The on-call rotation changes every Tuesday at 09:00 UTC.",
     "When does the on-call rotation change?", "Tuesday"),
    ("The billing service is owned by the Falcon team.",
     "Which team owns the billing service?", "Falcon"),
    ("Database backups are kept for 35 days.",
     "How long are database backups kept?", "35 days"),
    ("The office cat is named Pixel.",
     "What is the office cat's name?", "Pixel"),
    ("Deploys to production need two approvals.",
     "How many approvals does a production deploy need?", "two approvals"),
    ("The search index is rebuilt every night at 02:30.",
     "When is the search index rebuilt?", "02:30"),
    ("The VPN gateway runs in the Frankfurt region.",
     "In which region does the VPN gateway run?", "Frankfurt"),
    ("Incident reviews are written by the incident commander.",
     "Who writes the incident reviews?", "incident commander"),
    ("The analytics warehouse is named Quarry.",
     "What is the analytics warehouse called?", "Quarry"),
    ("The mobile app is released every second Thursday.",
     "How often is the mobile app released?", "second Thursday"),
    ("The payments API allows 600 requests per minute.",
     "What is the rate limit of the payments API?", "600 requests per minute"),
    ("The design system is maintained by Marisol Okafor.",
     "Who maintains the design system?", "Marisol Okafor"),
    ("The build cache lives in the bucket named tundra-cache.",
     "Which bucket holds the build cache?", "tundra-cache"),
    ("Security patches are applied within 72 hours.",
     "How quickly are security patches applied?", "72 hours"),
    ("The customer support queue is triaged by the Otter rotation.",
     "Who triages the customer support queue?", "Otter"),
    ("The internal wiki is hosted at wiki.corp-nimbus.example.",
     "Where is the internal wiki hosted?", "wiki.corp-nimbus.example"),
    ("The load balancer health check path is /healthz-deep.",
     "What path does the load balancer health check use?", "/healthz-deep"),
    ("The quarterly planning meeting takes place in the Juniper room.",
     "Where does the quarterly planning meeting take place?", "Juniper"),
]  # fmt: skip


def split() -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """(evaluated, held out): every other fact, so both halves hold every kind of fact."""
    return FACTS[0::2], FACTS[1::2]


def dataset_files() -> dict[str, str]:
    """notes.md with every fact; qa.jsonl with the evaluated half's questions and answers."""
    evaluated, _ = split()
    notes = "# Team notes\n\n" + "\n\n".join(
        " ".join(f for f, _, _ in FACTS[i : i + 2]) for i in range(0, len(FACTS), 2)
    )
    qa = "\n".join(json.dumps({"question": q, "answer": a}) for _, q, a in evaluated)
    return {"notes.md": notes, "qa.jsonl": qa + "\n"}

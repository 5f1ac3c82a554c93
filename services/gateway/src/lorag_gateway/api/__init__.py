"""The HTTP API, one router per area; each route parses, calls a plain function, returns."""

from typing import Annotated

from pydantic import Field, StringConstraints

# Stripped before the length check: a blank question is refused (422), not answered at random.
Question = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=4000),
    Field(description="What to ask; not blank.", examples=["What is the cluster called?"]),
]

"""The record your extraction fills from a recording (one pydantic model per suite)."""

from pydantic import BaseModel, Field


class Intro(BaseModel):
    """Someone introducing themselves."""

    name: str = Field(description="The speaker's first name, as they say it.")
    age: int | None = Field(default=None, description="The speaker's age in years, if they say it.")

"""A class on one server: its requests and answers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from app.schemas.names import plain_name as _plain


class CreateClass(BaseModel):
    name: str = Field(min_length=1, max_length=60, examples=["MC886 lecture 7"])

    _name = field_validator("name")(_plain)


class JoinClass(BaseModel):
    code: str = Field(min_length=1, max_length=16, examples=["K7MX2P"], description="6 characters, no 0/O/1/I")
    lecturer_token: str | None = Field(None, max_length=100, description="makes this workspace a lecturer")
    name: str | None = Field(None, min_length=1, max_length=40, description='your name in the class ("Student 12")')

    _name = field_validator("name")(_plain)


class RenameMember(BaseModel):
    name: str = Field(min_length=1, max_length=40)

    _name = field_validator("name")(_plain)


class Design(BaseModel):
    name: str = Field(min_length=1, max_length=60)
    architecture: dict[str, Any] = Field(description="a spec: input, classes, layers")

    _name = field_validator("name")(_plain)


class Publish(BaseModel):
    model: str | None = Field(None, max_length=64, description="a model you may see (shipped, yours, shared)")
    design: Design | None = None

    @model_validator(mode="after")
    def exactly_one(self) -> Publish:
        if (self.model is None) == (self.design is None):
            raise ValueError("send exactly one of model or design")
        return self


class Challenge(BaseModel):
    dataset: Literal["digits", "fashion"] = "digits"
    max_parameters: int = Field(ge=1, le=50_000_000, examples=[10_000])
    max_epochs: int = Field(30, ge=1, le=30)
    deadline: float | None = Field(None, ge=0, description="Unix time after which entries are refused")


class Entry(BaseModel):
    model: str = Field(max_length=64, description="a model of yours, trained on the challenge's data set")


class ClassInfo(BaseModel):
    id: str
    name: str
    code: str
    role: Literal["lecturer", "student"]
    join_url: str
    created: float


class ClassCreated(ClassInfo):
    lecturer_token: str = Field(description="secret: another browser joins as a lecturer with it; shown once")


class Joined(ClassInfo):
    member_name: str = Field(description="your name as the class sees it")


class LeaderboardRow(BaseModel):
    student: str
    model: str = Field(description="a share id: anyone in the class opens it with ?model=")
    model_name: str
    score: float = Field(description="accuracy on the challenge's held-out test pictures")
    parameters: int
    layers: str = Field(examples=["conv 8@3x3 → maxpool → conv 16@3x3 → maxpool → fc 10"])
    created: float
    url: str


class ChallengeView(BaseModel):
    dataset: str
    max_parameters: int
    max_epochs: int
    deadline: float | None
    test_size: int


class Leaderboard(BaseModel):
    challenge: ChallengeView | None
    entries: list[LeaderboardRow]


class ClassList(BaseModel):
    classes: list[ClassInfo]


class ChallengeAnswer(BaseModel):
    challenge: ChallengeView | None = Field(description="null until the lecturer sets one")

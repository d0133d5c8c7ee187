"""`batch`: how `mlops batch` scores a table offline (Ray Data actors, batch size)."""


from typing import Annotated

from pydantic import Field

from framework.recipe.base import Section
from framework.recipe.types import PositiveInt


class Batch(Section):
    batch_size: Annotated[int, Field(ge=1, le=1048576)] = Field(
        default=8192, description="Rows per model call (one Ray Data batch)."
    )
    actors: PositiveInt = Field(
        default=1, description="Scoring actors (one ONNX Runtime session each); leave a CPU for reading."
    )
    cpus_per_actor: Annotated[float, Field(gt=0, le=512)] = Field(default=1, description="CPUs reserved per actor.")

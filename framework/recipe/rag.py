"""`rag`: retrieval-augmented generation over a document corpus (LLM recipes)."""


from typing import Annotated, Literal

from pydantic import Field

from framework.recipe.base import Section
from framework.recipe.types import Name, PositiveInt

DEFAULT_PROMPT = (
    "Answer the question using only the context below. If the context does not contain "
    "the answer, say that you don't know.\n\nContext:\n{context}\n\nQuestion: {question}\nAnswer:"
)


class Chunking(Section):
    size: Annotated[int, Field(ge=16, le=100000)] = Field(default=800, description="Largest chunk, in characters.")
    overlap: Annotated[int, Field(ge=0)] = Field(default=100, description="Characters shared by neighbouring chunks.")
    separators: list[str] = Field(
        default_factory=lambda: ["\n\n", "\n", ". ", " ", ""],
        min_length=1,
        description="Split points tried in order (recursive splitting).",
    )


class Embedding(Section):
    model: str = Field(default="all-MiniLM-L6-v2", description="Sentence-embedding model (shipped with a package, no downloads).")
    batch_size: PositiveInt = Field(default=64, description="Chunks embedded at once.")


class VectorStore(Section):
    kind: Literal["chroma"] = Field(default="chroma", description="Vector database.")
    path: str = Field(default=".mlops/vectors", description="Directory of the persistent collection.")
    collection: Name | None = Field(default=None, description="Collection name; default the recipe name.")


class Retriever(Section):
    search: Literal["mmr", "similarity"] = Field(default="mmr", description="Similarity search or maximal marginal relevance.")
    k: Annotated[int, Field(ge=1, le=100)] = Field(default=4, description="Chunks passed to the model.")
    fetch_k: Annotated[int, Field(ge=1, le=1000)] = Field(default=20, description="Candidates MMR re-ranks.")
    lambda_mult: Annotated[float, Field(ge=0.0, le=1.0)] = Field(default=0.5, description="MMR: 1 relevance only, 0 diversity only.")


class Rag(Section):
    documents: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1, description="Files, folders or globs (markdown, text, PDF) to index."
    )
    chunking: Chunking = Field(default_factory=Chunking, description="How documents are split.")
    embedding: Embedding = Field(default_factory=Embedding, description="Embedding model.")
    vector_store: VectorStore = Field(default_factory=VectorStore, description="Where vectors are kept.")
    retriever: Retriever = Field(default_factory=Retriever, description="How chunks are retrieved.")
    prompt: str = Field(default=DEFAULT_PROMPT, description="Prompt template with {context} and {question}.")
    llm_endpoint: str | None = Field(
        default=None, description="OpenAI-compatible or Ollama URL to generate with; default the recipe's own server."
    )

"""Retrieval-augmented generation over a document corpus (the `rag` section).

documents -> chunking -> embedding -> store/index (a persistent Chroma collection,
re-embedding only changed documents) -> retrieve (similarity or MMR) -> evaluate
(recall@k and MRR on a labelled question set, checked against the recipe's gates).
Every module imports chromadb, torch and sentence-transformers inside functions only.
"""
